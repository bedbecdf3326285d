import type { Keyv } from 'keyv'

/**
 * The storage adapter behind a Keyv instance: `keyv.store`, or under Keyv 6 what its wrappers keep
 * as `store`: the adapter its compatibility bridge wraps, or the `Map` of its in-memory adapter.
 */
export function adapterOf(keyv: Keyv): unknown {
  const store: unknown = keyv.store
  if (isRedisAdapter(store) || isPostgresAdapter(store)) return store
  const wrapped = (store as { store?: unknown } | null)?.store
  return isRedisAdapter(wrapped) || isPostgresAdapter(wrapped) || wrapped instanceof Map ? wrapped : store
}

/** The few node-redis client settings batchkit changes; `@keyv/redis` exposes the live options object. */
interface RedisClientLike {
  options?: { disableOfflineQueue?: boolean }
  isReady?: boolean
  once?(event: 'ready', listener: () => void): unknown
}

/** What `@keyv/redis` offers, recognised by shape (never `instanceof`, so any copy of it works). */
export interface RedisAdapterLike {
  getClient(): Promise<unknown>
  client: RedisClientLike
  throwOnErrors?: boolean
  throwOnConnectError?: boolean
}

export function isRedisAdapter(store: unknown): store is RedisAdapterLike {
  if (typeof store !== 'object' || store === null || typeof (store as { getClient?: unknown }).getClient !== 'function')
    return false
  const client = (store as { client?: { zAdd?: unknown; sendCommand?: unknown } }).client
  return typeof client?.zAdd === 'function' && typeof client.sendCommand === 'function'
}

/** What `@keyv/postgres` offers: a query function over its pool, and its dialect. */
export interface PostgresAdapterLike {
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]>
}

export function isPostgresAdapter(store: unknown): store is PostgresAdapterLike {
  if (typeof store !== 'object' || store === null) return false
  const candidate = store as { query?: unknown; opts?: { dialect?: unknown } }
  return typeof candidate.query === 'function' && candidate.opts?.dialect === 'postgres'
}

/**
 * Makes a user's store report failures instead of hiding them, so an outage is a 503 and never a
 * false "not found": Keyv's `throwOnErrors` (Keyv 5; Keyv 6 emits instead, which batchkit also
 * watches), and for `@keyv/redis` its own `throwOnErrors`, plus node-redis failing commands at once
 * while disconnected (once it has first connected) rather than queueing them without limit. `@keyv/postgres` already throws.
 */
export function makeStoreStrict(keyv: Keyv): void {
  keyv.throwOnErrors = true
  const adapter = adapterOf(keyv)
  if (!isRedisAdapter(adapter)) return
  adapter.throwOnErrors = true
  adapter.throwOnConnectError = true
  const client = adapter.client
  const options = client.options
  if (!options) return
  // Only once connected: commands sent while the first connection is being made must wait for it.
  if (client.isReady) options.disableOfflineQueue = true
  else
    client.once?.('ready', () => {
      options.disableOfflineQueue = true
    })
}
