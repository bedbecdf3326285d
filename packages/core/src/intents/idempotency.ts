import { createHash } from 'node:crypto'
import { ApiError, isApiError } from '../errors.js'
import { holdLease } from '../store/lease-hold.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import type { IntentLog, SettleIntent } from './intent-log.js'

/** How long a key answers with its first result, as Stripe and OpenAI keep them. */
const KEY_TTL_MS = 24 * 60 * 60 * 1000
const LEASE_MS = 60_000
const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/

/** What a key remembers: the object it created (or is creating), and the request that asked for it. */
interface KeyRecord {
  state: 'pending' | 'done'
  /** batchkit's id of the object: chosen before the create, so a crash leaves an intent under it. */
  id: string
  /** A digest of the request; null until known (an upload's is known once its bytes have streamed). */
  fingerprint: string | null
}

/** One create made idempotent: how to run it, replay it, and settle what a crash left of it. */
export interface IdempotentCreate<T> {
  /** The request's digest when known before the create runs (a batch's JSON body). */
  fingerprint?: string
  /** A new id for the object. */
  newId(): string
  /** Runs the create under `id`; returns the result and the request's digest. */
  create(id: string): Promise<{ value: T; fingerprint: string }>
  /** The answer for a key that already created `id`; `fingerprint` is the first request's, to compare. */
  replay(id: string, fingerprint: string | null): Promise<T>
  /** Whether the object `id` exists (after a leftover intent is settled). */
  exists(id: string): Promise<boolean>
  /** Settles the leftover intent of a create a crash cut short. */
  settle: SettleIntent
}

/**
 * `Idempotency-Key` with Stripe's semantics, on top of the intents: the same key and request within
 * 24 hours answer the first result and create nothing; the same key with another request is a 400;
 * a second request while the first still runs is a 409 (OpenAI's clients retry 409s). Keys are
 * scoped to their owner. A retry after a crash settles the first attempt's intent (adopting or
 * undoing what reached the provider) before it decides whether to create.
 */
export class IdempotencyKeys {
  constructor(
    private readonly store: RecordStore,
    private readonly leases: LeaseStore,
    private readonly intents: IntentLog,
    private readonly holder: string,
    private readonly reportError: (error: unknown, context: string) => void,
  ) {}

  async run<T>(owner: string, key: string, op: IdempotentCreate<T>): Promise<T> {
    if (!KEY_SHAPE.test(key)) {
      throw new ApiError(400, 'The Idempotency-Key header must be 1 to 255 printable ASCII characters.', {
        code: 'invalid_idempotency_key',
      })
    }
    const slot = createHash('sha256').update(`${owner}\n${key}`).digest('hex')
    const first = await this.store.getRecord<KeyRecord>('idempotency', slot)
    if (first?.state === 'done') return this.replay(first, op)
    const hold = await holdLease(this.leases, `idempotency:${slot}`, this.holder, LEASE_MS, (error) =>
      this.reportError(error, 'renewing an idempotency lease'),
    )
    if (!hold) throw keyInUse()
    try {
      const current = await this.store.getRecord<KeyRecord>('idempotency', slot)
      if (current?.state === 'done') return await this.replay(current, op)
      if (current && !sameRequest(current.fingerprint, op.fingerprint)) throw keyReused()
      let id: string
      if (current) {
        // A first attempt that never finished: settle what it left before deciding anything.
        id = current.id
        await this.intents.settleNow(id, op.settle)
        if (await op.exists(id)) {
          await this.store.putRecord('idempotency', slot, { ...current, state: 'done' }, KEY_TTL_MS)
          return await this.replay(current, op)
        }
      } else {
        id = op.newId()
        const pending: KeyRecord = { state: 'pending', id, fingerprint: op.fingerprint ?? null }
        await this.store.putRecord('idempotency', slot, pending, KEY_TTL_MS)
      }
      let result: { value: T; fingerprint: string }
      try {
        result = await op.create(id)
      } catch (error) {
        // Refused before anything was made: the key is free for a corrected request.
        if (isApiError(error) && error.status < 500) {
          await this.store
            .deleteRecord('idempotency', slot)
            .catch((e) => this.reportError(e, 'freeing an idempotency key'))
        }
        throw error
      }
      const done: KeyRecord = { state: 'done', id, fingerprint: result.fingerprint }
      await this.store.putRecord('idempotency', slot, done, KEY_TTL_MS)
      return result.value
    } finally {
      await hold.release()
    }
  }

  private replay<T>(record: KeyRecord, op: IdempotentCreate<T>): Promise<T> {
    if (!sameRequest(record.fingerprint, op.fingerprint)) throw keyReused()
    return op.replay(record.id, record.fingerprint)
  }
}

/** Digests compare only when both are known; an upload's is checked by its replay once its bytes have streamed. */
function sameRequest(stored: string | null, incoming: string | undefined): boolean {
  return stored === null || incoming === undefined || stored === incoming
}

/** The error for a key used again with a different request. */
export function keyReused(): ApiError {
  return new ApiError(
    400,
    'This Idempotency-Key was already used with a different request; use a new key for a new request.',
    { param: 'Idempotency-Key', code: 'idempotency_key_reused' },
  )
}

function keyInUse(): ApiError {
  return new ApiError(409, 'A request with this Idempotency-Key is still in progress; retry shortly.', {
    code: 'idempotency_key_in_use',
  })
}
