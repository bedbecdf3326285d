import { Keyv } from 'keyv'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { BatchService } from '../src/batches/service.js'
import { ApiError } from '../src/errors.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'
import { StoreGuard } from '../src/store/guard.js'
import type { LeaseStore } from '../src/store/leases.js'
import { RecordStore } from '../src/store/records.js'
import { BatchTracker, type TrackingOptions } from '../src/tracking/tracker.js'
import type { BatchBilling, BatchRecord, BatchStatus } from '../src/types.js'
import { readStored } from './support/stored.js'

/**
 * The tracker's schedule, on a clock that stands still until the test moves it (only `Date` is faked;
 * timers run for real, so the tracker's ticks go on): each poll's next time, the backoff and its cap, a
 * part waiting for the provider's queue, leases, orphans and nudges. The provider is a scripted
 * `BatchService` that counts how often it is asked, and how (a plain refresh or a resubmission).
 */

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0)
const JITTER = 0.2

interface Asked {
  how: 'refresh' | 'resubmit'
  atMs: number
}

/** A scripted provider: the statuses it answers in turn (the last one from then on), or errors to throw. */
class ScriptedBatches {
  asked: Asked[] = []
  answers: Array<Partial<BatchRecord> | Error> = []
  /** When set, each refresh waits for this before it answers. */
  gate: Promise<void> | undefined

  constructor(private readonly records: RecordStore) {}

  refresh = (batch: BatchRecord, options: { resubmit?: boolean } = {}) =>
    this.answer(batch, options.resubmit ? 'resubmit' : 'refresh')
  refreshIfStale = (batch: BatchRecord) => this.answer(batch, 'refresh')

  private async answer(batch: BatchRecord, how: Asked['how']): Promise<BatchRecord> {
    this.asked.push({ how, atMs: Date.now() })
    await this.gate
    const next = this.answers.length > 1 ? this.answers.shift() : this.answers[0]
    if (next instanceof Error) throw next
    const updated = { ...batch, ...next, refreshedAtMs: Date.now() }
    await this.records.updateBatch(updated)
    return updated
  }
}

interface Setup {
  tracker: BatchTracker
  provider: ScriptedBatches
  records: RecordStore
  queue: DueQueue
  leases: LeaseStore
  store: Keyv
  finished: BatchRecord[]
  errors: Array<{ error: unknown; context: string }>
  logs: Array<{ level: string; fields: Record<string, unknown>; message?: string }>
}

let trackers: BatchTracker[] = []

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(async () => {
  await Promise.all(trackers.map((tracker) => tracker.stop()))
  trackers = []
  vi.useRealTimers()
})

