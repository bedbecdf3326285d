import { Keyv } from 'keyv'
import { describe, expect, it } from 'vitest'
import { isApiError } from '../src/errors.js'
import { makeStoreStrict } from '../src/store/adapters.js'
import { StoreGuard } from '../src/store/guard.js'
import { MemoryIndex } from '../src/store/memory-index.js'
import type { OrderedIndex } from '../src/store/ordered-index.js'
import { RecordStore } from '../src/store/records.js'
import type { BatchRecord, FileRecord } from '../src/types.js'

/**
 * What a failing store does to batchkit's records: every operation fails as a 503 `store_unavailable`
 * (never as a missing record), the cause reaches `onError` once with what batchkit was doing, and a
 * record whose listing failed is not left behind.
 */

const T0 = Date.UTC(2026, 11, 6)

const file: FileRecord = {
  id: 'file-1',
  owner: 'alice',
  provider: 'openai',
  providerFileId: 'upstream-file-1',
  bytes: 100,
  createdAt: T0 / 1000,
  createdAtMs: T0,
  expiresAt: null,
  filename: 'in.jsonl',
  purpose: 'batch',
  batchInput: { url: '/v1/chat/completions', model: 'gpt-4o-mini', requests: 1 },
  batchId: null,
}

const batch = {
  id: 'batch-1',
  owner: 'alice',
  provider: 'openai',
  providerBatchId: 'upstream-batch-1',
  createdAt: T0 / 1000,
  createdAtMs: T0,
  status: 'validating',
} as BatchRecord

/** A Keyv store that is down (every call fails), made strict as the kit makes every store. */
function downStore(): Keyv {
  const down = async () => Promise.reject(new Error('connection refused'))
  const keyv = new Keyv({ store: { get: down, set: down, delete: down, clear: down, on: () => undefined } })
  makeStoreStrict(keyv)
  return keyv
}

/** An index that is down. */
const downIndex: OrderedIndex = {
  shared: false,
  add: async () => Promise.reject(new Error('index down')),
  remove: async () => Promise.reject(new Error('index down')),
  range: async () => Promise.reject(new Error('index down')),
}

function recordStore(keyv: Keyv, index: OrderedIndex) {
  const reported: Array<{ message: string; context: string }> = []
  const store = new RecordStore(
    keyv,
    index,
    new StoreGuard(1000, (error, context) => void reported.push({ message: (error as Error).message, context })),
  )
  return { store, reported }
}

async function failure(operation: Promise<unknown>) {
  const error = await operation.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isApiError(error)).toBe(true)
  return error
}

describe('a store that is down', () => {
  const operations: Array<[string, (store: RecordStore) => Promise<unknown>]> = [
    ['reading a file record', (s) => s.getFile('file-1')],
    ['storing a file record', (s) => s.addFile(file)],
    ['listing a file record', (s) => s.relistFile(file)],
    ['deleting a file record', (s) => s.deleteFile(file)],
    ['reading a list cursor', (s) => s.fileCursor('file-1')],
    ['reading a batch record', (s) => s.getBatch('batch-1')],
    ['storing a batch record', (s) => s.addBatch(batch)],
    ['listing a batch record', (s) => s.relistBatch(batch)],
    ['updating a batch record', (s) => s.updateBatch(batch)],
    ['deleting a batch record', (s) => s.deleteBatch(batch)],
    ['listing records', (s) => s.listFiles('alice', { limit: 10, order: 'desc' })],
    ['listing records', (s) => s.listBatches('alice', { limit: 10 })],
    ['reading batch records', (s) => s.getBatches(['batch-1'])],
    ['listing a billed batch', (s) => s.listBilled(batch, T0)],
    ['listing billed batches', (s) => s.billedBetween('alice', T0, T0 + 1).next()],
    ['reading a billing record', (s) => s.getRecord('billing', 'batch-1')],
    ['reading tracking records', (s) => s.getRecords('tracking', ['batch-1'])],
    ['storing a event record', (s) => s.putRecord('event', 'e-1', { n: 1 })],
    ['deleting a intent record', (s) => s.deleteRecord('intent', 'i-1')],
  ]

  it.each(operations)('fails with a 503 and reports what it was doing: %s', async (context, operation) => {
    const { store, reported } = recordStore(downStore(), downIndex)
    const error = await failure(operation(store))
    expect(error).toMatchObject({ status: 503, code: 'store_unavailable' })
    expect(reported).toHaveLength(1)
    expect(reported[0]?.context).toBe(context)
  })

  it('answers reads of nothing without asking it', async () => {
    const { store, reported } = recordStore(downStore(), downIndex)
    expect(await store.getBatches([])).toEqual([])
    expect(await store.getRecords('tracking', [])).toEqual([])
    expect(reported).toEqual([])
  })
})

describe('a listing that fails after the record was written', () => {
  it('leaves no file record and no list entry behind', async () => {
    const keyv = new Keyv()
    const index = new MemoryIndex()
    let adds = 0
    const flaky: OrderedIndex = {
      shared: false,
      // The owner's list takes the file; its purpose's list fails.
      add: async (list, key) => (++adds === 2 ? Promise.reject(new Error('index down')) : index.add(list, key)),
      remove: (list, key) => index.remove(list, key),
      range: (list, options) => index.range(list, options),
    }
    const { store, reported } = recordStore(keyv, flaky)
    await failure(store.addFile(file))
    expect(reported).toEqual([{ message: 'index down', context: 'storing a file record' }])
    expect(await store.getFile('file-1')).toBeUndefined()
    expect((await store.listFiles('alice', { limit: 10, order: 'desc' })).data).toEqual([])
    expect((await store.listFiles('alice', { limit: 10, order: 'desc', purpose: 'batch' })).data).toEqual([])
  })

  it('leaves no batch record behind', async () => {
    const keyv = new Keyv()
    const index = new MemoryIndex()
    const failing: OrderedIndex = {
      shared: false,
      add: async () => Promise.reject(new Error('index down')),
      remove: (list, key) => index.remove(list, key),
      range: (list, options) => index.range(list, options),
    }
    const { store, reported } = recordStore(keyv, failing)
    await failure(store.addBatch(batch))
    expect(reported).toEqual([{ message: 'index down', context: 'storing a batch record' }])
    expect(await store.getBatch('batch-1')).toBeUndefined()
    expect((await store.listBatches('alice', { limit: 10 })).data).toEqual([])
  })
})
