import { Readable } from 'node:stream'
import { isApiError } from '../../errors.js'
import type { CompactStringSet } from '../../util/compact-string-set.js'
import { customIdOf } from '../../util/lines.js'
import { mapConcurrently } from '../../util/map-concurrently.js'
import type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderUpload,
} from '../types.js'
import { refusedUpstream } from '../upstream-errors.js'
import { combineBatches, combineFiles } from './combine.js'
import { type FilteredPart, filteredPartsOf, partIdsOf, partTag } from './part-ids.js'
import { PartedBatches } from './parted-batches.js'
import { customIdsIn, linesOf } from './provider-lines.js'
import { DEFAULT_QUEUE_RETRY, type QueueRetryOptions } from './queue-retry.js'
import type { RequestRetryOptions } from './request-retries.js'
import { type PartLimits, PartsLeftUpstream, uploadInParts } from './upload-parts.js'

/** How many parts are asked about at once. */
const PART_CONCURRENCY = 4

/** What a {@link SplittingProvider} does beyond splitting. */
export interface SplittingOptions {
  /** How batches turned down for a full queue are submitted again; `false` lets them fail. @default on */
  queueRetry?: QueueRetryOptions | false
  /** Follow-up rounds of requests that failed for a transient reason. @default off */
  requestRetries?: RequestRetryOptions
}

/**
 * A provider that takes batch input files larger than one of its batches may be. An upload is cut
 * into parts within the provider's limits, a batch on such a file runs as one provider batch per
 * part, and each object made of parts answers to one id (see `part-ids.ts`): retrieving, downloading
 * (the parts' bytes in order), cancelling and deleting it does so for every part. Everything within
 * the limits passes straight through, with the provider's own ids. Batches are read and cancelled by
 * {@link PartedBatches}, which also submits again what the provider turned down for a full queue and
 * runs transient failures again; a batch's error file then leaves out the requests a later round ran
 * again, read from the parts with those lines filtered out.
 */
export class SplittingProvider implements Provider {
  readonly kind: string
  readonly limits: Provider['limits']

  private readonly batches: PartedBatches

  constructor(
    private readonly provider: Provider,
    private readonly partLimits: PartLimits,
    options: SplittingOptions = {},
  ) {
    this.kind = provider.kind
    this.limits = provider.limits
    const { queueRetry = {}, requestRetries = {} } = options
    this.batches = new PartedBatches(
      provider,
      this,
      queueRetry === false ? { ...DEFAULT_QUEUE_RETRY, attempts: 0 } : { ...DEFAULT_QUEUE_RETRY, ...queueRetry },
      { attempts: requestRetries.attempts ?? 0 },
    )
  }

