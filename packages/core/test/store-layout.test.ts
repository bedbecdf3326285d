import type KeyvPostgres from '@keyv/postgres'
import { createClient } from '@keyv/redis'
import { Keyv } from 'keyv'
import { describe, expect, it } from 'vitest'
import { coordinationFor } from '../src/store/create-index.js'
import { keyvOverAdapter, REDIS_URL, testBackends, useBackend } from './support/backends.js'
import { readStored } from './support/stored.js'

/**
 * Where batchkit's lists, leases and budget ledgers land in the user's own Redis or PostgreSQL, as
 * docs/storage.md gives it: every name carries the Keyv namespace, so two apps on one server under two
 * namespaces never share a list, a lease or a budget.
 */

const [redis, postgres] = await testBackends(['redis', 'postgres'])

describe('in Redis', () => {
  if (!redis || !useBackend(redis)) return

  it('keeps lists, leases and budgets under <namespace>:batchkit:…', async () => {
    const ns = redis.namespace
    const { index, leases, ledger } = coordinationFor(redis.connect())
    await index.add('files:alice', '000000000000001:file-1')
    expect(await leases.acquire('batch:b-1', 'instance-a', 60_000)).toBe(true)
    await ledger?.reserve(`alice:2026-12`, 'hold-1', 5, 100)
    const client = await createClient({ url: REDIS_URL }).connect()
    try {
      expect(await client.zRange(`${ns}:batchkit:index:files:alice`, 0, -1)).toEqual(['000000000000001:file-1'])
      expect(await client.get(`${ns}:batchkit:lease:batch:b-1`)).toBe('instance-a')
      expect(await client.hGet(`${ns}:batchkit:budget:alice:2026-12`, 'reserved')).toBe('5')
    } finally {
      client.destroy()
    }
  })
})

describe('in PostgreSQL', () => {
  if (!postgres || !useBackend(postgres)) return

  it('keeps lists, leases and budgets in batchkit tables, under <namespace>:…', async () => {
    const ns = postgres.namespace
    const keyv = postgres.connect()
    const { index, leases, ledger } = coordinationFor(keyv)
    await index.add('files:alice', '000000000000001:file-1')
    expect(await leases.acquire('batch:b-1', 'instance-a', 60_000)).toBe(true)
    await ledger?.reserve(`alice:2026-12`, 'hold-1', 5, 100)
    const adapter = keyv.store as KeyvPostgres
    const rows = (sql: string) => adapter.query(sql, [`${ns}:%`])
    try {
      expect(await rows('SELECT list, sort_key FROM batchkit_index WHERE list LIKE $1')).toEqual([
        { list: `${ns}:files:alice`, sort_key: '000000000000001:file-1' },
      ])
      expect(await rows('SELECT key, holder FROM batchkit_leases WHERE key LIKE $1')).toEqual([
        { key: `${ns}:batch:b-1`, holder: 'instance-a' },
      ])
      expect(await rows('SELECT ledger, reserved FROM batchkit_budget_ledgers WHERE ledger LIKE $1')).toEqual([
        { ledger: `${ns}:alice:2026-12`, reserved: '5' },
      ])
    } finally {
      await rows('DELETE FROM batchkit_leases WHERE key LIKE $1')
      await rows('DELETE FROM batchkit_budget_holds WHERE ledger LIKE $1')
      await rows('DELETE FROM batchkit_budget_ledgers WHERE ledger LIKE $1')
    }
  })
})

describe('in another Keyv adapter', () => {
  it('keeps each list as one entry of the store, under batchkit:index:…', async () => {
    const entries = new Map<string, unknown>()
    const keyv = keyvOverAdapter(entries, 'app')
    const { index, leases } = coordinationFor(keyv)
    expect([index.shared, leases.shared]).toEqual([false, false])
    await index.add('files:alice', '000000000000002:file-2')
    await index.add('files:alice', '000000000000001:file-1')
    expect([...entries.keys()]).toEqual(['app:batchkit:index:files:alice'])
    expect(await readStored(keyv, 'batchkit:index:files:alice')).toEqual([
      '000000000000001:file-1',
      '000000000000002:file-2',
    ])
  })
})

describe('in memory', () => {
  it('keeps lists and leases in this process, not shared with another', async () => {
    const { index, leases } = coordinationFor(new Keyv())
    expect([index.shared, leases.shared]).toEqual([false, false])
  })
})
