import { Keyv } from 'keyv'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type AttemptOutcome, DeliveryQueue } from '../src/events/delivery-queue.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'
import { StoreGuard } from '../src/store/guard.js'
import type { LeaseStore } from '../src/store/leases.js'
import { sortKey } from '../src/store/ordered-index.js'
import { RecordStore } from '../src/store/records.js'

/**
 * The durable delivery queue under the event outbox and webhooks, on a clock that stands still until
 * a test moves it (only `Date` is faked; the poller's timers are real): what it stores, when it tries
 * again, and how it cleans up after an instance that died half-way through a write.
 */

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0)
const LEASE_MS = 60_000

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

interface State {
  n: number
}

interface Setup {
  records: RecordStore
  queue: DueQueue
  leases: LeaseStore
  deliveries: DeliveryQueue<State>
  attempts: Array<{ id: string; state: State }>
  errors: Array<{ error: unknown; context: string }>
}

/** A queue whose attempts answer `outcome`, polled every 5 ms, and what it was asked and reported. */
function setup(
  outcome: (id: string, state: State) => Promise<AttemptOutcome<State>> = async () => ({ done: true }),
  overrides: { queue?: (queue: DueQueue) => DueQueue } = {},
): Setup {
  const store = new Keyv()
  const { index, leases } = coordinationFor(store)
  const errors: Setup['errors'] = []
  const reportError = (error: unknown, context: string) => void errors.push({ error, context })
  const records = new RecordStore(store, index, new StoreGuard(5000, reportError))
  const own = new DueQueue(index, 'deliveries')
  const queue = overrides.queue?.(own) ?? own
  const attempts: Setup['attempts'] = []
  const deliveries = new DeliveryQueue<State>({
    kinds: { pending: 'event', done: 'event-done' },
    store: records,
    queue,
    leases,
    holder: 'instance-a',
    leaseMs: LEASE_MS,
    pollIntervalMs: 5,
    attempt: (id, state) => {
      attempts.push({ id, state })
      return outcome(id, state)
    },
    reportError,
  })
  return { records, queue, leases, deliveries, attempts, errors }
}

/** Waits (on real timers) until `check` holds. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Lets the poller run a few times, for a test that something does not happen. */
const somePolls = () => new Promise((resolve) => setTimeout(resolve, 60))

const keysOf = async (queue: DueQueue) => (await queue.due(Number.MAX_SAFE_INTEGER, 100)).map((entry) => entry.key)

