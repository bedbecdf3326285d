import type { Keyv } from 'keyv'
import type { BudgetLedger } from '../budgets/ledger.js'
import { MemoryLedger } from '../budgets/ledger.js'
import { PostgresLedger } from '../budgets/postgres-ledger.js'
import { RedisLedger } from '../budgets/redis-ledger.js'
import { adapterOf, isIoRedisAdapter, isPostgresAdapter, isRedisAdapter, redisLikeOf } from './adapters.js'
import { KeyvIndex } from './keyv-index.js'
import { type LeaseStore, MemoryLeases, PostgresLeases, RedisLeases } from './leases.js'
import { MemoryIndex } from './memory-index.js'
import type { OrderedIndex } from './ordered-index.js'
import { PostgresIndex, type SqlQuery } from './postgres-index.js'
import { RedisIndex, type RedisLikeClient } from './redis-index.js'

/** What a store needs beside key-value records: ordered lists and leases (and, for budgets, a ledger). */
export interface Coordination {
  index: OrderedIndex
  leases: LeaseStore
  /** Budgets' holds and spending, changed atomically. @default one in this process's memory */
  ledger?: BudgetLedger
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
      ledger: new RedisLedger(getClient, `${namespace}:batchkit:budget:`),
    }
  }
  if (isIoRedisAdapter(store)) {
    const client = redisLikeOf(store.redis)
    return {
      index: new RedisIndex(async () => client, `${namespace}:batchkit:index:`),
      leases: new RedisLeases(async () => client, `${namespace}:batchkit:lease:`),
      ledger: new RedisLedger(async () => client, `${namespace}:batchkit:budget:`),
    }
  }
  if (isPostgresAdapter(store)) {
    const query: SqlQuery = (sql, values) => store.query(sql, values)
    return {
      index: new PostgresIndex(query, `${namespace}:`),
      leases: new PostgresLeases(query, `${namespace}:`),
      ledger: new PostgresLedger(query, `${namespace}:`),
    }
  }
  const key = typeof store === 'object' && store !== null ? store : keyv
  let local = inProcess.get(key)
  if (!local) {
    local = {
      index: store instanceof Map ? new MemoryIndex() : new KeyvIndex(keyv, 'batchkit:index:'),
      leases: new MemoryLeases(),
      ledger: new MemoryLedger(),
    }
    inProcess.set(key, local)
  }
  return local
}