function setup(options: TrackingOptions = {}, holder = 'instance-a', shared?: Setup): Setup {
  const store = shared?.store ?? new Keyv()
  const { index, leases } = coordinationFor(store)
  const errors: Setup['errors'] = shared?.errors ?? []
  const reportError = (error: unknown, context: string) => void errors.push({ error, context })
  const records = new RecordStore(store, index, new StoreGuard(5000, reportError))
  const provider = shared?.provider ?? new ScriptedBatches(records)
  const queue = new DueQueue(index, 'tracking')
  const finished: BatchRecord[] = shared?.finished ?? []
  const logs: Setup['logs'] = shared?.logs ?? []
  const log = (level: string) => (fields: Record<string, unknown>, message?: string) =>
    void logs.push({ level, fields, message })
  const tracker = new BatchTracker(
    provider as unknown as BatchService,
    records,
    queue,
    leases,
    holder,
    async (batch) => {
      finished.push(batch)
      return {} as BatchBilling
    },
    options,
    reportError,
    { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  )
  trackers.push(tracker)
  return { tracker, provider, records, queue, leases, store, finished, errors, logs }
}

let nextId = 0
async function storedBatch(s: Setup, fields: Partial<BatchRecord> = {}): Promise<BatchRecord> {
  nextId++
  const batch = {
    id: `batch_t${nextId}`,
    owner: 'alice',
    provider: 'openai',
    providerBatchId: `up_${nextId}`,
    providerInputFileId: `file_up_${nextId}`,
    endpoint: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    inputFileId: `file_${nextId}`,
    completionWindow: '24h',
    metadata: null,
    createdAt: Math.floor(Date.now() / 1000),
    createdAtMs: Date.now(),
    outputFileId: null,
    errorFileId: null,
    status: 'validating' as BatchStatus,
    refreshedAtMs: Date.now(),
    ...fields,
  } as BatchRecord
  await s.records.addBatch(batch)
  return batch
}

const tracking = (s: Setup, id: string) =>
  readStored<{ polls: number; key: string; notFound?: number }>(s.store, `batchkit:tracking:${id}`)

/** Every queue entry of `id`, due or not. */
async function entries(s: Setup, id: string) {
  return (await s.queue.due(Number.MAX_SAFE_INTEGER, 1000)).filter((entry) => entry.id === id)
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Moves the clock to `id`'s next poll and waits for that poll to be done (its next one scheduled, or its end). */
async function pollAt(s: Setup, id: string): Promise<number> {
  const state = await tracking(s, id)
  if (!state) throw new Error(`${id} is not followed`)
  const [entry] = await entries(s, id)
  if (!entry) throw new Error(`${id} has no poll scheduled`)
  const asked = s.provider.asked.length
  vi.setSystemTime(entry.dueAtMs)
  await until(`the poll of ${id}`, async () => {
    if (s.provider.asked.length === asked) return false
    const now = await tracking(s, id)
    return now === undefined || now.key !== state.key
  })
  return entry.dueAtMs
}

/** Nudges `id` and waits for the poll it asks for to be done. */
async function nudged(s: Setup, id: string): Promise<void> {
  const before = await tracking(s, id)
  const asked = s.provider.asked.length
  await s.tracker.nudge(id)
  await until(`the nudged poll of ${id}`, async () => {
    if (s.provider.asked.length === asked) return false
    const now = await tracking(s, id)
    return now === undefined || now.polls !== before?.polls
  })
}

/** The delay from `fromMs` to `id`'s next poll. */
async function nextDelay(s: Setup, id: string, fromMs: number): Promise<number> {
  const scheduled = await entries(s, id)
  expect(scheduled).toHaveLength(1)
  return (scheduled[0] as { dueAtMs: number }).dueAtMs - fromMs
}

function expectJittered(delay: number, base: number) {
  expect(delay).toBeGreaterThanOrEqual(Math.round(base * (1 - JITTER)))
  expect(delay).toBeLessThanOrEqual(Math.round(base * (1 + JITTER)))
}

describe('the poll schedule', () => {
  it('polls first after initialIntervalMs, then backs off by `backoff` each poll, up to maxIntervalMs', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 3, maxIntervalMs: 5000, tickMs: 2 })
    const batch = await storedBatch(s)
    s.provider.answers = [
      { status: 'in_progress' },
      { status: 'in_progress' },
      { status: 'finalizing' },
      { status: 'completed' },
    ]
    await s.tracker.follow(batch)
    expect(await nextDelay(s, batch.id, T0)).toBe(1000)
    s.tracker.start()

    let at = await pollAt(s, batch.id)
    expectJittered(await nextDelay(s, batch.id, at), 3000)
    at = await pollAt(s, batch.id)
    expectJittered(await nextDelay(s, batch.id, at), 5000)
    at = await pollAt(s, batch.id)
    expectJittered(await nextDelay(s, batch.id, at), 5000)
    await pollAt(s, batch.id)

    expect(s.provider.asked.map((a) => a.how)).toEqual(['refresh', 'refresh', 'refresh', 'refresh'])
    expect(s.finished.map((b) => [b.id, b.status])).toEqual([[batch.id, 'completed']])
    expect(await tracking(s, batch.id)).toBeUndefined()
    expect(await entries(s, batch.id)).toEqual([])
    expect(s.logs.filter((l) => l.message === 'batchkit batch ended')).toEqual([
      { level: 'info', fields: { batchId: batch.id, status: 'completed', polls: 4 }, message: 'batchkit batch ended' },
    ])
    expect(s.errors).toEqual([])
  })

  it('defaults: first poll after 5 s, backoff 1.5, at most 5 minutes apart, a lease of 2 minutes', async () => {
    const s = setup({})
    const batch = await storedBatch(s)
    s.provider.answers = [{ status: 'in_progress' }]
    await s.tracker.follow(batch)
    expect(await nextDelay(s, batch.id, T0)).toBe(5000)
    s.tracker.start()

    // 5 s × 1.5^n passes 300 s after the 11th poll; `nudge` asks for each poll at once.
    for (let polls = 1; polls <= 11; polls++) {
      const asked = s.provider.asked.length
      await s.tracker.nudge(batch.id)
      await until(
        'the nudged poll',
        async () => s.provider.asked.length > asked && (await tracking(s, batch.id))?.polls === polls,
      )
      expectJittered(await nextDelay(s, batch.id, Date.now()), Math.min(5000 * 1.5 ** polls, 300_000))
    }

    // A poll holds the batch's lease for 2 minutes: another instance cannot take it before then.
    let release: () => void = () => undefined
    s.provider.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const asked = s.provider.asked.length
    await s.tracker.nudge(batch.id)
    await until('the held poll', () => s.provider.asked.length > asked)
    const lease = `track:${batch.id}`
    vi.setSystemTime(Date.now() + 119_999)
    expect(await s.leases.acquire(lease, 'instance-b', 1000)).toBe(false)
    vi.setSystemTime(Date.now() + 1)
    expect(await s.leases.acquire(lease, 'instance-b', 1000)).toBe(true)
    await s.leases.release(lease, 'instance-b')
    release()
    expect(s.errors).toEqual([])
  })

  it('renews the lease while a poll runs past it, and gives it up when the poll ends', async () => {
    vi.useRealTimers()
    const s = setup({ initialIntervalMs: 1, tickMs: 2, leaseMs: 60 })
    const batch = await storedBatch(s)
    s.provider.answers = [{ status: 'in_progress' }]
    let release: () => void = () => undefined
    s.provider.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const lease = `track:${batch.id}`
    // Whether another instance could take the lease the moment the tracker let it go: well within the
    // 60 ms a last renewal keeps it, so a release that only stopped renewing would leave it taken.
    const freeOnRelease: boolean[] = []
    const giveUp = s.leases.release.bind(s.leases)
    s.leases.release = async (key, holder) => {
      await giveUp(key, holder)
      if (key === lease) freeOnRelease.push(await s.leases.acquire(lease, 'instance-b', 1000))
    }
    await s.tracker.follow(batch)
    s.tracker.start()
    await until('the held poll', () => s.provider.asked.length === 1)
    // Three lease lengths on, the poll still holds the batch: another instance cannot take it.
    await new Promise((resolve) => setTimeout(resolve, 180))
    const taken = await s.leases.acquire(lease, 'instance-b', 1000)
    s.provider.gate = undefined
    release()
    expect(taken).toBe(false)
    await until('the next poll scheduled', async () => (await tracking(s, batch.id))?.polls === 1)
    await until('the lease given up', () => freeOnRelease.length > 0)
    expect(freeOnRelease).toEqual([true])
    expect(s.errors).toEqual([])
  })

  it('polls a batch with a part waiting for the queue when the part is due, if before the next backoff step', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 3, maxIntervalMs: 60_000, tickMs: 2 })
    const batch = await storedBatch(s)
    await s.tracker.follow(batch)
    s.tracker.start()

    // Due in 700 ms, sooner than the 3 s backoff: the next poll is then (jittered).
    const dueAt = T0 + 1000 + 700
    s.provider.answers = [{ status: 'validating', nextSubmitAtMs: dueAt }]
    const at = await pollAt(s, batch.id)
    expect(at).toBe(T0 + 1000)
    expectJittered(await nextDelay(s, batch.id, at), 700)

    // A poll 1 ms before the part is due only refreshes, and polls again 1 ms later.
    vi.setSystemTime(dueAt - 1)
    await nudged(s, batch.id)
    expect(s.provider.asked.map((a) => a.how)).toEqual(['refresh', 'refresh'])
    expect(await nextDelay(s, batch.id, dueAt - 1)).toBe(1)

    // Once due it submits the part again. The next part waits longer than the backoff (27 s): the backoff wins.
    s.provider.answers = [{ status: 'validating', nextSubmitAtMs: dueAt + 100_000 }]
    expect(await pollAt(s, batch.id)).toBe(dueAt)
    expect(s.provider.asked.map((a) => a.how)).toEqual(['refresh', 'refresh', 'resubmit'])
    expectJittered(await nextDelay(s, batch.id, dueAt), 27_000)

    // A part already past due (its provider still busy) is polled for after the first interval, never in a loop.
    s.provider.answers = [{ status: 'validating', nextSubmitAtMs: dueAt - 500 }]
    await nudged(s, batch.id)
    const delay = await nextDelay(s, batch.id, dueAt)
    expectJittered(delay, 1000)
    vi.setSystemTime(dueAt + delay)
    await until('the poll of the part past due', () => s.provider.asked.length >= 5)
    expect(s.provider.asked.slice(0, 5).map((a) => a.how)).toEqual([
      'refresh',
      'refresh',
      'resubmit',
      'refresh',
      'resubmit',
    ])
    expect(s.errors).toEqual([])
  })
})

