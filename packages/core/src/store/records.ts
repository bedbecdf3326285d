import type { Keyv } from 'keyv'
import type { BatchRecord, FilePurpose, FileRecord, Page } from '../types.js'
import { idOfSortKey, type OrderedIndex, sortKey } from './ordered-index.js'

/** The order a list is returned in. */
export type ListOrder = 'asc' | 'desc'

/**
 * Files and batches in the user's Keyv store, each under its own key, with per-owner ordered
 * indexes for listing. Records are written before they are indexed and unindexed before they are
 * deleted, so a list never names a record that is not there to read.
 */
export class RecordStore {
  constructor(
    private readonly keyv: Keyv,
    /** The ordered index used for lists; exposed so callers can tell whether it is shared. */
    readonly index: OrderedIndex,
  ) {}

  getFile(id: string): Promise<FileRecord | undefined> {
    return this.keyv.get<FileRecord>(fileKey(id))
  }

  /** Stores a file record and lists it for its owner; safe to repeat. On failure nothing is left. */
  async addFile(file: FileRecord): Promise<void> {
    await this.keyv.set(fileKey(file.id), file)
    const key = sortKey(file.createdAtMs, file.id)
    try {
      await Promise.all([
        this.index.add(fileList(file.owner), key),
        this.index.add(fileList(file.owner, file.purpose), key),
      ])
    } catch (error) {
      await this.deleteFile(file).catch(() => undefined)
      throw error
    }
  }

  async deleteFile(file: FileRecord): Promise<void> {
    const key = sortKey(file.createdAtMs, file.id)
    await Promise.all([
      this.index.remove(fileList(file.owner), key),
      this.index.remove(fileList(file.owner, file.purpose), key),
    ])
    await this.keyv.delete(fileKey(file.id))
  }

  getBatch(id: string): Promise<BatchRecord | undefined> {
    return this.keyv.get<BatchRecord>(batchKey(id))
  }

  /** Stores a new batch record and lists it for its owner. On failure nothing is left. */
  async addBatch(batch: BatchRecord): Promise<void> {
    await this.keyv.set(batchKey(batch.id), batch)
    try {
      await this.index.add(batchList(batch.owner), sortKey(batch.createdAtMs, batch.id))
    } catch (error) {
      await this.deleteBatch(batch).catch(() => undefined)
      throw error
    }
  }

  /** Overwrites a batch record with its latest state. */
  async updateBatch(batch: BatchRecord): Promise<void> {
    await this.keyv.set(batchKey(batch.id), batch)
  }

  async deleteBatch(batch: BatchRecord): Promise<void> {
    await this.index.remove(batchList(batch.owner), sortKey(batch.createdAtMs, batch.id))
    await this.keyv.delete(batchKey(batch.id))
  }

  /** A page of an owner's files; `after` must be a file record of that owner. */
  listFiles(
    owner: string,
    options: { purpose?: FilePurpose; after?: FileRecord; limit: number; order: ListOrder },
  ): Promise<Page<FileRecord>> {
    return this.page(fileList(owner, options.purpose), options, fileKey)
  }

  /** A page of an owner's batches, newest first; `after` must be a batch record of that owner. */
  listBatches(owner: string, options: { after?: BatchRecord; limit: number }): Promise<Page<BatchRecord>> {
    return this.page(batchList(owner), { ...options, order: 'desc' }, batchKey)
  }

  private async page<T extends { id: string; createdAtMs: number }>(
    list: string,
    options: { after?: T; limit: number; order: ListOrder },
    keyOf: (id: string) => string,
  ): Promise<Page<T>> {
    const after = options.after ? sortKey(options.after.createdAtMs, options.after.id) : undefined
    const keys = await this.index.range(list, { after, limit: options.limit, order: options.order })
    const page = keys.slice(0, options.limit)
    const records = page.length === 0 ? [] : await this.keyv.getMany<T>(page.map((key) => keyOf(idOfSortKey(key))))
    // A record deleted between the index read and the record read is skipped, not shown as a hole.
    return { data: records.filter((r): r is T => r !== undefined && r !== null), hasMore: keys.length > options.limit }
  }
}

const fileKey = (id: string) => `batchkit:file:${id}`
const batchKey = (id: string) => `batchkit:batch:${id}`
const fileList = (owner: string, purpose?: FilePurpose) =>
  purpose ? `files:${encodeURIComponent(owner)}:${purpose}` : `files:${encodeURIComponent(owner)}`
const batchList = (owner: string) => `batches:${encodeURIComponent(owner)}`