describe('a delivery queue', () => {
  it('attempts an enqueued delivery once, remembers it done, and drops a late duplicate', async () => {
    const s = setup()
    s.deliveries.start()
    try {
      await Promise.all([s.deliveries.enqueue('a', { n: 1 }), s.deliveries.enqueue('b', { n: 2 })])
      await s.deliveries.enqueue('a', { n: 99 })
      await until('both attempted', () => s.attempts.length === 2)
      await until('the queue emptied', async () => (await keysOf(s.queue)).length === 0)
      await s.deliveries.enqueue('a', { n: 100 })
      await somePolls()
      expect(s.attempts.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
        { id: 'a', state: { n: 1 } },
        { id: 'b', state: { n: 2 } },
      ])
      expect(await s.records.getRecord('event', 'a')).toBeUndefined()
      expect(await s.records.getRecord('event-done', 'a')).toBe(true)
      expect(await keysOf(s.queue)).toEqual([])
      expect(s.errors).toEqual([])
    } finally {
      await s.deliveries.stop()
    }
  })

  it('stores the state an attempt hands back and tries again at the time it asks for, not before', async () => {
    const s = setup(async (_id, state) =>
      state.n < 2 ? { done: false, state: { n: state.n + 1 }, retryInMs: 5000 } : { done: true },
    )
    s.deliveries.start()
    try {
      await s.deliveries.enqueue('a', { n: 1 })
      await until('the first attempt', () => s.attempts.length === 1)
      const retryKey = sortKey(T0 + 5000, 'a')
      await until('the retry scheduled', async () => (await keysOf(s.queue)).join() === retryKey)
      expect(await s.records.getRecord('event', 'a')).toEqual({ n: 2, key: retryKey })
      vi.setSystemTime(T0 + 4999)
      await somePolls()
      expect(s.attempts).toHaveLength(1)
      vi.setSystemTime(T0 + 5000)
      await until('the second attempt', () => s.attempts.length === 2)
      expect(s.attempts[1]).toEqual({ id: 'a', state: { n: 2 } })
      await until('the queue emptied', async () => (await keysOf(s.queue)).length === 0)
      expect(await s.records.getRecord('event-done', 'a')).toBe(true)
    } finally {
      await s.deliveries.stop()
    }
  })

  it('leaves a queue entry whose record is missing for as long as an enqueue may still be writing it, then drops it', async () => {
    const s = setup()
    // An enqueue that died between its two writes: the queue entry, and no record.
    const orphan = await s.queue.schedule('ghost', T0)
    s.deliveries.start()
    try {
      await somePolls()
      vi.setSystemTime(T0 + LEASE_MS)
      await somePolls()
      expect(await keysOf(s.queue)).toEqual([orphan])
      vi.setSystemTime(T0 + LEASE_MS + 1)
      await until('the orphan entry dropped', async () => (await keysOf(s.queue)).length === 0)
      expect(s.attempts).toEqual([])
      expect(await s.leases.acquire('event:ghost', 'instance-b', 1000)).toBe(true)
    } finally {
      await s.deliveries.stop()
    }
  })

  it('drops a queue entry that a reschedule replaced, without attempting the delivery for it', async () => {
    const s = setup(async (_id, state) => ({ done: false, state, retryInMs: 60_000 }))
    s.deliveries.start()
    try {
      await s.deliveries.enqueue('a', { n: 1 })
      await until('the retry scheduled', async () => (await keysOf(s.queue)).join() === sortKey(T0 + 60_000, 'a'))
      // A reschedule that died after adding its new entry and storing the record, before removing the old one.
      const stale = await s.queue.schedule('a', T0 - 1)
      await until('the stale entry dropped', async () => !(await keysOf(s.queue)).includes(stale))
      expect(s.attempts).toHaveLength(1)
      expect(await keysOf(s.queue)).toEqual([sortKey(T0 + 60_000, 'a')])
    } finally {
      await s.deliveries.stop()
    }
  })

  it('leaves a delivery another instance holds, and releases its own lease after each attempt', async () => {
    const s = setup(async (_id, state) => ({ done: false, state, retryInMs: 60_000 }))
    expect(await s.leases.acquire('event:a', 'instance-b', LEASE_MS)).toBe(true)
    s.deliveries.start()
    try {
      await s.deliveries.enqueue('a', { n: 1 })
      await somePolls()
      expect(s.attempts).toEqual([])
      await s.leases.release('event:a', 'instance-b')
      await until('the attempt', () => s.attempts.length === 1)
      await until('the retry scheduled', async () => (await keysOf(s.queue)).join() === sortKey(T0 + 60_000, 'a'))
      await until('the lease released', () => s.leases.acquire('event:a', 'instance-b', LEASE_MS))
    } finally {
      await s.deliveries.stop()
    }
  })

  it('goes on with other deliveries while one attempt hangs', async () => {
    let release: (() => void) | undefined
    const s = setup(async (id) => {
      if (id === 'slow') await new Promise<void>((resolve) => (release = resolve))
      return { done: true }
    })
    s.deliveries.start()
    try {
      await s.deliveries.enqueue('slow', { n: 1 })
      await until('the slow attempt', () => s.attempts.length === 1)
      await s.deliveries.enqueue('fast', { n: 2 })
      await until('the fast one done', async () => (await s.records.getRecord('event-done', 'fast')) === true)
      expect(s.attempts.map((a) => a.id)).toEqual(['slow', 'fast'])
      expect(await keysOf(s.queue)).toEqual([sortKey(T0, 'slow')])
      release?.()
      await until('the slow one done', async () => (await s.records.getRecord('event-done', 'slow')) === true)
    } finally {
      await s.deliveries.stop()
    }
  })

  it('has at most 100 attempts under way, and starts the next as soon as one ends', async () => {
    const releases = new Map<string, () => void>()
    let reads = 0
    const s = setup(
      async (id) => {
        await new Promise<void>((resolve) => releases.set(id, resolve))
        return { done: true }
      },
      {
        queue: (queue) =>
          Object.assign(Object.create(queue) as DueQueue, {
            due: (nowMs: number, limit: number) => {
              reads++
              return queue.due(nowMs, limit)
            },
          }),
      },
    )
    s.deliveries.start()
    try {
      const ids = Array.from({ length: 102 }, (_, i) => `d${String(i).padStart(3, '0')}`)
      for (const id of ids) await s.deliveries.enqueue(id, { n: 1 })
      await until('100 attempts under way', () => s.attempts.length === 100)
      await somePolls()
      // Full: polls read nothing from the store until an attempt ends.
      const readsWhenFull = reads
      await somePolls()
      expect(reads).toBe(readsWhenFull)
      expect(s.attempts).toHaveLength(100)
      expect(s.attempts.map((a) => a.id)).not.toContain('d100')
      // One ends: one of the two waiting takes its place, and only one.
      releases.get('d000')?.()
      await until('the 101st attempt', () => s.attempts.length === 101)
      await somePolls()
      expect(s.attempts.map((a) => a.id).slice(100)).toEqual(['d100'])
      releases.get('d001')?.()
      await until('the 102nd attempt', () => s.attempts.length === 102)
      expect(s.attempts.at(-1)?.id).toBe('d101')
      // Another ends while 100 are under way again: a delivery enqueued now takes its place.
      releases.get('d002')?.()
      await s.deliveries.enqueue('late', { n: 2 })
      await until('the late attempt', () => s.attempts.length === 103)
      expect(s.attempts.at(-1)?.id).toBe('late')
    } finally {
      for (const release of releases.values()) release()
      await s.deliveries.stop()
    }
  })

  it("reports a failed poll and a failed delivery with what it was doing, and keeps the delivery's record", async () => {
    const failing = setup(undefined, {
      queue: () => ({ due: async () => Promise.reject(new Error('store down')) }) as unknown as DueQueue,
    })
    failing.deliveries.start()
    await until('the poll reported', () => failing.errors.length > 0)
    await failing.deliveries.stop()
    expect(failing.errors[0]).toMatchObject({ context: 'delivering events', error: { message: 'store down' } })

    const s = setup(async () => Promise.reject(new Error('attempt threw')))
    s.deliveries.start()
    try {
      await s.deliveries.enqueue('a', { n: 1 })
      await until('the delivery reported', () => s.errors.length > 0)
      expect(s.errors[0]).toMatchObject({ context: 'delivering event a', error: { message: 'attempt threw' } })
      expect(await s.records.getRecord('event', 'a')).toEqual({ n: 1, key: sortKey(T0, 'a') })
      expect(await s.leases.acquire('event:a', 'instance-b', LEASE_MS)).toBe(true)
    } finally {
      await s.deliveries.stop()
    }
  })
})
