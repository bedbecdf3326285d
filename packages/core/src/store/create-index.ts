import type { Keyv } from 'keyv'
import { KeyvIndex } from './keyv-index.js'
import { MemoryIndex, type OrderedIndex } from './ordered-index.js'
import { PostgresIndex, type SqlQuery } from './postgres-index.js'
import { RedisIndex, type RedisLikeClient } from './redis-index.js'

/**
 * Picks the ordered index that fits a Keyv store, recognised by shape (never `instanceof`, so any
 * copy of an adapter works): Redis sorted sets for `@keyv/redis`, a table for `@keyv/postgres`,
 * process memory for the default `Map`, and the store itself for anything else.
 */
export function createIndexFor(keyv: Keyv): OrderedIndex {
  const store: unknown = keyv.store
  const namespace = keyv.namespace ?? ''
  if (store instanceof Map) return new MemoryIndex()
  if (isRedisAdapter(store)) {
    const getClient = async () => (await store.getClient()) as RedisLikeClient
    return new RedisIndex(getClient, `${namespace}:batchkit:index:`)
  }
  if (isPostgresAdapter(store)) {
    const query: SqlQuery = (sql, values) => store.query(sql, values)
    return new PostgresIndex(query, `${namespace}:`)
  }
  return new KeyvIndex(keyv, 'batchkit:index:')
}

function isRedisAdapter(store: unknown): store is { getClient(): Promise<unknown> } {
  if (typeof store !== 'object' || store === null || typeof (store as { getClient?: unknown }).getClient !== 'function')
    return false
  const client = (store as { client?: Partial<RedisLikeClient> }).client
  return typeof client?.zAdd === 'function' && typeof client.sendCommand === 'function'
}

function isPostgresAdapter(store: unknown): store is { query: SqlQuery } {
  if (typeof store !== 'object' || store === null) return false
  const candidate = store as { query?: unknown; opts?: { dialect?: unknown } }
  return typeof candidate.query === 'function' && candidate.opts?.dialect === 'postgres'
}
