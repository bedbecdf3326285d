import type { Keyv } from 'keyv'
import type { RedisLikeClient } from './redis-index.js'

/**
 * The storage adapter behind a Keyv instance: `keyv.store`, or under Keyv 6 what its wrappers keep
 * as `store`: the adapter its compatibility bridge wraps, or the `Map` of its in-memory adapter.
 */
export function adapterOf(keyv: Keyv): unknown {
  const store: unknown = keyv.store
  if (isRedisAdapter(store) || isIoRedisAdapter(store) || isPostgresAdapter(store)) return store
  const wrapped = (store as { store?: unknown } | null)?.store
  const known = isRedisAdapter(wrapped) || isIoRedisAdapter(wrapped) || isPostgresAdapter(wrapped)
  return known || wrapped instanceof Map ? wrapped : store
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

/**
 * What `@keyv/valkey` and other adapters on ioredis or iovalkey offer: the client as `redis`, whose
 * `call` sends any command. The server is Redis (or Valkey) all the same.
 */
export interface IoRedisAdapterLike {
  redis: { call(command: string, ...args: string[]): Promise<unknown> }
}

export function isIoRedisAdapter(store: unknown): store is IoRedisAdapterLike {
  if (typeof store !== 'object' || store === null) return false
  return typeof (store as { redis?: { call?: unknown } }).redis?.call === 'function'
}

/** The few node-redis methods batchkit's lists and leases use, over an ioredis-style client. */
export function redisLikeOf(client: IoRedisAdapterLike['redis']): RedisLikeClient {
  return {
    zAdd: (key, members) => client.call('ZADD', key, ...members.flatMap((m) => [String(m.score), m.value])),
    zRem: (key, member) => client.call('ZREM', key, member),
    sendCommand: ([command, ...args]) => client.call(command as string, ...args),
  }
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
