import { Readable } from 'node:stream'
import { ApiError, invalidValue } from '../errors.js'
import type { ErrorReporter, FileService } from '../files/service.js'
import type { RecordStore } from '../store/records.js'
import type { BatchRecord, FileRecord, Principal } from '../types.js'
import { customIdOf, LineSplitter } from '../util/lines.js'

/**
 * Re-runs of what failed. A client that creates a batch from the `error_file_id` of one of its
 * finished batches gets a batch of exactly the requests that failed, as it first wrote them: the error
 * file holds results, so each failed request is found in the batch's input file by its `custom_id`.
 * The requests become a new batch input file of the client's own (listable and downloadable), uploaded
 * to the first batch's provider through the ordinary upload path.
 */
export class FailedRequests {
  constructor(
    private readonly store: RecordStore,
    private readonly files: FileService,
    /** The longest line read; the upload limit of the same name. */
    private readonly maxLineBytes: number,
    private readonly reportError: ErrorReporter,
  ) {}

  /** The batch whose error file `file` is, if it is one. */
  async batchOfErrorFile(file: FileRecord): Promise<BatchRecord | undefined> {
    if (file.purpose !== 'batch_output' || file.batchId === null) return undefined
    const batch = await this.store.getBatch(file.batchId)
    return batch?.errorFileId === file.id ? batch : undefined
  }

  /**
   * Runs `create` on a new batch input file of `principal`'s holding the requests of `batch` that
   * failed; when `create` fails, the file is deleted again.
   */
  async run<T>(principal: Principal, batch: BatchRecord, create: (input: FileRecord) => Promise<T>): Promise<T> {
    const input = await this.inputFile(principal, batch)
    try {
      return await create(input)
    } catch (error) {
      await this.files.delete(principal, input.id).catch((e) => this.reportError(e, `deleting ${input.id}`))
      throw error
    }
  }

  /**
   * Uploads the requests of `batch` that failed as a new batch input file of `principal`'s. Both files
   * stream: only the failed requests' `custom_id`s are held.
   */
  private async inputFile(principal: Principal, batch: BatchRecord): Promise<FileRecord> {
    const failed = await this.failedCustomIds(principal, batch)
    const input = await this.files.content(principal, batch.inputFileId).catch(() => {
      throw invalidValue(
        'input_file_id',
        `The input file ${batch.inputFileId} of ${batch.id} is gone, so its failed requests cannot be found.`,
      )
    })
    const splitter = this.splitter()
    async function* failedLines(): AsyncGenerator<Buffer> {
      const picked: Buffer[] = []
      const pick = (line: Buffer) => {
        const id = customIdOf(line)
        if (id !== undefined && failed.has(id)) picked.push(Buffer.concat([line, NEWLINE]))
      }
      let found = 0
      for await (const chunk of input.body) {
        splitter.push(chunk as Buffer, pick)
        found += picked.length
        yield* picked.splice(0)
      }
      splitter.end(pick)
      found += picked.length
      yield* picked.splice(0)
      if (found === 0) {
        throw invalidValue('input_file_id', `No request of ${batch.id}'s input file is named in its error file.`)
      }
    }
    return this.files.create(principal, {
      file: Readable.from(failedLines(), { objectMode: false }),
      filename: `${batch.id}_failed_requests.jsonl`,
      purpose: 'batch',
      provider: batch.provider,
    })
  }

  /** The `custom_id` of every line of the batch's error file. */
  private async failedCustomIds(principal: Principal, batch: BatchRecord): Promise<Set<string>> {
    const errors = await this.files.content(principal, batch.errorFileId as string)
    const ids = new Set<string>()
    const splitter = this.splitter()
    const collect = (line: Buffer) => {
      const id = customIdOf(line)
      if (id !== undefined) ids.add(id)
    }
    for await (const chunk of errors.body) splitter.push(chunk as Buffer, collect)
    splitter.end(collect)
    if (ids.size === 0) {
      throw invalidValue('input_file_id', `The error file of ${batch.id} names no failed request to run again.`)
    }
    return ids
  }

  private splitter(): LineSplitter {
    return new LineSplitter(
      this.maxLineBytes,
      (line, max) => new ApiError(400, `Line ${line} is longer than ${max} bytes.`, { param: 'input_file_id' }),
    )
  }
}

const NEWLINE = Buffer.from('\n')
