import type { Keyv } from 'keyv'
import { isPostgresAdapter } from './adapters.js'
import { storable } from './guard.js'

/**
 * The record reads and writes batchkit makes through a Keyv instance, made strict: a failure is
 * an error, never a value. Keyv 5 throws only with `throwOnErrors` and Keyv 6 never throws (it
 * emits `error` and answers "missing"), so an error Keyv emits while an operation is under way
 * fails that operation; `set` answering false fails too.
 *
 * Many keys are read by one `get` each, except on `@keyv/postgres` under Keyv 5, where one
 * `getMany` (one `SELECT … WHERE key = ANY($1)`) reads them all: a list page would otherwise be a
 * query per record. Keyv 5's `getMany` prefixes the namespace to keys that `get` and `set` leave
 * alone (those already starting with `<namespace>:`), so such keys are always read one by one; and
 * where an adapter has no `getMany`, Keyv's own would answer a failed read as a missing record.
 *
 * Values go into Keyv as JSON text that batchkit writes and parses itself, so Keyv's serializer
 * (whatever the user configured) handles one string per record instead of walking every field: with
 * Keyv's default serializer, that walk and its reviving parse were about a sixth of the server's CPU in
 * the control-plane bench. A value stored as an object (by an earlier batchkit) is read as it is.
 */
export class CheckedKeyv {
  private errors = 0
  /** Whether `getMany` goes to the adapter's own, which throws on failure. */
  private readonly batchedReads: boolean

  constructor(private readonly keyv: Keyv) {
    keyv.on('error', () => {
      this.errors++
    })
    // The adapter itself, not a Keyv 6 bridge around it, whose getMany is another's.
    const store: unknown = keyv.store
    this.batchedReads = isPostgresAdapter(store) && typeof (store as { getMany?: unknown }).getMany === 'function'
  }

  /** The value under `key`, or undefined if there is none; a key no store can hold has none. */
  async get<T>(key: string): Promise<T | undefined> {
    if (!storable(key)) return undefined
    return decoded<T>(await this.checked(`reading ${key}`, () => this.keyv.get(key)))
  }

  /** The values under `keys`, in their order. */
  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    const prefix = this.keyv.namespace ? `${this.keyv.namespace}:` : undefined
    const oneByOne =
      !this.batchedReads ||
      keys.length < 2 ||
      keys.some((key) => !storable(key) || (prefix !== undefined && key.startsWith(prefix)))
    if (oneByOne) return Promise.all(keys.map((key) => this.get<T>(key)))
    const values = await this.checked(`reading ${keys.length} keys`, () => this.keyv.getMany([...keys]))
    return values.map((value) => decoded<T>(value))
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    if (!storable(key)) throw new Error(`A store key cannot contain NUL: ${JSON.stringify(key)}`)
    const stored = await this.checked(`storing ${key}`, () => this.keyv.set(key, JSON.stringify(value), ttlMs))
    if (stored === false) throw new Error(`The store did not store ${key}`)
  }

  async delete(key: string): Promise<void> {
    if (!storable(key)) return
    await this.checked(`deleting ${key}`, () => this.keyv.delete(key))
  }

  private async checked<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const before = this.errors
    const result = await operation()
    // Counted across operations under way at once: an error during any of them fails all, never none.
    if (this.errors !== before) throw new Error(`The store reported an error while ${what}`)
    return result
  }
}

/** A stored value as batchkit wrote it: JSON text, or (from an earlier batchkit) the value itself. */
function decoded<T>(stored: unknown): T | undefined {
  if (stored === undefined || stored === null) return undefined
  return (typeof stored === 'string' ? JSON.parse(stored) : stored) as T
}
