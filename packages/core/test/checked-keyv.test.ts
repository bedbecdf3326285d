import type KeyvPostgres from '@keyv/postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { CheckedKeyv } from '../src/store/checked-keyv.js'
import { testBackends, useBackend } from './support/backends.js'

/**
 * Reads of many records (a list page) on PostgreSQL: one query for the page instead of one per record,
 * with the same answers as reading them one by one, and a failure that is an error, never "missing".
 */
const backends = await testBackends(['postgres', 'memory'])

describe.each(backends)('reading many records on $label', (backend) => {
  if (!useBackend(backend)) return
  afterAll(() => backend.cleanup())

  it('answers as one read per key would: values in order, missing and expired ones undefined', async () => {
    const keyv = backend.connect()
    const store = new CheckedKeyv(keyv)
    const keys = Array.from({ length: 100 }, (_, i) => `batch:page-${i}`)
    for (const [i, key] of keys.entries()) await store.set(key, { n: i })
    await store.set('batch:expired', { n: -1 }, 1)
    // A key that starts with the namespace: Keyv 5's getMany would read it under another name.
    const namespaced = `${backend.namespace}:odd`
    await store.set(namespaced, { n: 'odd' })
    await new Promise((resolve) => setTimeout(resolve, 10))

    const asked = [...keys, 'batch:missing', 'batch:expired']
    const oneByOne = await Promise.all(asked.map((key) => store.get(key)))
    expect(oneByOne.slice(0, 100)).toEqual(keys.map((_, i) => ({ n: i })))
    expect(oneByOne.slice(100)).toEqual([undefined, undefined])

    const queries = countQueries(keyv.store)
    expect(await store.getMany(asked)).toEqual(oneByOne)
    if (backend.name === 'postgres') expect(queries.count).toBe(1)
    expect(await store.getMany(['batch:page-1', namespaced])).toEqual([{ n: 1 }, { n: 'odd' }])
  })
})

describe.each(await testBackends(['postgres', 'redis', 'memory']))('records as stored on $label', (backend) => {
  if (!useBackend(backend)) return
  afterAll(() => backend.cleanup())

  it("keeps each value as JSON text of its own through Keyv's default serializer, and reads it back equal", async () => {
    const keyv = backend.connect()
    const store = new CheckedKeyv(keyv)
    const record = { id: 'batch_1', note: ':starts with a colon', nested: { list: [1, null, 'two'] }, done: true }
    await store.set('batch:json', record)
    await store.set('batch:flag', true)
    expect(await keyv.get('batch:json')).toBe(JSON.stringify(record))
    expect(await store.get('batch:json')).toEqual(record)
    expect(await store.get('batch:flag')).toBe(true)
    expect(await store.getMany(['batch:json', 'batch:flag', 'batch:none'])).toEqual([record, true, undefined])
  })

  it('reads a record an earlier batchkit stored as a Keyv object as it is', async () => {
    const keyv = backend.connect()
    const store = new CheckedKeyv(keyv)
    const record = { id: 'file-1', bytes: 12, purpose: 'batch' }
    await keyv.set('file:old', record)
    await keyv.set('index:old', ['000000000000001:file-1'])
    expect(await store.get('file:old')).toEqual(record)
    expect(await store.getMany(['file:old', 'index:old'])).toEqual([record, ['000000000000001:file-1']])
  })
})

describe.each(await testBackends(['postgres']))('a failing read of many records on $label', (backend) => {
  if (!useBackend(backend)) return
  afterAll(() => backend.cleanup())

  it('fails a read of many records when the store fails, rather than answer them missing', async () => {
    const keyv = backend.connect()
    const store = new CheckedKeyv(keyv)
    await store.set('batch:there', { n: 1 })
    const adapter = keyv.store as KeyvPostgres
    const query = adapter.query.bind(adapter)
    adapter.query = (async () => {
      throw new Error('connection terminated')
    }) as typeof adapter.query
    try {
      await expect(store.getMany(['batch:there', 'batch:other'])).rejects.toThrow(/connection terminated|store/)
    } finally {
      adapter.query = query
    }
  })
})

/** Counts the SQL statements an `@keyv/postgres` adapter runs from now on (none for other stores). */
function countQueries(store: unknown): { count: number } {
  const counter = { count: 0 }
  const adapter = store as Partial<KeyvPostgres>
  if (typeof adapter.query !== 'function') return counter
  const query = adapter.query.bind(adapter)
  adapter.query = ((...args: Parameters<KeyvPostgres['query']>) => {
    counter.count++
    return query(...args)
  }) as KeyvPostgres['query']
  return counter
}
