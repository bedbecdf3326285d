import { createHash } from 'node:crypto'
import { Keyv } from 'keyv'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from '../src/errors.js'
import { IdempotencyKeys, type IdempotentCreate } from '../src/intents/idempotency.js'
import { type Intent, IntentLog, type NewIntent, searchSince } from '../src/intents/intent-log.js'
import { IntentReconciler } from '../src/intents/reconciler.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'
import { StoreGuard } from '../src/store/guard.js'
import type { LeaseStore } from '../src/store/leases.js'
import { RecordStore } from '../src/store/records.js'

/**
 * The write-ahead log of creates, its reconciler and `Idempotency-Key`, on a clock that stands still
 * until a test moves it (only `Date` is faked): what is written down, when an abandoned create is looked
 * at again, what a retried request answers.
 */

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0)
const GRACE = 1000

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

interface Setup {
  store: Keyv
  records: RecordStore
  queue: DueQueue
  leases: LeaseStore
  log: IntentLog
  errors: Array<{ error: unknown; context: string }>
  logs: Array<{ fields: Record<string, unknown>; message?: string }>
}

function setup(graceMs = GRACE, leasesOverride?: LeaseStore): Setup {
  const store = new Keyv()
  const { index, leases: memory } = coordinationFor(store)
  const leases = leasesOverride ?? memory
  const errors: Setup['errors'] = []
  const reportError = (error: unknown, context: string) => void errors.push({ error, context })
  const records = new RecordStore(store, index, new StoreGuard(5000, reportError))
  const queue = new DueQueue(index, 'intents')
  const log = new IntentLog(records, queue, leases, 'instance-a', graceMs, reportError)
  return { store, records, queue, leases, log, errors, logs: [] }
}

function reconciler(s: Setup, settle: (intent: Intent) => Promise<void>, intervalMs = 60_000) {
  const logger = {
    debug() {},
    warn() {},
    error() {},
    info: (fields: Record<string, unknown>, message?: string) => void s.logs.push({ fields, message }),
  }
  return new IntentReconciler(
    s.log,
    settle,
    intervalMs,
    (error, context) => void s.errors.push({ error, context }),
    logger,
  )
}

let n = 0
function newIntent(fields: Partial<NewIntent> = {}): NewIntent {
  n++
  return {
    kind: 'batch',
    id: `batch_i${n}`,
    owner: 'alice',
    provider: 'openai',
    createdAtMs: Date.now(),
    batch: { id: `batch_i${n}` } as never,
    ...fields,
  } as NewIntent
}

const entries = async (s: Setup, id?: string) =>
  (await s.queue.due(Number.MAX_SAFE_INTEGER, 1000)).filter((e) => id === undefined || e.id === id)

const inProgress = {
  status: 409,
  code: 'request_in_progress',
  message: 'Another request for this object is still in progress; retry shortly.',
}

