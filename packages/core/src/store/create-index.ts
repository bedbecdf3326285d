import type { Keyv } from 'keyv'
import { adapterOf, isIoRedisAdapter, isPostgresAdapter, isRedisAdapter, redisLikeOf } from './adapters.js'
import { KeyvIndex } from './keyv-index.js'
import { type LeaseStore, MemoryLeases, PostgresLeases, RedisLeases } from './leases.js'
import { MemoryIndex, type OrderedIndex } from './ordered-index.js'
import { PostgresIndex, type SqlQuery } from './postgres-index.js'
import { RedisIndex, type RedisLikeClient } from './redis-index.js'

/** What a store needs beside key-value records: ordered lists and leases. */
export interface Coordination {
  index: OrderedIndex
  leases: LeaseStore
}

// Kits that share one in-process store share its lists and leases too, as they would share Redis.
const inProcess = new WeakMap<object, Coordination>()

/**
 * Picks the lists and leases that fit a Keyv store, recognised by shape (never `instanceof`, so any
 * copy of an adapter works): Redis sorted sets and keys for `@keyv/redis`, tables for
 * `@keyv/postgres`, the same sorted sets for adapters on ioredis or iovalkey (`@keyv/valkey`), and process memory for anything else (the index then kept in the store itself
 * unless the store is a plain `Map`).
 */
export function coordinationFor(keyv: Keyv): Coordination {
  const store = adapterOf(keyv)
  const namespace = keyv.namespace ?? ''
  if (isRedisAdapter(store)) {
    const getClient = async () => (await store.getClient()) as RedisLikeClient
    return {
      index: new RedisIndex(getClient, `${namespace}:batchkit:index:`),
      leases: new RedisLeases(getClient, `${namespace}:batchkit:lease:`),
    }
  }
  if (isIoRedisAdapter(store)) {
    const client = redisLikeOf(store.redis)
    return {
      index: new RedisIndex(async () => client, `${namespace}:batchkit:index:`),
      leases: new RedisLeases(async () => client, `${namespace}:batchkit:lease:`),
    }
  }
  if (isPostgresAdapter(store)) {
    const query: SqlQuery = (sql, values) => store.query(sql, values)
    return { index: new PostgresIndex(query, `${namespace}:`), leases: new PostgresLeases(query, `${namespace}:`) }
  }
  const key = typeof store === 'object' && store !== null ? store : keyv
  let local = inProcess.get(key)
  if (!local) {
    local = {
      index: store instanceof Map ? new MemoryIndex() : new KeyvIndex(keyv, 'batchkit:index:'),
      leases: new MemoryLeases(),
    }
    inProcess.set(key, local)
  }
  return local
}
