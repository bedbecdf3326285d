import type { Keyv } from 'keyv'
import type { BatchRecord, FilePurpose, FileRecord, Page } from '../types.js'
import { CheckedKeyv } from './checked-keyv.js'
import type { StoreGuard } from './guard.js'
import { idOfSortKey, type OrderedIndex, sortKey } from './ordered-index.js'

/** The order a list is returned in. */
export type ListOrder = 'asc' | 'desc'

/** Where a list page starts: the owner and sort position of the object named by `after`. */
export interface ListCursor {
  id: string
  owner: string
  createdAtMs: number
}

/** How long a deleted file still works as a list cursor, so a client can delete while it pages. */
const CURSOR_TTL_MS = 24 * 60 * 60 * 1000

/**
 * Files and batches in the user's Keyv store, each under its own key, with per-owner ordered
 * indexes for listing. Records are written before they are indexed and unindexed before they are
 * deleted, so a list never names a record that is not there to read. Every operation is bounded
 * by the guard's timeout, and any failure of the store surfaces as a 503 `store_unavailable`
 * (never as a missing record); the cause goes to the guard's error reporter.
 */
export class RecordStore {
  private readonly keyv: CheckedKeyv

  constructor(
    keyv: Keyv,
    private readonly index: OrderedIndex,
    private readonly storeGuard: StoreGuard,
  ) {
    this.keyv = new CheckedKeyv(keyv)
  }

  getFile(id: string): Promise<FileRecord | undefined> {
    return this.guard('reading a file record', () => this.keyv.get<FileRecord>(fileKey(id)))
  }

  /** Stores a file record and lists it for its owner; safe to repeat. On failure nothing is left. */
  addFile(file: FileRecord): Promise<void> {
    return this.guard('storing a file record', async () => {
      await this.keyv.set(fileKey(file.id), file)
      try {
        await this.listFile(file)
      } catch (error) {
        await this.removeFile(file).catch(() => undefined)
        throw error
      }
    })
  }

  /**
   * Lists a stored file for its owner again; safe to repeat. It finishes an {@link addFile} that a
   * crash cut short between the record and its listing.
   */
  relistFile(file: FileRecord): Promise<void> {
    return this.guard('listing a file record', () => this.listFile(file))
  }

  /** Unlists and deletes a file record, keeping a short-lived cursor so a list can page past it. */
  deleteFile(file: FileRecord): Promise<void> {
    return this.guard('deleting a file record', async () => {
      const cursor: ListCursor = { id: file.id, owner: file.owner, createdAtMs: file.createdAtMs }
      await this.keyv.set(deletedFileKey(file.id), cursor, CURSOR_TTL_MS)
      await this.removeFile(file)
    })
  }

  /** The cursor for a file id, whether the file still exists or was deleted in the last day. */
  fileCursor(id: string): Promise<ListCursor | undefined> {
    return this.guard('reading a list cursor', async () => {
      return (await this.keyv.get<FileRecord>(fileKey(id))) ?? (await this.keyv.get<ListCursor>(deletedFileKey(id)))
    })
  }

  getBatch(id: string): Promise<BatchRecord | undefined> {
    return this.guard('reading a batch record', () => this.keyv.get<BatchRecord>(batchKey(id)))
  }

  /** Stores a new batch record and lists it for its owner. On failure nothing is left. */
  addBatch(batch: BatchRecord): Promise<void> {
    return this.guard('storing a batch record', async () => {
      await this.keyv.set(batchKey(batch.id), withoutBilling(batch))
      try {
        await this.listBatch(batch)
      } catch (error) {
        await this.index.remove(batchList(batch.owner), sortKey(batch.createdAtMs, batch.id)).catch(() => undefined)
        await this.keyv.delete(batchKey(batch.id)).catch(() => undefined)
        throw error
      }
    })
  }

  /**
   * Lists a stored batch for its owner again; safe to repeat. It finishes an {@link addBatch} that a
   * crash cut short between the record and its listing.
   */
  relistBatch(batch: BatchRecord): Promise<void> {
    return this.guard('listing a batch record', () => this.listBatch(batch))
  }

  /** Overwrites a batch record with its latest state. */
  updateBatch(batch: BatchRecord): Promise<void> {
    return this.guard('updating a batch record', async () => {
      await this.keyv.set(batchKey(batch.id), withoutBilling(batch))
    })
  }

  /** Unlists and deletes a batch record: only to undo a create that could not complete. */
  deleteBatch(batch: BatchRecord): Promise<void> {
    return this.guard('deleting a batch record', async () => {
      await this.index.remove(batchList(batch.owner), sortKey(batch.createdAtMs, batch.id))
      await this.keyv.delete(batchKey(batch.id))
    })
  }

  /** A page of an owner's files, starting after `after`. */
  listFiles(
    owner: string,
    options: { purpose?: FilePurpose; after?: ListCursor; limit: number; order: ListOrder },
  ): Promise<Page<FileRecord>> {
    return this.page(fileList(owner, options.purpose), options, fileKey)
  }

  /** A page of an owner's batches, newest first, starting after `after`. */
  listBatches(owner: string, options: { after?: ListCursor; limit: number }): Promise<Page<BatchRecord>> {
    return this.page(batchList(owner), { ...options, order: 'desc' }, batchKey)
  }

  /** Many batch records at once, in the order of `ids` (undefined where missing). */
  getBatches(ids: string[]): Promise<(BatchRecord | undefined)[]> {
    return this.guard('reading batch records', () => this.keyv.getMany<BatchRecord>(ids.map(batchKey)))
  }