/** Waits on the real timers (vi.waitFor would move the fake clock). */
async function until(what: string, check: () => boolean, timeoutMs = 2000): Promise<void> {
  const started = performance.now()
  while (!check()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

describe('the intent log', () => {
  it('writes an intent down with its first look due after the grace period, and holds it', async () => {
    const s = setup()
    const intent = newIntent({ createdAtMs: T0 - 200 })
    const hold = await s.log.begin(intent)
    const [entry] = await entries(s, intent.id)
    expect(entry?.dueAtMs).toBe(T0 - 200 + GRACE)
    expect(await s.log.get(intent.id)).toEqual({ ...intent, key: entry?.key, attempts: 0 })

    // Held: neither a second begin nor a settle may touch it; the hold lasts the grace period.
    await expect(s.log.begin(intent)).rejects.toMatchObject(inProgress)
    await expect(s.log.settleNow(intent.id, async () => undefined)).rejects.toMatchObject(inProgress)
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(false)
    vi.setSystemTime(T0 + GRACE - 1)
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(false)
    vi.setSystemTime(T0 + GRACE)
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(true)
    await hold.release()
  })

  it('lets the hold go when it cannot write the intent down', async () => {
    const s = setup()
    const intent = newIntent()
    const failure = new Error('index down')
    vi.spyOn(s.queue, 'schedule').mockRejectedValueOnce(failure)
    await expect(s.log.begin(intent)).rejects.toBe(failure)
    expect(await s.log.get(intent.id)).toBeUndefined()
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(true)
  })

  it('ends an intent: its record, its queue entry and its hold go', async () => {
    const s = setup()
    const intent = newIntent()
    const other = newIntent()
    const hold = await s.log.begin(intent)
    await (await s.log.begin(other)).release()
    await s.log.end(intent.id, hold)
    expect(await s.log.get(intent.id)).toBeUndefined()
    expect(await entries(s, intent.id)).toEqual([])
    expect(await entries(s, other.id)).toHaveLength(1)
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(true)
    // Ending an intent that is already gone is fine.
    await s.log.end(intent.id)
  })

  it('notes what a create has done so far, and refuses a note for no intent', async () => {
    const s = setup()
    const intent = newIntent({ kind: 'file' } as Partial<NewIntent>)
    await (await s.log.begin(intent)).release()
    const begun = await s.log.get(intent.id)
    await s.log.note(intent.id, { parts: 3 })
    expect(await s.log.get(intent.id)).toEqual({ ...begun, parts: 3 })
    await expect(s.log.note('file_none', { parts: 1 })).rejects.toThrow('no intent file_none to note')
  })

  it('settles a leftover intent at once, and does nothing for none', async () => {
    const s = setup()
    const intent = newIntent()
    await (await s.log.begin(intent)).release()
    const settled: Intent[] = []
    await s.log.settleNow('batch_none', async (i) => void settled.push(i))
    expect(settled).toEqual([])
    await s.log.settleNow(intent.id, async (i) => void settled.push(i))
    expect(settled.map((i) => i.id)).toEqual([intent.id])
    expect(await s.log.get(intent.id)).toBeUndefined()
    expect(await entries(s, intent.id)).toEqual([])
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(true)
  })

  it('reports a renewal of a hold that fails, with the intent it is for', async () => {
    const failure = new Error('lease store down')
    let takes = 0
    const leases: LeaseStore = {
      shared: false,
      acquire: async () => {
        takes++
        if (takes > 1) throw failure
        return true
      },
      release: async () => undefined,
    }
    const s = setup(30, leases)
    const intent = newIntent()
    const hold = await s.log.begin(intent)
    // Renewed every third of the grace period (10 ms, on the real timers).
    await until('a failed renewal', () => s.errors.length > 0)
    await hold.release()
    expect(s.errors[0]).toEqual({ error: failure, context: `renewing the lease of ${intent.id}` })
  })
})

describe('settling a leftover intent at once', () => {
  it('does nothing for an intent already gone, even while another instance holds its lease', async () => {
    const s = setup()
    expect(await s.leases.acquire('intent:batch_gone', 'instance-b', 60_000)).toBe(true)
    const settled: string[] = []
    await s.log.settleNow('batch_gone', async (i) => void settled.push(i.id))
    expect(settled).toEqual([])
  })

  it('does not settle an intent ended by its creator between the look and the hold', async () => {
    const s = setup()
    const intent = newIntent()
    await (await s.log.begin(intent)).release()
    const seen = await s.log.get(intent.id)
    await s.log.end(intent.id)
    vi.spyOn(s.log, 'get').mockResolvedValueOnce(seen)
    const settled: string[] = []
    await s.log.settleNow(intent.id, async (i) => void settled.push(i.id))
    expect(settled).toEqual([])
  })

  it('searches the provider from five minutes before the intent began, in whole seconds', () => {
    const intent = { createdAtMs: T0 + 999 } as Intent
    expect(searchSince(intent)).toBe(T0 / 1000 - 300)
  })
})

describe('the reconciler', () => {
  it('settles an intent once its creator is gone and its grace period has passed, and logs it', async () => {
    const s = setup()
    const intent = newIntent()
    await (await s.log.begin(intent)).release()
    const settled: string[] = []
    const r = reconciler(s, async (i) => void settled.push(i.id))
    vi.setSystemTime(T0 + GRACE - 1)
    await r.reconcileDue()
    expect(settled).toEqual([])
    vi.setSystemTime(T0 + GRACE)
    await r.reconcileDue()
    expect(settled).toEqual([intent.id])
    expect(await s.log.get(intent.id)).toBeUndefined()
    expect(await entries(s)).toEqual([])
    expect(s.logs).toEqual([
      { fields: { intentId: intent.id, kind: 'batch' }, message: 'batchkit settled an abandoned create' },
    ])
    // Its lease was given back.
    expect(await s.leases.acquire(`intent:${intent.id}`, 'instance-b', 10)).toBe(true)
  })

  it('leaves an intent alone while its creator still holds it', async () => {
    const s = setup()
    const intent = newIntent()
    const hold = await s.log.begin(intent)
    const settled: string[] = []
    const r = reconciler(s, async (i) => void settled.push(i.id))
    vi.setSystemTime(T0 + GRACE + 10)
    await hold.release()
    const again = await s.log.hold(intent.id)
    await r.reconcileDue()
    expect(settled).toEqual([])
    expect(await s.log.get(intent.id)).toMatchObject({ id: intent.id, attempts: 0 })
    await again?.release()
  })

  it('retries a settle that fails with backoff from the grace period, doubling, at most 10 minutes', async () => {
    const s = setup(60_000)
    const intent = newIntent()
    await (await s.log.begin(intent)).release()
    const failure = new Error('provider down')
    const r = reconciler(s, async () => {
      throw failure
    })
    const delays: number[] = []
    for (let attempt = 0; attempt < 5; attempt++) {
      const [entry] = await entries(s, intent.id)
      if (!entry) throw new Error('no look scheduled')
      vi.setSystemTime(entry.dueAtMs)
      await r.reconcileDue()
      const [next] = await entries(s, intent.id)
      expect(await entries(s, intent.id)).toHaveLength(1)
      expect(await s.log.get(intent.id)).toMatchObject({ attempts: attempt + 1, key: next?.key })
      delays.push((next?.dueAtMs ?? 0) - entry.dueAtMs)
    }
    // 60 s × 2^attempts, capped at 10 minutes, each spread by up to 20% either way.
    const expected = [60_000, 120_000, 240_000, 480_000, 600_000]
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(Math.round((expected[i] as number) * 0.8))
      expect(delay).toBeLessThanOrEqual(Math.round((expected[i] as number) * 1.2))
    })
    expect(s.errors).toEqual(Array(5).fill({ error: failure, context: `settling the batch intent ${intent.id}` }))
    expect(s.logs).toEqual([])
  })

  it('drops a queue entry with no intent once the grace period has passed, and a superseded one at once', async () => {
    const s = setup()
    await s.queue.schedule('batch_young', T0 - GRACE)
    await s.queue.schedule('batch_old', T0 - GRACE - 1)
    const intent = newIntent({ createdAtMs: T0 - GRACE - 5 })
    await (await s.log.begin(intent)).release()
    const current = await s.log.get(intent.id)
    // An entry a retry cut short left behind: the intent's own entry is later.
    await s.log.retryLater({ ...(current as Intent) }, 60_000)
    const moved = await s.log.get(intent.id)
    const stale = await s.queue.schedule(intent.id, T0 - 1)
    const settled: string[] = []
    await reconciler(s, async (i) => void settled.push(i.id)).reconcileDue()

    expect(settled).toEqual([])
    // Left: the entry with no intent that is not yet older than the grace period, and the intent's own.
    expect(await entries(s, 'batch_young')).toEqual([
      { id: 'batch_young', dueAtMs: T0 - GRACE, key: expect.any(String) },
    ])
    expect(await entries(s, 'batch_old')).toEqual([])
    expect(await entries(s, intent.id)).toEqual([{ id: intent.id, dueAtMs: T0 + 60_000, key: moved?.key }])
    expect(stale).not.toBe(moved?.key)
    expect(await s.log.get(intent.id)).toEqual(moved)
    expect(s.errors).toEqual([])
  })

  it('reports a look at the queue that fails as "reconciling intents", and goes on', async () => {
    const s = setup()
    const failure = new Error('index down')
    const due = vi.spyOn(s.log, 'due').mockRejectedValueOnce(failure)
    const r = reconciler(s, async () => undefined, 5)
    r.start()
    try {
      await until('a second look', () => due.mock.calls.length >= 2)
    } finally {
      await r.stop()
    }
    expect(s.errors[0]).toEqual({ error: failure, context: 'reconciling intents' })
  })
})

