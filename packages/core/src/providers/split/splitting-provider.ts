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
import { type BatchPart, batchPartsOf, isJoinedId, joinBatchParts, partIdsOf, partTag } from './part-ids.js'
import {
  cancelledWhileWaiting,
  DEFAULT_QUEUE_RETRY,
  nextSubmitAtMs,
  type QueueRetryOptions,
  turnedDownForQueue,
  waitingPart,
} from './queue-retry.js'
import { type PartLimits, PartsLeftUpstream, uploadInParts } from './upload-parts.js'

/** How many parts are asked about at once. */
const PART_CONCURRENCY = 4

/**
 * A provider that takes batch input files larger than one of its batches may be. An upload is cut
 * into parts within the provider's limits, a batch on such a file runs as one provider batch per
 * part, and each object made of parts answers to one id (see `part-ids.ts`): retrieving, downloading
 * (the parts' bytes in order), cancelling and deleting it does so for every part. Everything within
 * the limits passes straight through, with the provider's own ids. A batch or part that the provider
 * turns down because its queue is full waits and is submitted again ({@link QueueRetryOptions}); the
 * batch's id then records each part's submissions.
 */
export class SplittingProvider implements Provider {
  readonly kind: string
  readonly limits: Provider['limits']

  private readonly queueRetry: Required<QueueRetryOptions>

  /** `queueRetry: false` leaves a batch the provider turned down for a full queue failed, as the provider says. */
  constructor(
    private readonly provider: Provider,
    private readonly partLimits: PartLimits,
    queueRetry: QueueRetryOptions | false = {},
  ) {
    this.kind = provider.kind
    this.limits = provider.limits
    this.queueRetry =
      queueRetry === false ? { ...DEFAULT_QUEUE_RETRY, attempts: 0 } : { ...DEFAULT_QUEUE_RETRY, ...queueRetry }
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

  /**
   * The batch, from its parts. A part the provider turned down for a full queue is shown waiting
   * (see {@link QueueRetryOptions}); with `resubmit`, those now due are submitted again.
   */
  async retrieveBatch(id: string, resubmit?: ProviderBatchRequest): Promise<ProviderBatch> {
    const parts = batchPartsOf(id)
    const answers = await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveBatch(part.id))
    if (!isJoinedId(id) && !turnedDownForQueue(answers[0] as ProviderBatch)) return answers[0] as ProviderBatch
    const now = Date.now()
    const next = await mapConcurrently([...parts.keys()], PART_CONCURRENCY, async (index) => {
      const part = parts[index] as BatchPart
      const answer = answers[index] as ProviderBatch
      if (resubmit && this.waits(part, answer) && now >= nextSubmitAtMs(part, answer, this.queueRetry)) {
        return this.submitAgain(resubmit, index, part, answer)
      }
      return { part, answer }
    })
    return this.combine(next)
  }

  /**
   * Cancels every part; a part that has already ended stays as it is, and one waiting for the provider's
   * queue is not submitted again. A 409 only when every part had ended.
   */
  async cancelBatch(id: string): Promise<ProviderBatch> {
    const parts = batchPartsOf(id)
    if (!isJoinedId(id)) {
      try {
        return await this.provider.cancelBatch(id)
      } catch (error) {
        // A batch waiting for the provider's queue has failed upstream, but can still be cancelled here.
        if (!(isApiError(error) && error.status === 409)) throw error
      }
    }
    let conflict: unknown
    const stoppedAt = Math.floor(Date.now() / 1000)
    const next = await mapConcurrently(parts, PART_CONCURRENCY, async (part): Promise<PartState> => {
      if (part.stopped) return { part, answer: await this.provider.retrieveBatch(part.id) }
      try {
        return { part, answer: await this.provider.cancelBatch(part.id) }
      } catch (error) {
        if (!(isApiError(error) && error.status === 409)) throw error
        const answer = await this.provider.retrieveBatch(part.id)
        if (this.waits(part, answer))
          return { part: { ...part, stopped: { reason: 'cancelled', at: stoppedAt } }, answer }
        conflict = error
        return { part, answer }
      }
    })
    const combined = this.combine(next)
    if (conflict !== undefined && TERMINAL_STATUSES.has(combined.status)) throw conflict
    return combined
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

  /** Whether a part waits for the provider's queue: turned down for it, not stopped, with submissions left. */
  private waits(part: BatchPart, answer: ProviderBatch): boolean {
    return !part.stopped && part.attempt < this.queueRetry.attempts && turnedDownForQueue(answer)
  }

  /**
   * Submits a part again, tagged with its attempt, after looking for a submission that a crash kept from
   * being recorded. A provider still too busy leaves it waiting; one that refuses it stops it.
   */
  private async submitAgain(
    request: ProviderBatchRequest,
    index: number,
    part: BatchPart,
    turnedDown: ProviderBatch,
  ): Promise<PartState> {
    const attempt = part.attempt + 1
    const tag = `${partTag(request.tag, index)}_q${attempt}`
    const input = partIdsOf(request.inputFileId)[index] as string
    try {
      // Made after the provider turned the part down, by the provider's own clock.
      const since = turnedDown.failedAt ?? 0
      const made =
        (await this.provider.findBatch(tag, since)) ??
        (await this.provider.createBatch({ ...request, inputFileId: input, tag }))
      return { part: { id: made.id, attempt }, answer: made }
    } catch (error) {
      if (isApiError(error) && BUSY.has(error.code ?? '')) return { part, answer: turnedDown }
      if (!refusedUpstream(error)) throw error
      return {
        part: { ...part, stopped: { reason: 'refused', at: Math.floor(Date.now() / 1000) } },
        answer: turnedDown,
      }
    }
  }

  /** The batch its parts make, each shown as a client sees it: waiting, cancelled while waiting, or as it is. */
  private combine(parts: readonly PartState[]): ProviderBatch {
    const shown = parts.map(({ part, answer }) => {
      if (!turnedDownForQueue(answer)) return answer
      if (part.stopped?.reason === 'cancelled') return cancelledWhileWaiting(answer, part.stopped.at)
      if (this.waits(part, answer)) return waitingPart(answer, nextSubmitAtMs(part, answer, this.queueRetry))
      return answer
    })
    return combineBatches(shown, joinBatchParts(parts.map((p) => p.part)))
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

/** A part of a batch and what its provider batch says now. */
interface PartState {
  part: BatchPart
  answer: ProviderBatch
}

/** Refusals that mean "not now": a part that meets one while being submitted again keeps waiting. */
const BUSY: ReadonlySet<string> = new Set(['upstream_rate_limited', 'upstream_unavailable'])