describe('what the tracker follows', () => {
  it('follows a batch once: following it again keeps its schedule and its count of polls', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 2, maxIntervalMs: 60_000, tickMs: 2 })
    const batch = await storedBatch(s)
    s.provider.answers = [{ status: 'in_progress' }]
    await s.tracker.follow(batch)
    s.tracker.start()
    await pollAt(s, batch.id)
    const state = await tracking(s, batch.id)
    expect(state?.polls).toBe(1)

    await s.tracker.follow(batch)
    expect(await tracking(s, batch.id)).toEqual(state)
    expect((await entries(s, batch.id)).map((e) => e.key)).toEqual([state?.key])
  })

  it('a nudge polls at once, even between two ticks, and leaves one poll scheduled', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 2, maxIntervalMs: 60_000, tickMs: 60_000 })
    const batch = await storedBatch(s)
    s.provider.answers = [{ status: 'in_progress' }]
    await s.tracker.follow(batch)
    const followed = await tracking(s, batch.id)

    // Not started: the nudge only moves the poll to now.
    await s.tracker.nudge(batch.id)
    const nudged = await tracking(s, batch.id)
    expect(nudged).toEqual({ ...followed, key: expect.any(String) })
    expect(await entries(s, batch.id)).toEqual([{ id: batch.id, dueAtMs: T0, key: nudged?.key }])
    // A second nudge in the same millisecond keeps that one poll.
    await s.tracker.nudge(batch.id)
    expect(await tracking(s, batch.id)).toEqual(nudged)
    expect(await entries(s, batch.id)).toEqual([{ id: batch.id, dueAtMs: T0, key: nudged?.key }])

    // Started, its first tick finds the poll due now; a later nudge is not left for the next tick, a minute on.
    s.tracker.start()
    await until('the first poll', () => s.provider.asked.length === 1)
    await until('the next poll scheduled', async () => (await tracking(s, batch.id))?.polls === 1)
    vi.setSystemTime(T0 + 5)
    await s.tracker.nudge(batch.id)
    await until('the nudged poll', () => s.provider.asked.length === 2)
    expect(s.provider.asked).toEqual([
      { how: 'refresh', atMs: T0 },
      { how: 'refresh', atMs: T0 + 5 },
    ])
  })

  it('a nudge while a poll waits for the provider is kept: the batch is polled again at once, not after the backoff', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 2, maxIntervalMs: 60_000, tickMs: 2 })
    const batch = await storedBatch(s)
    s.provider.answers = [{ status: 'in_progress' }]
    await s.tracker.follow(batch)
    let release: () => void = () => undefined
    s.provider.gate = new Promise<void>((resolve) => {
      release = resolve
    })
    s.tracker.start()
    vi.setSystemTime(T0 + 1000)
    await until('the held poll', () => s.provider.asked.length === 1)

    // Say a reader saw the batch end but could not bill it: it nudges while the tracker's poll is out.
    vi.setSystemTime(T0 + 1500)
    await s.tracker.nudge(batch.id)
    const nudged = await tracking(s, batch.id)
    s.provider.gate = undefined
    release()
    await until('the nudged poll', () => s.provider.asked.length === 2)
    expect(s.provider.asked).toEqual([
      { how: 'refresh', atMs: T0 + 1000 },
      { how: 'refresh', atMs: T0 + 1500 },
    ])
    // After it, one poll is scheduled, a backoff step on from the nudged one.
    await until('the next poll scheduled', async () => (await tracking(s, batch.id))?.key !== nudged?.key)
    const state = await tracking(s, batch.id)
    expect(state?.polls).toBe(1)
    expect((await entries(s, batch.id)).map((e) => e.key)).toEqual([state?.key])
    expectJittered(await nextDelay(s, batch.id, T0 + 1500), 2000)
    expect(s.errors).toEqual([])
  })

  it('a nudge for a batch it does not follow does nothing', async () => {
    const s = setup({ tickMs: 2 })
    s.tracker.start()
    await s.tracker.nudge('batch_unknown')
    expect(await tracking(s, 'batch_unknown')).toBeUndefined()
    expect(await entries(s, 'batch_unknown')).toEqual([])
    expect(s.errors).toEqual([])
  })

  it('stops following a batch whose record is gone, without asking the provider', async () => {
    const s = setup({ initialIntervalMs: 1000, tickMs: 2 })
    const batch = await storedBatch(s)
    await s.tracker.follow(batch)
    await s.records.deleteBatch(batch)
    s.tracker.start()
    vi.setSystemTime(T0 + 1000)
    await until('the schedule dropped', async () => (await tracking(s, batch.id)) === undefined)
    await s.tracker.stop()
    expect(await entries(s, batch.id)).toEqual([])
    expect(s.provider.asked).toEqual([])
    expect(s.finished).toEqual([])
    expect(s.errors).toEqual([])
  })

  it('drops a poll superseded by a later one without asking the provider', async () => {
    const s = setup({ initialIntervalMs: 1000, tickMs: 2 })
    const batch = await storedBatch(s)
    await s.tracker.follow(batch)
    const state = await tracking(s, batch.id)
    // A reschedule cut short between adding its entry and removing the old one: the old one is due now.
    const stale = await s.queue.schedule(batch.id, T0 - 10)
    s.tracker.start()
    await until('the superseded entry dropped', async () => (await entries(s, batch.id)).length === 1)
    await s.tracker.stop()
    expect(await entries(s, batch.id)).toEqual([{ id: batch.id, dueAtMs: T0 + 1000, key: state?.key }])
    expect(stale).not.toBe(state?.key)
    expect(await tracking(s, batch.id)).toEqual(state)
    expect(s.provider.asked).toEqual([])
  })

  it('drops a queue entry with no schedule once it is more than a minute old, not before', async () => {
    const s = setup({ tickMs: 2 })
    // `follow` adds the entry before the schedule: an entry alone may be a follow under way.
    await s.queue.schedule('batch_young', T0 - 60_000)
    await s.queue.schedule('batch_old', T0 - 60_001)
    s.tracker.start()
    await until('the old entry dropped', async () => (await entries(s, 'batch_old')).length === 0)
    await s.tracker.stop()
    expect(await entries(s, 'batch_young')).toEqual([
      { id: 'batch_young', dueAtMs: T0 - 60_000, key: expect.any(String) },
    ])
    expect(s.provider.asked).toEqual([])
    expect(s.errors).toEqual([])
  })
})

