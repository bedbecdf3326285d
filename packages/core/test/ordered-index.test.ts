import type KeyvPostgres from '@keyv/postgres'
import type { Keyv } from 'keyv'
import { beforeAll, describe, expect, it } from 'vitest'
import { coordinationFor } from '../src/store/create-index.js'
import type { OrderedIndex } from '../src/store/ordered-index.js'
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
