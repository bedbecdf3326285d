import type KeyvPostgres from '@keyv/postgres'
import { Keyv } from 'keyv'
import { beforeAll, describe, expect, it } from 'vitest'
import { coordinationFor } from '../src/store/create-index.js'
import { idOfSortKey, type OrderedIndex, sortKey } from '../src/store/ordered-index.js'
import { PostgresIndex, type SqlQuery } from '../src/store/postgres-index.js'
import { testBackends, useBackend } from './support/backends.js'

/**
 * The ordered lists behind every list page and due queue, one contract for each kind of store: an entry
 * added twice is there once, pages hold `limit + 1` keys after an exclusive cursor, in byte order, and
 * lists never mix. The in-memory index, the one kept inside another Keyv adapter, Redis sorted sets and
 * the PostgreSQL table must all answer alike.
 */

const backends = await testBackends(['memory', 'adapter', 'redis', 'postgres'])

describe.each(backends)('the ordered index of $label', (backend) => {
  if (!useBackend(backend)) return

  let keyv: Keyv
  let index: OrderedIndex
  let n = 0
  /** A list of this test's own. */
  const list = () => `list-${++n}`

  beforeAll(() => {
    keyv = backend.connect()
    index = coordinationFor(keyv).index
  })

  it('keeps an entry added twice once, and removes it with one remove', async () => {
    const l = list()
    await index.add(l, 'k1')
    await index.add(l, 'k1')
    await index.add(l, 'k2')
    expect(await index.range(l, { limit: 10, order: 'asc' })).toEqual(['k1', 'k2'])
    await index.remove(l, 'k1')
    expect(await index.range(l, { limit: 10, order: 'asc' })).toEqual(['k2'])
    await index.remove(l, 'k1')
    await index.remove(l, 'absent')
    expect(await index.range(l, { limit: 10, order: 'desc' })).toEqual(['k2'])
  })

  it('orders keys by their bytes, as sort keys need: digits, then capitals, then small letters', async () => {
    const l = list()
    for (const key of ['b', 'B', 'a', '1', 'A', 'ab', '10']) await index.add(l, key)
    expect(await index.range(l, { limit: 10, order: 'asc' })).toEqual(['1', '10', 'A', 'B', 'a', 'ab', 'b'])
    expect(await index.range(l, { limit: 10, order: 'desc' })).toEqual(['b', 'ab', 'a', 'B', 'A', '10', '1'])
  })

  it('pages with limit + 1 keys after an exclusive cursor, whether the cursor is in the list or not', async () => {
    const l = list()
    for (const key of ['k2', 'k4', 'k6', 'k8']) await index.add(l, key)
    expect(await index.range(l, { limit: 1, order: 'asc' })).toEqual(['k2', 'k4'])
    expect(await index.range(l, { limit: 2, order: 'asc', after: 'k2' })).toEqual(['k4', 'k6', 'k8'])
    expect(await index.range(l, { limit: 2, order: 'asc', after: 'k3' })).toEqual(['k4', 'k6', 'k8'])
    expect(await index.range(l, { limit: 5, order: 'asc', after: 'k8' })).toEqual([])
    expect(await index.range(l, { limit: 1, order: 'desc' })).toEqual(['k8', 'k6'])
    expect(await index.range(l, { limit: 2, order: 'desc', after: 'k8' })).toEqual(['k6', 'k4', 'k2'])
    expect(await index.range(l, { limit: 2, order: 'desc', after: 'k7' })).toEqual(['k6', 'k4', 'k2'])
    expect(await index.range(l, { limit: 1, order: 'desc', after: 'k4' })).toEqual(['k2'])
    expect(await index.range(l, { limit: 5, order: 'desc', after: 'k2' })).toEqual([])
    expect(await index.range(l, { limit: 5, order: 'desc', after: 'k1' })).toEqual([])
    expect(await index.range(l, { limit: 5, order: 'asc', after: 'k9' })).toEqual([])
  })

  it('answers an empty page for a list never written, and keeps lists apart', async () => {
    const [a, b] = [list(), list()]
    expect(await index.range(a, { limit: 5, order: 'asc' })).toEqual([])
    expect(await index.range(a, { limit: 5, order: 'desc' })).toEqual([])
    await index.add(a, 'only-a')
    await index.add(b, 'only-b')
    await index.remove(b, 'only-a')
    expect(await index.range(a, { limit: 5, order: 'asc' })).toEqual(['only-a'])
    expect(await index.range(b, { limit: 5, order: 'asc' })).toEqual(['only-b'])
  })

  it('applies concurrent adds and removes to one list without losing any', async () => {
    const l = list()
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`)
    await Promise.all(keys.map((key) => index.add(l, key)))
    await Promise.all(keys.filter((_, i) => i % 2 === 0).map((key) => index.remove(l, key)))
    expect(await index.range(l, { limit: 100, order: 'asc' })).toEqual(keys.filter((_, i) => i % 2 === 1))
  })

  if (backend.name === 'postgres') {
    it('takes a table name of its own, and refuses one that is not a plain SQL name', async () => {
      const adapter = keyv.store as KeyvPostgres
      const query: SqlQuery = (sql, values) => adapter.query(sql, values)
      const table = `bk_idx_${backend.namespace.slice(-8)}`
      const own = new PostgresIndex(query, `${backend.namespace}:`, table)
      try {
        await own.add('l', 'k1')
        await own.add('l', 'k1')
        expect(await own.range('l', { limit: 5, order: 'asc' })).toEqual(['k1'])
        expect(await query(`SELECT list, sort_key FROM ${table}`)).toEqual([
          { list: `${backend.namespace}:l`, sort_key: 'k1' },
        ])
      } finally {
        await query(`DROP TABLE IF EXISTS ${table}`)
      }
      for (const bad of ['Index', '1index', 'batchkit-index', 'x; DROP TABLE keyv', '', `a${'b'.repeat(63)}`]) {
        expect(() => new PostgresIndex(query, '', bad), bad).toThrow(`Invalid index table name: ${bad}`)
      }
      expect(() => new PostgresIndex(query, '', `a${'b'.repeat(62)}`)).not.toThrow()
    })
  }
})

describe('sort keys', () => {
  it('sort by time whatever the number of digits, and give back the id', () => {
    const keys = [sortKey(10, 'b'), sortKey(9, 'z'), sortKey(1_000_000_000_000, 'a'), sortKey(99, 'a:b')]
    expect(keys.sort()).toEqual(['000000000000009:z', '000000000000010:b', '000000000000099:a:b', '001000000000000:a'])
    expect(keys.map(idOfSortKey)).toEqual(['z', 'b', 'a:b', 'a'])
  })
})

describe('the index kept in another Keyv adapter', () => {
  /** A store that answers after a few milliseconds, as one over a network or a disk does, counting writes. */
  function slowStore() {
    const entries = new Map<string, unknown>()
    const writes = { count: 0 }
    const later = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 3))
    const keyv = new Keyv({
      store: {
        get: (key: string) => later(entries.get(key)),
        set: (key: string, value: unknown) => {
          writes.count++
          return later(void entries.set(key, value))
        },
        delete: (key: string) => later(entries.delete(key)),
        clear: async () => entries.clear(),
        on: () => undefined,
      },
    })
    return { index: coordinationFor(keyv).index, writes }
  }

  it('loses no update made while an earlier one on the same list is still under way', async () => {
    const { index } = slowStore()
    const first = index.add('l', 'k1')
    const second = index.add('l', 'k2')
    await first
    const third = index.add('l', 'k3')
    await Promise.all([second, third])
    expect(await index.range('l', { limit: 10, order: 'asc' })).toEqual(['k1', 'k2', 'k3'])
  })

  it('writes nothing for an add of a listed key or a remove of an unlisted one', async () => {
    const { index, writes } = slowStore()
    await index.add('l', 'k1')
    expect(writes.count).toBe(1)
    await index.add('l', 'k1')
    await index.remove('l', 'k0')
    expect(writes.count).toBe(1)
    await index.remove('l', 'k1')
    expect(writes.count).toBe(2)
    expect(await index.range('l', { limit: 10, order: 'asc' })).toEqual([])
  })
})