describe('several instances', () => {
  it('leaves a batch alone while another instance holds it, and gives its own hold up after each poll', async () => {
    const a = setup({ initialIntervalMs: 1000, backoff: 2, maxIntervalMs: 60_000, tickMs: 2 }, 'instance-a')
    const held = await storedBatch(a)
    const free = await storedBatch(a)
    a.provider.answers = [{ status: 'in_progress' }]
    await a.tracker.follow(held)
    await a.tracker.follow(free)
    expect(await a.leases.acquire(`track:${held.id}`, 'instance-b', 60_000)).toBe(true)

    vi.setSystemTime(T0 + 1000)
    a.tracker.start()
    await until('the free batch polled', async () => (await tracking(a, free.id))?.polls === 1)
    await a.tracker.stop()
    expect(a.provider.asked).toHaveLength(1)
    expect((await tracking(a, held.id))?.polls).toBe(0)
    // Instance a gave the free batch's hold up: instance b can take it at once.
    expect(await a.leases.acquire(`track:${free.id}`, 'instance-b', 60_000)).toBe(true)

    // Once b lets go, a polls it.
    await a.leases.release(`track:${held.id}`, 'instance-b')
    a.tracker.start()
    await until('the held batch polled', async () => (await tracking(a, held.id))?.polls === 1)
    expect(a.provider.asked).toHaveLength(2)
    expect(a.errors).toEqual([])
  })
})