describe('Idempotency-Key', () => {
  interface Script {
    created: string[]
    replayed: Array<[string, string | null]>
    settled: string[]
    existing: Set<string>
    fail?: Error
    gate?: Promise<void>
  }

  function keys(s: Setup) {
    return new IdempotencyKeys(
      s.records,
      s.leases,
      s.log,
      'instance-a',
      (error, context) => void s.errors.push({ error, context }),
    )
  }

  let ids = 0
  function op(script: Script, fingerprint?: string, late = 'fp-late'): IdempotentCreate<string> {
    return {
      fingerprint,
      newId: () => `obj_${++ids}`,
      async create(id) {
        script.created.push(id)
        await script.gate
        if (script.fail) throw script.fail
        script.existing.add(id)
        return { value: `created ${id}`, fingerprint: fingerprint ?? late }
      },
      async replay(id, first) {
        script.replayed.push([id, first])
        return `replayed ${id}`
      },
      exists: async (id) => script.existing.has(id),
      settle: async (intent) => void script.settled.push(intent.id),
    }
  }

  const script = (): Script => ({ created: [], replayed: [], settled: [], existing: new Set() })
  const reused = { status: 400, code: 'idempotency_key_reused', param: 'Idempotency-Key' }

  it('takes keys of 1 to 255 printable ASCII characters and refuses others with a 400', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    for (const key of ['!', '~', 'a'.repeat(255), 'key-1_ABC.:/']) {
      await expect(k.run('alice', key, op(sc, 'fp'))).resolves.toMatch(/^created obj_/)
    }
    for (const key of ['', 'a'.repeat(256), 'has space', 'tab\t', 'ünï', 'x\u007f']) {
      await expect(k.run('alice', key, op(sc, 'fp'))).rejects.toMatchObject({
        status: 400,
        code: 'invalid_idempotency_key',
        message: 'The Idempotency-Key header must be 1 to 255 printable ASCII characters.',
      })
    }
    expect(sc.created).toHaveLength(4)
  })

  it('answers a retry with the first result for 24 hours, and creates again after', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    const created = await k.run('alice', 'k1', op(sc, 'fp'))
    const first = sc.created[0] as string
    expect(created).toBe(`created ${first}`)
    expect(await k.run('alice', 'k1', op(sc, 'fp'))).toBe(`replayed ${first}`)
    // Another owner's key of the same name is another key.
    expect(await k.run('bob', 'k1', op(sc, 'fp'))).toMatch(/^created /)
    await expect(k.run('alice', 'k1', op(sc, 'fp-other'))).rejects.toMatchObject(reused)
    vi.setSystemTime(T0 + 24 * 60 * 60 * 1000 - 1)
    expect(await k.run('alice', 'k1', op(sc, 'fp'))).toBe(`replayed ${first}`)
    vi.setSystemTime(T0 + 24 * 60 * 60 * 1000 + 1)
    expect(await k.run('alice', 'k1', op(sc, 'fp-other'))).toMatch(/^created /)
    expect(sc.created).toHaveLength(3)
    expect(sc.replayed).toEqual([
      [first, 'fp'],
      [first, 'fp'],
    ])
  })

  it('compares an upload by the digest its create found, once known', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    // No digest before the create: the first one's is known after it, and a replay is left to compare.
    await k.run('alice', 'u1', op(sc, undefined, 'fp-bytes'))
    const first = sc.created[0] as string
    expect(await k.run('alice', 'u1', op(sc, undefined))).toBe(`replayed ${first}`)
    expect(sc.replayed).toEqual([[first, 'fp-bytes']])
  })

  it('answers 409 while the first request with the key still runs, and makes one object', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    let open = () => undefined as unknown
    sc.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const first = k.run('alice', 'k2', op(sc, 'fp'))
    await until('the first create', () => sc.created.length === 1)
    await expect(k.run('alice', 'k2', op(sc, 'fp'))).rejects.toMatchObject({
      status: 409,
      code: 'idempotency_key_in_use',
      message: 'A request with this Idempotency-Key is still in progress; retry shortly.',
    })
    // Another request while the first runs is refused as well, before its digest is compared.
    await expect(k.run('alice', 'k2', op(sc, 'fp-other'))).rejects.toMatchObject({ status: 409 })
    open()
    await first
    expect(sc.created).toHaveLength(1)
  })

  it('frees the key of a request the provider refused, and keeps it after a failure that may have made something', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    sc.fail = new ApiError(400, 'refused', { code: 'upstream_rejected' })
    await expect(k.run('alice', 'k3', op(sc, 'fp'))).rejects.toBe(sc.fail)
    sc.fail = undefined
    // The corrected request, another body under the same key, creates.
    expect(await k.run('alice', 'k3', op(sc, 'fp-corrected'))).toMatch(/^created /)

    sc.fail = new ApiError(502, 'provider down', { code: 'upstream_error' })
    await expect(k.run('alice', 'k4', op(sc, 'fp'))).rejects.toBe(sc.fail)
    sc.fail = undefined
    await expect(k.run('alice', 'k4', op(sc, 'fp-other'))).rejects.toMatchObject(reused)
    expect(s.errors).toEqual([])
  })

  it('reports a refused key it could not free, and still answers the refusal', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    sc.fail = new ApiError(400, 'refused', { code: 'upstream_rejected' })
    const failure = new Error('store down')
    vi.spyOn(s.records, 'deleteRecord').mockRejectedValueOnce(failure)
    await expect(k.run('alice', 'k5', op(sc, 'fp'))).rejects.toBe(sc.fail)
    expect(s.errors).toEqual([{ error: failure, context: 'freeing an idempotency key' }])
  })

  it('a retry after a crash settles the first attempt, then answers what it made or creates it under the same id', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    // A first attempt that made its object, then died before it stored its answer.
    sc.gate = new Promise<void>(() => undefined)
    void k.run('alice', 'k6', op(sc, 'fp'))
    await until('the first create', () => sc.created.length === 1)
    const id = sc.created[0] as string
    sc.existing.add(id)
    sc.gate = undefined
    // Its hold expires with the process gone (the fake clock stands past the lease).
    vi.setSystemTime(T0 + 60_000)
    await s.log.begin(newIntent({ id }))
    vi.setSystemTime(T0 + 60_000 + GRACE)
    expect(await k.run('alice', 'k6', op(sc, 'fp'))).toBe(`replayed ${id}`)
    expect(sc.settled).toEqual([id])
    expect(sc.created).toEqual([id])
    // Answered as done from now on, without settling again.
    expect(await k.run('alice', 'k6', op(sc, 'fp'))).toBe(`replayed ${id}`)
    expect(sc.settled).toEqual([id])
    await expect(k.run('alice', 'k6', op(sc, 'fp-other'))).rejects.toMatchObject(reused)
  })

  it('a retry after a crash that made nothing creates under the id of the first attempt', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    sc.gate = new Promise<void>(() => undefined)
    void k.run('alice', 'k7', op(sc, 'fp'))
    await until('the first create', () => sc.created.length === 1)
    const id = sc.created[0] as string
    sc.gate = undefined
    vi.setSystemTime(T0 + 60_000)
    expect(await k.run('alice', 'k7', op(sc, 'fp'))).toBe(`created ${id}`)
    expect(sc.created).toEqual([id, id])
    expect(await k.run('alice', 'k7', op(sc, 'fp'))).toBe(`replayed ${id}`)
  })

  const slotLease = (owner: string, key: string) =>
    `idempotency:${createHash('sha256').update(`${owner}\n${key}`).digest('hex')}`

  it('holds one key while its create runs, not the others', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    let open = () => undefined as unknown
    sc.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const first = k.run('alice', 'k8', op(sc, 'fp'))
    await until('the first create', () => sc.created.length === 1)
    expect(await s.leases.acquire(slotLease('alice', 'k8'), 'instance-b', 10)).toBe(false)
    sc.gate = undefined
    expect(await k.run('alice', 'k9', op(sc, 'fp'))).toMatch(/^created /)
    expect(await k.run('bob', 'k8', op(sc, 'fp'))).toMatch(/^created /)
    open()
    await first
    // Given up once done.
    expect(await s.leases.acquire(slotLease('alice', 'k8'), 'instance-b', 10)).toBe(true)
  })

  it('keeps the key after a 500 or a failure without an answer, and frees it after a 499', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    for (const [key, failure, kept] of [
      ['k10', new ApiError(500, 'provider error', { code: 'upstream_error' }), true],
      ['k11', new Error('socket hang up'), true],
      ['k12', new ApiError(499, 'refused', { code: 'upstream_rejected' }), false],
    ] as const) {
      sc.fail = failure
      await expect(k.run('alice', key, op(sc, 'fp'))).rejects.toBe(failure)
      sc.fail = undefined
      const retry = k.run('alice', key, op(sc, 'fp-other'))
      if (kept) await expect(retry).rejects.toMatchObject(reused)
      else await expect(retry).resolves.toMatch(/^created /)
    }
  })

  it('goes on with a key whose first request had no digest yet, whatever the retry digest', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    // An upload that failed before its bytes were read: no digest was stored.
    sc.fail = new ApiError(503, 'provider unavailable', { code: 'upstream_unavailable' })
    await expect(k.run('alice', 'k13', op(sc, undefined))).rejects.toBe(sc.fail)
    sc.fail = undefined
    const id = sc.created[0] as string
    expect(await k.run('alice', 'k13', op(sc, 'fp'))).toBe(`created ${id}`)
    expect(sc.created).toEqual([id, id])
  })

  it('replays a key found done once held (a first request finished meanwhile), even if its object is gone since', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    await k.run('alice', 'k14', op(sc, 'fp'))
    const id = sc.created[0] as string
    sc.existing.delete(id)
    // The first look saw no finished key; the look under the lease sees it done.
    vi.spyOn(s.records, 'getRecord').mockResolvedValueOnce(undefined)
    expect(await k.run('alice', 'k14', op(sc, 'fp'))).toBe(`replayed ${id}`)
    expect(sc.created).toEqual([id])
  })

  it('marks a key done once a retry found what a crashed first attempt made: later retries replay without waiting', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    sc.gate = new Promise<void>(() => undefined)
    void k.run('alice', 'k15', op(sc, 'fp'))
    await until('the first create', () => sc.created.length === 1)
    const id = sc.created[0] as string
    sc.existing.add(id)
    sc.gate = undefined
    vi.setSystemTime(T0 + 60_000)
    expect(await k.run('alice', 'k15', op(sc, 'fp'))).toBe(`replayed ${id}`)
    // Another instance holds the key now: a done key answers without its lease.
    expect(await s.leases.acquire(slotLease('alice', 'k15'), 'instance-b', 60_000)).toBe(true)
    expect(await k.run('alice', 'k15', op(sc, 'fp'))).toBe(`replayed ${id}`)
    // A key still pending would wait for it instead.
    sc.gate = new Promise<void>(() => undefined)
    void k.run('alice', 'k16', op(sc, 'fp'))
    await until('the create of k16', () => sc.created.length === 2)
    await expect(k.run('alice', 'k16', op(sc, 'fp'))).rejects.toMatchObject({ status: 409 })
  })

  it('refuses another request under a used key with a message that says what to do', async () => {
    const s = setup()
    const k = keys(s)
    const sc = script()
    await k.run('alice', 'k17', op(sc, 'fp'))
    await expect(k.run('alice', 'k17', op(sc, 'fp-other'))).rejects.toMatchObject({
      ...reused,
      message: 'This Idempotency-Key was already used with a different request; use a new key for a new request.',
    })
  })

  it('reports a renewal of a key lease that fails, every 20 s while the create runs', async () => {
    vi.useRealTimers()
    vi.useFakeTimers({ now: T0 })
    const failure = new Error('lease store down')
    let takes = 0
    const leases: LeaseStore = {
      shared: false,
      acquire: async () => {
        takes++
        if (takes > 1) throw failure
        return true
      },
      release: async () => undefined,
    }
    const s = setup(GRACE, leases)
    const k = keys(s)
    const sc = script()
    let open = () => undefined as unknown
    sc.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const run = k.run('alice', 'k18', op(sc, 'fp'))
    await vi.advanceTimersByTimeAsync(19_999)
    expect(s.errors).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(s.errors).toEqual([{ error: failure, context: 'renewing an idempotency lease' }])
    open()
    await run
  })
})
