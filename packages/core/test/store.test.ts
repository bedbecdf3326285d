import type { Keyv } from 'keyv'
import { beforeAll, describe, expect, it } from 'vitest'
import { createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DEFAULT_STORE_TIMEOUT_MS, StoreGuard } from '../src/store/guard.js'
import type { OrderedIndex } from '../src/store/ordered-index.js'
import { type ListOrder, RecordStore } from '../src/store/records.js'
import type { BatchRecord, FilePurpose, FileRecord, Page } from '../src/types.js'
import { keyvOverAdapter, testBackends, useBackend } from './support/backends.js'

const backends = await testBackends(['memory', 'adapter', 'redis', 'postgres'])

const T0 = Date.UTC(2025, 0, 1)

/** A stored file as batchkit records it, with only what listing looks at varying. */
function fileRecord(owner: string, id: string, createdAtMs: number, purpose: FilePurpose = 'batch'): FileRecord {
  return {
    id,
    owner,
    provider: 'openai',
    providerFileId: `upstream-${id}`,
    bytes: 100,
    createdAt: Math.floor(createdAtMs / 1000),
    createdAtMs,
    expiresAt: null,
    filename: `${id}.jsonl`,
    purpose,
    batchInput: purpose === 'batch' ? { url: '/v1/chat/completions', model: 'gpt-4o-mini', requests: 1 } : null,
    batchId: null,
  }
}

function batchRecord(owner: string, id: string, createdAtMs: number): BatchRecord {
  return {
    id,
    owner,
    provider: 'openai',
    providerBatchId: `upstream-${id}`,
    providerInputFileId: 'upstream-file',
    endpoint: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    inputFileId: 'file-input',
    completionWindow: '24h',
    metadata: null,
    createdAt: Math.floor(createdAtMs / 1000),
    createdAtMs,
    outputFileId: null,
    errorFileId: null,
    status: 'validating',
    inProgressAt: null,
    expiresAt: null,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancellingAt: null,
    cancelledAt: null,
    requestCounts: { total: 1, completed: 0, failed: 0 },
    errors: null,
    usage: null,
  }
}

/**
 * Seven files, newest first. Two were created in the same millisecond: ties are ordered by id in
 * plain code-unit order, where `Z` sorts before `a` (a locale-aware collation would not agree).
 */
const FILES_NEWEST_FIRST: readonly [id: string, createdAtMs: number, purpose: FilePurpose][] = [
  ['file-7gHw2xQeLmN4pR8sT1uV3yZ0', T0 + 60_000, 'batch'],
  ['file-alphaXXXXXXXXXXXXXXXXXXX', T0 + 50_000, 'user_data'],
  ['file-ZetaXXXXXXXXXXXXXXXXXXXX', T0 + 50_000, 'batch'],
  ['file-Kq93bVn1cX7mZ2pL5wR8tY4u', T0 + 40_000, 'batch'],
  ['file-b2Nc4Dm6Fp8Gr0Hs2Jt4Kv6L', T0 + 30_000, 'fine-tune'],
  ['file-Q1w2E3r4T5y6U7i8O9p0A1s2', T0 + 20_000, 'batch'],
  ['file-m0N9b8V7c6X5z4L3k2J1h0G9', T0 + 10_000, 'user_data'],
]
const FILE_IDS_NEWEST_FIRST = FILES_NEWEST_FIRST.map(([id]) => id)
const BATCH_FILE_IDS_NEWEST_FIRST = FILES_NEWEST_FIRST.filter(([, , purpose]) => purpose === 'batch').map(([id]) => id)

/** The same seven files in the scrambled order they are added in, so the index has to sort them. */
function filesOf(owner: string): FileRecord[] {
  const records = FILES_NEWEST_FIRST.map(([id, at, purpose]) => fileRecord(owner, id, at, purpose))
  return [3, 0, 6, 2, 5, 1, 4].map((i) => records[i] as FileRecord)
}

const BATCH_IDS_NEWEST_FIRST = [
  'batch_ffffffffffffffffffffffffffffff07',
  'batch_0000000000000000000000000000aa06',
  'batch_000000000000000000000000000000b5',
  'batch_000000000000000000000000000000a5',
  'batch_9999999999999999999999999999990a',
  'batch_3333333333333333333333333333333b',
  'batch_cccccccccccccccccccccccccccccc01',
]
/** Newest first, with two batches created in the same millisecond. */
const BATCH_TIMES = [T0 + 70_000, T0 + 60_000, T0 + 50_000, T0 + 50_000, T0 + 30_000, T0 + 20_000, T0 + 10_000]