describe('failures', () => {
  it('reports a schedule it cannot read as "tracking batches", and goes on', async () => {
    const s = setup({ tickMs: 2 })
    const failure = new Error('index down')
    const due = vi.spyOn(s.queue, 'due').mockRejectedValueOnce(failure)
    s.tracker.start()
    await until('a second look at the schedule', () => due.mock.calls.length >= 2)
    expect(s.errors[0]).toEqual({ error: failure, context: 'tracking batches' })
  })

  it('marks a batch failed after three "not found" polls in a row, at the time of the third', async () => {
    const s = setup({ initialIntervalMs: 1000, backoff: 2, maxIntervalMs: 60_000, tickMs: 2 })
    const batch = await storedBatch(s)
    const gone = () =>
      new ApiError(502, 'The openai provider no longer has this object.', { code: 'upstream_not_found' })
    s.provider.answers = [gone(), gone(), gone(), { status: 'in_progress' }]
    await s.tracker.follow(batch)
    s.tracker.start()
    await pollAt(s, batch.id)
    expect(await tracking(s, batch.id)).toMatchObject({ polls: 1, notFound: 1 })
    await pollAt(s, batch.id)
    expect(await tracking(s, batch.id)).toMatchObject({ polls: 2, notFound: 2 })
    const at = await pollAt(s, batch.id)

    expect(s.provider.asked).toHaveLength(3)
    const failed = {
      ...batch,
      status: 'failed',
      failedAt: Math.floor(at / 1000),
      errors: [
        {
          code: 'upstream_not_found',
          message: 'The provider no longer has this batch; batchkit stopped following it.',
          param: null,
          line: null,
        },
      ],
    }
    expect(s.finished).toEqual([failed])
    expect(await s.records.getBatch(batch.id)).toEqual(failed)
    expect(s.errors.map((e) => e.context)).toEqual([
      `polling ${batch.id}`,
      `polling ${batch.id}`,
      `polling ${batch.id}`,
    ])
    expect(s.logs).toEqual([
      { level: 'warn', fields: { batchId: batch.id }, message: 'batchkit lost a batch upstream: marked failed' },
      { level: 'info', fields: { batchId: batch.id, status: 'failed', polls: 3 }, message: 'batchkit batch ended' },
    ])
    expect(await tracking(s, batch.id)).toBeUndefined()
    expect(await entries(s, batch.id)).toEqual([])
  })
})

describe('ticks', () => {
  it('looks at its schedule when started, then every tickMs (default 1 s)', async () => {
    vi.useRealTimers()
    vi.useFakeTimers({ now: T0 })
    for (const [options, tickMs] of [
      [{}, 1000],
      [{ tickMs: 50 }, 50],
    ] as const) {
      const s = setup(options)
      const due = vi.spyOn(s.queue, 'due')
      s.tracker.start()
      await vi.advanceTimersByTimeAsync(0)
      expect(due).toHaveBeenCalledTimes(1)
      await vi.advanceTimersByTimeAsync(tickMs - 1)
      expect(due).toHaveBeenCalledTimes(1)
      await vi.advanceTimersByTimeAsync(1)
      expect(due).toHaveBeenCalledTimes(2)
      await vi.advanceTimersByTimeAsync(tickMs)
      expect(due).toHaveBeenCalledTimes(3)
      await s.tracker.stop()
    }
  })
})