  async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    return combineFiles(await uploadInParts(this.provider, upload, this.partLimits))
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    if (isFiltered(id)) {
      const parts = filteredPartsOf(id)
      const whole = combineFiles(
        await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveFile(part.id)),
      )
      // What is left out is only known by reading it.
      let bytes = 0
      for await (const chunk of this.filteredLines(parts)) bytes += chunk.length
      return { ...whole, id, bytes }
    }
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.retrieveFile(id)
    return combineFiles(await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveFile(part)))
  }

  async downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    if (isFiltered(id)) {
      return {
        body: Readable.from(this.filteredLines(filteredPartsOf(id), signal), { objectMode: false }),
        bytes: null,
      }
    }
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.downloadFile(id, signal)
    // The first part is asked for now, so a missing file fails the request before any byte is sent.
    const first = await this.provider.downloadFile(parts[0] as string, signal)
    const provider = this.provider
    async function* bytes(): AsyncGenerator<Uint8Array> {
      let last: number | undefined
      for (const [index, part] of parts.entries()) {
        const body = index === 0 ? first.body : (await provider.downloadFile(part, signal)).body
        // Parts of an output file each end a line; should one not, the next must not glue onto it.
        if (last !== undefined && last !== NEWLINE) yield Buffer.from('\n')
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          if (chunk.length === 0) continue
          last = chunk[chunk.length - 1]
          yield chunk
        }
      }
    }
    return { body: Readable.from(bytes(), { objectMode: false }), bytes: null }
  }

  async deleteFile(id: string): Promise<void> {
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.deleteFile(id)
    // A part already gone counts as deleted, so a delete cut short can be run again.
    await mapConcurrently(parts, PART_CONCURRENCY, (part) =>
      this.provider.deleteFile(part).catch((error: unknown) => {
        if (!(isApiError(error) && error.code === 'upstream_not_found')) throw error
      }),
    )
  }

  /**
   * Starts one provider batch per part of the input file, in order. When the provider refuses a part,
   * the parts already started are cancelled and the refusal thrown. After any other failure, or when a
   * part cannot be cancelled, they are left for the reconciler, which finishes the create
   * ({@link findBatch}) so that whatever runs is recorded and billed.
   */
  async createBatch(request: ProviderBatchRequest): Promise<ProviderBatch> {
    const inputs = partIdsOf(request.inputFileId)
    if (inputs.length === 1) return this.provider.createBatch(request)
    const started: ProviderBatch[] = []
    try {
      for (const [index, input] of inputs.entries()) started.push(await this.createPart(request, input, index))
    } catch (error) {
      if (refusedUpstream(error) && !(await this.cancelParts(started))) throw new PartsLeftUpstream(error)
      throw error
    }
    return combineBatches(started)
  }

  /** The batch from its parts, as {@link PartedBatches.retrieve} shows it. */
  retrieveBatch(id: string, resubmit?: ProviderBatchRequest): Promise<ProviderBatch> {
    return this.batches.retrieve(id, resubmit)
  }

  /** Cancels every part of the batch ({@link PartedBatches.cancel}). */
  cancelBatch(id: string): Promise<ProviderBatch> {
    return this.batches.cancel(id)
  }

  /**
   * The parts of the upload tagged `tag` that the provider holds, as one file. Each of the `parts` that may
   * have started is looked for (a later part may be stored while an earlier one is not); not knowing how
   * many, parts are looked for in order until one is missing.
   */
  async findFile(tag: string, since: number, parts?: number): Promise<ProviderFile | undefined> {
    let found: (ProviderFile | undefined)[] = []
    if (parts === undefined) {
      for (;;) {
        const part = await this.provider.findFile(partTag(tag, found.length), since)
        if (!part) break
        found.push(part)
      }
    } else {
      const indexes = Array.from({ length: parts }, (_, index) => index)
      found = await mapConcurrently(indexes, PART_CONCURRENCY, (index) =>
        this.provider.findFile(partTag(tag, index), since),
      )
    }
    const stored = found.filter((part): part is ProviderFile => part !== undefined)
    return stored.length > 0 ? combineFiles(stored) : undefined
  }

  /**
   * The batch tagged `tag`. When `request` says its input has several parts, each part's batch is looked
   * for; if some were started, the create is finished: the parts a crash left unstarted are started now.
   */
  async findBatch(tag: string, since: number, request?: ProviderBatchRequest): Promise<ProviderBatch | undefined> {
    const inputs = request ? partIdsOf(request.inputFileId) : [undefined]
    if (inputs.length === 1) return this.provider.findBatch(tag, since, request)
    const found = await mapConcurrently([...inputs.keys()], PART_CONCURRENCY, (index) =>
      this.provider.findBatch(partTag(tag, index), since),
    )
    if (found.every((part) => part === undefined)) return undefined
    const parts: ProviderBatch[] = []
    for (const [index, input] of inputs.entries()) {
      parts.push(found[index] ?? (await this.createPart(request as ProviderBatchRequest, input as string, index)))
    }
    return combineBatches(parts)
  }

  close(): Promise<void> {
    return this.provider.close?.() ?? Promise.resolve()
  }

  /** The lines of `parts` in order, each part without the lines whose `custom_id` its `skip` files name. */
  private async *filteredLines(parts: readonly FilteredPart[], signal?: AbortSignal): AsyncGenerator<Buffer> {
    const skipSets = new Map<string, CompactStringSet>()
    for (const part of parts) {
      const key = JSON.stringify(part.skip)
      let skip = skipSets.get(key)
      if (skip === undefined) {
        skip = await customIdsIn(this.provider, part.skip, customIdOf)
        skipSets.set(key, skip)
      }
      for await (const line of linesOf(this.provider, [part.id], signal)) {
        const customId = customIdOf(line)
        if (customId === undefined || !skip.has(customId)) yield Buffer.concat([line, NEWLINE_BYTE])
      }
    }
  }

  private createPart(request: ProviderBatchRequest, input: string, index: number): Promise<ProviderBatch> {
    return this.provider.createBatch({ ...request, inputFileId: input, tag: partTag(request.tag, index) })
  }

  /** Whether every part took its cancel. */
  private async cancelParts(parts: readonly ProviderBatch[]): Promise<boolean> {
    const cancelled = await Promise.all(
      parts.map((part) =>
        this.provider.cancelBatch(part.id).then(
          () => true,
          () => false,
        ),
      ),
    )
    return cancelled.every(Boolean)
  }
}

const NEWLINE = 0x0a
const NEWLINE_BYTE = Buffer.from('\n')

/** Whether a file id leaves some of its parts' lines out ({@link joinFilteredParts}). */
function isFiltered(id: string): boolean {
  return filteredPartsOf(id).some((part) => part.skip.length > 0)
}
