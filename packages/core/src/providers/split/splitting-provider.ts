import { Readable } from 'node:stream'
import { isApiError } from '../../errors.js'
import { TERMINAL_STATUSES } from '../../types.js'
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
import { partIdsOf, partTag } from './part-ids.js'
import { type PartLimits, PartsLeftUpstream, uploadInParts } from './upload-parts.js'

/** How many parts are asked about at once. */
const PART_CONCURRENCY = 4

/**
 * A provider that takes batch input files larger than one of its batches may be. An upload is cut
 * into parts within the provider's limits, a batch on such a file runs as one provider batch per
 * part, and each object made of parts answers to one id (see `part-ids.ts`): retrieving, downloading
 * (the parts' bytes in order), cancelling and deleting it does so for every part. Everything within
 * the limits passes straight through, with the provider's own ids.
 */
export class SplittingProvider implements Provider {
  readonly kind: string
  readonly limits: Provider['limits']

  constructor(
    private readonly provider: Provider,
    private readonly partLimits: PartLimits,
  ) {
    this.kind = provider.kind
    this.limits = provider.limits
  }

  async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    return combineFiles(await uploadInParts(this.provider, upload, this.partLimits))
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.retrieveFile(id)
    return combineFiles(await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveFile(part)))
  }

  async downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
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

  async retrieveBatch(id: string): Promise<ProviderBatch> {
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.retrieveBatch(id)
    return combineBatches(await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveBatch(part)))
  }

  /** Cancels every part; a part that has already ended stays as it is. A 409 only when every part had ended. */
  async cancelBatch(id: string): Promise<ProviderBatch> {
    const parts = partIdsOf(id)
    if (parts.length === 1) return this.provider.cancelBatch(id)
    let conflict: unknown
    const answers = await mapConcurrently(parts, PART_CONCURRENCY, async (part) => {
      try {
        return await this.provider.cancelBatch(part)
      } catch (error) {
        if (!(isApiError(error) && error.status === 409)) throw error
        conflict = error
        return this.provider.retrieveBatch(part)
      }
    })
    if (conflict !== undefined && answers.every((part) => TERMINAL_STATUSES.has(part.status))) throw conflict
    return combineBatches(answers)
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