  /** Lists a billed batch by the time of its bill, for spend reports, in all owners' list and its owner's; safe to repeat. */
  listBilled(batch: Pick<BatchRecord, 'id' | 'owner'>, billedAtMs: number): Promise<void> {
    return this.guard('listing a billed batch', async () => {
      const key = sortKey(billedAtMs, batch.id)
      await Promise.all([this.index.add(billedList(), key), this.index.add(billedList(batch.owner), key)])
    })
  }

  /**
   * The ids of the batches billed from `fromMs` (inclusive) to `toMs` (exclusive), oldest first, of
   * one owner or of all, a page of at most `pageSize` at a time.
   */
  async *billedBetween(
    owner: string | undefined,
    fromMs: number,
    toMs: number,
    pageSize = 1000,
  ): AsyncGenerator<string[]> {
    // Keys are `<ms>:<id>` with ids never empty, so `<fromMs>:` sorts just before the first key of `fromMs`.
    let after = sortKey(fromMs, '')
    for (;;) {
      const keys = await this.guard('listing billed batches', () =>
        this.index.range(billedList(owner), { after, limit: pageSize, order: 'asc' }),
      )
      const page = keys.slice(0, pageSize)
      const inRange = page.filter((key) => Number(key.slice(0, key.indexOf(':'))) < toMs)
      if (inRange.length > 0) yield inRange.map(idOfSortKey)
      if (inRange.length < page.length || keys.length <= pageSize) return
      after = page[page.length - 1] as string
    }
  }

  /** A small record of batchkit's own bookkeeping (tracking state, billing, events), by kind and id. */
  getRecord<T>(kind: RecordKind, id: string): Promise<T | undefined> {
    return this.guard(`reading a ${kind} record`, () => this.keyv.get<T>(recordKey(kind, id)))
  }

  /** Many records of one kind at once, in the order of `ids` (undefined where missing). */
  getRecords<T>(kind: RecordKind, ids: string[]): Promise<(T | undefined)[]> {
    return this.guard(`reading ${kind} records`, () => this.keyv.getMany<T>(ids.map((id) => recordKey(kind, id))))
  }

  putRecord(kind: RecordKind, id: string, value: unknown, ttlMs?: number): Promise<void> {
    return this.guard(`storing a ${kind} record`, async () => {
      await this.keyv.set(recordKey(kind, id), value, ttlMs)
    })
  }

  deleteRecord(kind: RecordKind, id: string): Promise<void> {
    return this.guard(`deleting a ${kind} record`, async () => {
      await this.keyv.delete(recordKey(kind, id))
    })
  }

  private async listFile(file: FileRecord): Promise<void> {
    const key = sortKey(file.createdAtMs, file.id)
    await Promise.all([
      this.index.add(fileList(file.owner), key),
      this.index.add(fileList(file.owner, file.purpose), key),
    ])
  }

  private listBatch(batch: BatchRecord): Promise<void> {
    return this.index.add(batchList(batch.owner), sortKey(batch.createdAtMs, batch.id))
  }

  private async removeFile(file: FileRecord): Promise<void> {
    const key = sortKey(file.createdAtMs, file.id)
    await Promise.all([
      this.index.remove(fileList(file.owner), key),
      this.index.remove(fileList(file.owner, file.purpose), key),
    ])
    await this.keyv.delete(fileKey(file.id))
  }

  private page<T>(
    list: string,
    options: { after?: ListCursor; limit: number; order: ListOrder },
    keyOf: (id: string) => string,
  ): Promise<Page<T>> {
    return this.guard('listing records', async () => {
      const after = options.after ? sortKey(options.after.createdAtMs, options.after.id) : undefined
      const keys = await this.index.range(list, { after, limit: options.limit, order: options.order })
      const page = keys.slice(0, options.limit)
      const records = await this.keyv.getMany<T>(page.map((key) => keyOf(idOfSortKey(key))))
      // A record deleted between the index read and the record read is skipped, not shown as a hole.
      return {
        data: records.filter((r): r is T => r !== undefined),
        hasMore: keys.length > options.limit,
      }
    })
  }

  private guard<T>(context: string, operation: () => Promise<T>): Promise<T> {
    return this.storeGuard.run(context, operation)
  }
}

/** Billing has a record of its own, so that API writes of a batch can never drop it. */
function withoutBilling(batch: BatchRecord): BatchRecord {
  if (!('billing' in batch)) return batch
  const { billing: _, ...record } = batch
  return record
}

/** Kinds of bookkeeping record. */
export type RecordKind =
  | 'tracking'
  | 'billing'
  | 'event'
  | 'event-done'
  | 'intent'
  | 'idempotency'
  | 'deferred-delete'
  | 'webhook'
  | 'webhook-done'

const recordKey = (kind: RecordKind, id: string) => `batchkit:${kind}:${id}`
const fileKey = (id: string) => `batchkit:file:${id}`
const deletedFileKey = (id: string) => `batchkit:deleted-file:${id}`
const batchKey = (id: string) => `batchkit:batch:${id}`
const fileList = (owner: string, purpose?: FilePurpose) =>
  purpose ? `files:${encodeURIComponent(owner)}:${purpose}` : `files:${encodeURIComponent(owner)}`
const batchList = (owner: string) => `batches:${encodeURIComponent(owner)}`
const billedList = (owner?: string) => (owner === undefined ? 'billed' : `billed:${encodeURIComponent(owner)}`)