function batchesOf(owner: string): BatchRecord[] {
  const records = BATCH_IDS_NEWEST_FIRST.map((id, i) => batchRecord(owner, id, BATCH_TIMES[i] as number))
  return [4, 1, 6, 0, 3, 5, 2].map((i) => records[i] as BatchRecord)
}

/**
 * Follows `after` cursors from the first page to the last, as a client would, checking that every
 * page is full and says `hasMore` except the last.
 */
async function pageThrough<T extends { id: string }>(
  limit: number,
  list: (after: T | undefined) => Promise<Page<T>>,
): Promise<string[]> {
  const ids: string[] = []
  let after: T | undefined
  for (let pages = 0; pages < 100; pages++) {
    const page = await list(after)
    if (page.hasMore) {
      expect(page.data, `page ${pages + 1} says hasMore, so it must be full`).toHaveLength(limit)
    } else {
      expect(page.data.length, `the last page holds at most ${limit}`).toBeLessThanOrEqual(limit)
    }
    ids.push(...page.data.map((item) => item.id))
    if (!page.hasMore) return ids
    after = page.data.at(-1)
  }
  throw new Error('paging did not end after 100 pages')
}

describe.each(backends)('records and lists in $label', (backend) => {
  if (!useBackend(backend)) return

  let keyv: Keyv
  let index: OrderedIndex
  let store: RecordStore

  beforeAll(() => {
    keyv = backend.connect()
    index = coordinationFor(keyv).index
    store = new RecordStore(keyv, index, new StoreGuard(DEFAULT_STORE_TIMEOUT_MS, () => undefined))
  })

  /** Adds records one at a time, in the given order. */
  async function addFiles(files: FileRecord[]): Promise<void> {
    for (const file of files) await store.addFile(file)
  }
  async function addBatches(batches: BatchRecord[]): Promise<void> {
    for (const batch of batches) await store.addBatch(batch)
  }
  async function fileIds(owner: string, options: { purpose?: FilePurpose; order?: ListOrder } = {}) {
    const page = await store.listFiles(owner, { limit: 100, order: 'desc', ...options })
    expect(page.hasMore).toBe(false)
    return page.data.map((file) => file.id)
  }
  async function batchIds(owner: string) {
    const page = await store.listBatches(owner, { limit: 100 })
    expect(page.hasMore).toBe(false)
    return page.data.map((batch) => batch.id)
  }

  it(`is ${backend.multiInstanceSafe ? '' : 'not '}reported safe for several server instances`, async () => {
    const kit = createBatchKit({
      store: keyv,
      providers: { openai: openai({ apiKey: 'sk-unused' }) },
      onError: () => {},
    })
    expect(kit.multiInstanceSafe).toBe(backend.multiInstanceSafe)
    expect(index.shared).toBe(backend.multiInstanceSafe)
    await kit.close()
  })

  it('warns at start only when a store outside this process would keep its lists in this process', async () => {
    await new Promise((resolve) => setImmediate(resolve)) // let earlier tests' kits' warnings pass
    const warnings: Array<Error & { code?: string }> = []
    const onWarning = (warning: Error) => void warnings.push(warning)
    process.on('warning', onWarning)
    // A store adapter batchkit does not recognise, kept elsewhere as far as batchkit can tell.
    const unrecognised = keyvOverAdapter(new Map())
    const logged: string[] = []
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_: unknown, message?: string) => void logged.push(message ?? ''),
    }
    const kits = [
      createBatchKit({ store: keyv, providers: { openai: openai({ apiKey: 'sk-unused' }) }, onError: () => {} }),
      createBatchKit({
        store: unrecognised,
        providers: { openai: openai({ apiKey: 'sk-unused' }) },
        onError: () => {},
        logger,
      }),
    ]
    try {
      await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
      const mine = warnings.filter((w) => w.code === 'BATCHKIT_SINGLE_INSTANCE_STORE')
      // The backend's own kit warns too when its store is an adapter batchkit does not recognise.
      const expected = backend.name === 'adapter' ? 2 : 1
      expect(mine).toHaveLength(expected)
      for (const warning of mine) expect(warning.message).toMatch(/run one instance on it, or pass `coordination`/)
      expect(logged).toEqual([mine.at(-1)?.message])
      expect(kits.map((kit) => kit.multiInstanceSafe)).toEqual([backend.multiInstanceSafe, false])
    } finally {
      process.off('warning', onWarning)
      await Promise.all(kits.map((kit) => kit.close()))
    }
  })

  it('lists files newest first, and oldest first with order asc', async () => {
    await addFiles(filesOf('order'))

    expect(await fileIds('order')).toEqual(FILE_IDS_NEWEST_FIRST)
    expect(await fileIds('order', { order: 'asc' })).toEqual([...FILE_IDS_NEWEST_FIRST].reverse())
  })

  it('returns whole records, as they were stored', async () => {
    const [file] = filesOf('whole')
    await addFiles([file as FileRecord])

    const page = await store.listFiles('whole', { limit: 10, order: 'desc' })
    expect(page).toEqual({ data: [file], hasMore: false })
    expect(await store.getFile((file as FileRecord).id)).toEqual(file)
  })

  it('stores a batch without its billing, which is kept in a record of its own', async () => {
    const batch = batchRecord('billing-apart', 'batch-billing-apart', T0)
    const totals = {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 10,
      cachedTokens: 0,
      outputTokens: 5,
      reasoningTokens: 0,
      totalTokens: 15,
      cost: 0.00001,
    }
    const billing = { byModel: { 'gpt-4o-mini': totals }, totals, unpricedModels: [], computedAt: 1 }
    await store.addBatch({ ...batch, status: 'completed', billing })
    expect(await store.getBatch(batch.id)).toEqual({ ...batch, status: 'completed' })
    expect(await store.getBatch(batch.id)).not.toHaveProperty('billing')
    await store.updateBatch({ ...batch, status: 'expired', billing })
    expect(await store.getBatch(batch.id)).toEqual({ ...batch, status: 'expired' })
    expect(await store.getBatch(batch.id)).not.toHaveProperty('billing')
    // One without a billing is stored as it is.
    await store.updateBatch(batch)
    expect(await store.getBatch(batch.id)).toEqual(batch)
  })

  describe.each([1, 2, 3, 6, 7, 8])('pages of %i', (limit) => {
    it.each<ListOrder>(['desc', 'asc'])('page through all files, %s, with no gaps or repeats', async (order) => {
      const owner = `paging-files-${limit}-${order}`
      await addFiles(filesOf(owner))

      const ids = await pageThrough<FileRecord>(limit, (after) => store.listFiles(owner, { after, limit, order }))

      expect(ids).toEqual(order === 'desc' ? FILE_IDS_NEWEST_FIRST : [...FILE_IDS_NEWEST_FIRST].reverse())
    })

    it('page through the files of one purpose', async () => {
      const owner = `paging-purpose-${limit}`
      await addFiles(filesOf(owner))

      const ids = await pageThrough<FileRecord>(limit, (after) =>
        store.listFiles(owner, { purpose: 'batch', after, limit, order: 'desc' }),
      )

      expect(ids).toEqual(BATCH_FILE_IDS_NEWEST_FIRST)
    })

    it('page through all batches, newest first', async () => {
      const owner = `paging-batches-${limit}`
      await addBatches(batchesOf(owner))

      const ids = await pageThrough<BatchRecord>(limit, (after) => store.listBatches(owner, { after, limit }))

      expect(ids).toEqual(BATCH_IDS_NEWEST_FIRST)
    })
  })

  it('filters files by purpose', async () => {
    await addFiles(filesOf('purpose'))

    expect(await fileIds('purpose', { purpose: 'batch' })).toEqual(BATCH_FILE_IDS_NEWEST_FIRST)
    expect(await fileIds('purpose', { purpose: 'user_data' })).toEqual([
      'file-alphaXXXXXXXXXXXXXXXXXXX',
      'file-m0N9b8V7c6X5z4L3k2J1h0G9',
    ])
    expect(await fileIds('purpose', { purpose: 'fine-tune', order: 'asc' })).toEqual(['file-b2Nc4Dm6Fp8Gr0Hs2Jt4Kv6L'])
    expect(await fileIds('purpose', { purpose: 'vision' })).toEqual([])
  })

  it('drops a deleted file from every list it was in', async () => {
    const files = filesOf('delete-file')
    await addFiles(files)
    const gone = files.find((file) => file.id === 'file-Kq93bVn1cX7mZ2pL5wR8tY4u') as FileRecord

    await store.deleteFile(gone)

    expect(await store.getFile(gone.id)).toBeUndefined()
    expect(await fileIds('delete-file')).toEqual(FILE_IDS_NEWEST_FIRST.filter((id) => id !== gone.id))
    expect(await fileIds('delete-file', { purpose: 'batch' })).toEqual(
      BATCH_FILE_IDS_NEWEST_FIRST.filter((id) => id !== gone.id),
    )
    // Paging across the gap it left still works.
    const ids = await pageThrough<FileRecord>(2, (after) =>
      store.listFiles('delete-file', { after, limit: 2, order: 'desc' }),
    )
    expect(ids).toEqual(FILE_IDS_NEWEST_FIRST.filter((id) => id !== gone.id))
  })

  it('pages on after a file that was deleted since the last page', async () => {
    await addFiles(filesOf('delete-while-paging'))
    const first = await store.listFiles('delete-while-paging', { limit: 2, order: 'desc' })
    const last = first.data[1] as FileRecord
    await store.deleteFile(last)

    const cursor = await store.fileCursor(last.id)
    expect(cursor).toMatchObject({ id: last.id, owner: 'delete-while-paging' })
    const next = await store.listFiles('delete-while-paging', { after: cursor, limit: 2, order: 'desc' })
    expect(next.data.map((file) => file.id)).toEqual(FILE_IDS_NEWEST_FIRST.slice(2, 4))

    // Each deleted file keeps a cursor of its own.
    const other = first.data[0] as FileRecord
    await store.deleteFile(other)
    expect(await store.fileCursor(last.id)).toEqual({ id: last.id, owner: last.owner, createdAtMs: last.createdAtMs })
    expect(await store.fileCursor(other.id)).toEqual({
      id: other.id,
      owner: other.owner,
      createdAtMs: other.createdAtMs,
    })
    expect(await store.fileCursor('file-never-stored')).toBeUndefined()
  })

  it('lists a record added twice once', async () => {
    const file = fileRecord('twice', 'file-TwiceTwiceTwiceTwiceTwic', T0)
    const batch = batchRecord('twice', 'batch_2222222222222222222222222222222a', T0)

    await store.addFile(file)
    await store.addFile(file)
    await Promise.all([store.addBatch(batch), store.addBatch(batch)])

    expect(await fileIds('twice')).toEqual([file.id])
    expect(await fileIds('twice', { purpose: 'batch' })).toEqual([file.id])
    expect(await batchIds('twice')).toEqual([batch.id])
  })

  it('keeps every owner to their own records', async () => {
    await addFiles([fileRecord('alice', 'file-AliceAliceAliceAliceAli', T0)])
    await addBatches([batchRecord('alice', 'batch_a11ce000000000000000000000000000', T0)])
    await addFiles([fileRecord('bob', 'file-BobBobBobBobBobBobBobBo', T0 + 1)])

    expect(await fileIds('alice')).toEqual(['file-AliceAliceAliceAliceAli'])
    expect(await batchIds('alice')).toEqual(['batch_a11ce000000000000000000000000000'])
    expect(await fileIds('bob')).toEqual(['file-BobBobBobBobBobBobBobBo'])
    expect(await batchIds('bob')).toEqual([])
    expect(await fileIds('carol')).toEqual([])
  })

  it("never mixes owners whose names contain ':' or '/'", async () => {
    // Each owner is a prefix of another, or its name spells another's list (owner `acme` listing
    // purpose `batch` versus owner `acme:batch`), or an escaped form of another name.
    const owners = ['acme', 'acme:batch', 'acme/batch', 'acme:', 'acme%3Abatch', 'acme:batch:batch', 'a/b:c']
    await Promise.all(
      owners.map((owner, i) =>
        Promise.all([
          store.addFile(fileRecord(owner, `file-owner${i}batch`, T0, 'batch')),
          store.addFile(fileRecord(owner, `file-owner${i}user`, T0 + 1000, 'user_data')),
          store.addBatch(batchRecord(owner, `batch_owner${i}`, T0)),
        ]),
      ),
    )

    for (const [i, owner] of owners.entries()) {
      expect(await fileIds(owner), owner).toEqual([`file-owner${i}user`, `file-owner${i}batch`])
      expect(await fileIds(owner, { purpose: 'batch' }), owner).toEqual([`file-owner${i}batch`])
      expect(await fileIds(owner, { purpose: 'user_data' }), owner).toEqual([`file-owner${i}user`])
      expect(await batchIds(owner), owner).toEqual([`batch_owner${i}`])
    }
  })
})
