import { Readable } from 'node:stream'
import { isApiError } from '../../errors.js'
import { TERMINAL_STATUSES } from '../../types.js'
import { customIdOf } from '../../util/lines.js'
import { mapConcurrently } from '../../util/map-concurrently.js'
import type { Provider, ProviderBatch, ProviderBatchRequest } from '../types.js'
import { refusedUpstream } from '../upstream-errors.js'
import { combineBatches } from './combine.js'
import { type BatchPart, batchPartsOf, isJoinedId, joinBatchParts, partIdsOf, partTag } from './part-ids.js'
import { customIdsIn, linesOf } from './provider-lines.js'
import {
  cancelledWhileWaiting,
  nextSubmitAtMs,
  type QueueRetryOptions,
  turnedDownForQueue,
  waitingPart,
} from './queue-retry.js'
import { type RequestRetryOptions, transientFailureOf } from './request-retries.js'

/** How many parts are asked about at once. */
const PART_CONCURRENCY = 4

/** A follow-up round's input file lives as long as the batch's output files do by default. */
const ROUND_INPUT_EXPIRY = { anchor: 'created_at' as const, seconds: 30 * 24 * 60 * 60 }

/** A part of a batch and what its provider batch says now. */
interface PartState {
  part: BatchPart
  answer: ProviderBatch
}

/**
 * Reads and cancels of batches run as several provider batches (see `part-ids.ts`): the parts of a big
 * input file, a part submitted again after the provider turned it down for a full queue
 * ({@link QueueRetryOptions}), and the follow-up rounds that run transient failures again
 * ({@link RequestRetryOptions}). Only a caller that passes the batch's create (the one process following
 * the batch) submits anything; everything it submits is tagged and looked for before it is made, so a
 * process killed in between leaves the next one to find it rather than make it twice.
 */
export class PartedBatches {
  constructor(
    private readonly provider: Provider,
    /** Finds and uploads files in parts within the provider's limits: a follow-up round's input. */
    private readonly files: Pick<Provider, 'findFile' | 'uploadFile'>,
    private readonly queueRetry: Required<QueueRetryOptions>,
    private readonly retries: Required<RequestRetryOptions>,
  ) {}

  /**
   * The batch, from its parts. A part the provider turned down for a full queue is shown waiting; a batch
   * with failures a follow-up round may run again is shown in progress. With `resubmit`, what is due is
   * submitted: parts again, and the next round.
   */
  async retrieve(id: string, resubmit?: ProviderBatchRequest): Promise<ProviderBatch> {
    const { parts, retriesDone } = batchPartsOf(id)
    const answers = await mapConcurrently(parts, PART_CONCURRENCY, (part) => this.provider.retrieveBatch(part.id))
    const states = parts.map((part, index) => ({ part, answer: answers[index] as ProviderBatch }))
    if (!isJoinedId(id) && this.asTheProviderSays(states[0] as PartState)) return (states[0] as PartState).answer
    const now = Date.now()
    let next = await mapConcurrently([...states.keys()], PART_CONCURRENCY, async (index) => {
      const { part, answer } = states[index] as PartState
      if (resubmit && this.waits(part, answer) && now >= nextSubmitAtMs(part, answer, this.queueRetry)) {
        return this.submitAgain(resubmit, parts, index, answer)
      }
      return { part, answer }
    })
    let done = retriesDone
    if (resubmit && this.retryPending(next, done)) {
      const round = await this.nextRound(resubmit, next)
      if (round.length === 0) done = true
      else next = [...next, ...round]
    }
    return this.combine(next, done)
  }

  /**
   * Cancels every part; a part that has already ended stays as it is, one waiting for the provider's
   * queue is not submitted again, and no follow-up round is made. A 409 when every part had ended, or
   * when the provider refused the cancel of every part it was asked about (none stopped waiting for its queue).
   */
  async cancel(id: string): Promise<ProviderBatch> {
    const { parts } = batchPartsOf(id)
    if (!isJoinedId(id)) {
      try {
        return await this.provider.cancelBatch(id)
      } catch (error) {
        // A batch waiting for the provider's queue has failed upstream, but can still be cancelled here.
        if (!(isApiError(error) && error.status === 409)) throw error
      }
    }
    let conflict: unknown
    let accepted = false
    const stoppedAt = Math.floor(Date.now() / 1000)
    const next = await mapConcurrently(parts, PART_CONCURRENCY, async (part): Promise<PartState> => {
      if (part.stopped) return { part, answer: await this.provider.retrieveBatch(part.id) }
      try {
        const answer = await this.provider.cancelBatch(part.id)
        accepted = true
        return { part, answer }
      } catch (error) {
        if (!(isApiError(error) && error.status === 409)) throw error
        const answer = await this.provider.retrieveBatch(part.id)
        if (this.waits(part, answer)) {
          accepted = true
          return { part: { ...part, stopped: { reason: 'cancelled', at: stoppedAt } }, answer }
        }
        conflict = error
        return { part, answer }
      }
    })
    const combined = this.combine(next, true)
    if (conflict !== undefined && (!accepted || TERMINAL_STATUSES.has(combined.status))) throw conflict
    return combined
  }

  /**
   * Whether a batch of one provider batch, on its first submission, is shown as its provider has it: it
   * is not waiting for the queue, and no follow-up round could follow it (retries are off, or it is not
   * near its end yet).
   */
  private asTheProviderSays({ answer }: PartState): boolean {
    if (turnedDownForQueue(answer)) return false
    return this.retries.attempts === 0 || (answer.status !== 'finalizing' && !TERMINAL_STATUSES.has(answer.status))
  }

  /** Whether a part waits for the provider's queue: turned down for it, not stopped, with submissions left. */
  private waits(part: BatchPart, answer: ProviderBatch): boolean {
    return !part.stopped && part.attempt < this.queueRetry.attempts && turnedDownForQueue(answer)
  }

  /** A part as the client sees it: waiting for the queue, cancelled while waiting, or as the provider has it. */
  private shown({ part, answer }: PartState): ProviderBatch {
    if (!turnedDownForQueue(answer)) return answer
    if (part.stopped?.reason === 'cancelled') return cancelledWhileWaiting(answer, part.stopped.at)
    if (this.waits(part, answer)) return waitingPart(answer, nextSubmitAtMs(part, answer, this.queueRetry))
    return answer
  }

  /**
   * Whether a follow-up round is due: retries are on and not over, every part has ended, the last round
   * is not the last allowed, the batch was neither cancelled nor expired, and requests of the last round
   * failed (whether for a transient reason, only their error files tell).
   */
  private retryPending(states: readonly PartState[], done: boolean): boolean {
    if (done || this.retries.attempts === 0) return false
    const shown = states.map((state) => this.shown(state))
    if (!shown.every((batch) => TERMINAL_STATUSES.has(batch.status))) return false
    if (shown.some((batch) => batch.status === 'cancelled' || batch.status === 'expired')) return false
    const round = lastRound(states)
    if (round >= this.retries.attempts) return false
    return states.some(
      (state, i) => roundOf(state.part) === round && (shown[i] as ProviderBatch).requestCounts.failed > 0,
    )
  }

  /**
   * Makes the next follow-up round: the last round's requests that failed for a transient reason, as
   * the client wrote them, in a new input file (in parts within the provider's limits) with a batch on
   * each part. Nothing to run again, or a provider that refuses it, ends the retries.
   */
  private async nextRound(request: ProviderBatchRequest, states: readonly PartState[]): Promise<PartState[]> {
    const previous = lastRound(states)
    const last = states.filter((state) => roundOf(state.part) === previous)
    const errorFiles = last.map((state) => state.answer.errorFileId).filter((id): id is string => id !== null)
    const again = await customIdsIn(this.provider, errorFiles, transientFailureOf)
    if (again.size === 0) return []
    const inputs =
      previous === 0 ? partIdsOf(request.inputFileId) : last.map((state) => state.part.retry?.input as string)
    const round = previous + 1
    const tag = roundTag(request.tag, round)
    // Made after the last round ended, by the provider's own clock.
    const since = Math.max(...last.map((state) => endedAt(state.answer)))
    const provider = this.provider
    async function* requests(): AsyncGenerator<Buffer> {
      for await (const line of linesOf(provider, inputs)) {
        const id = customIdOf(line)
        if (id !== undefined && again.has(id)) yield Buffer.concat([line, NEWLINE])
      }
    }
    try {
      const file =
        (await this.files.findFile(tag, since)) ??
        (await this.files.uploadFile({
          body: Readable.from(requests(), { objectMode: false }),
          filename: `${tag}.jsonl`,
          tag,
          purpose: Promise.resolve('batch'),
          expiresAfter: Promise.resolve(ROUND_INPUT_EXPIRY),
          signal: new AbortController().signal,
        }))
      const made: PartState[] = []
      for (const [index, input] of partIdsOf(file.id).entries()) {
        const partTagged = partTag(tag, index)
        const batch =
          (await this.provider.findBatch(partTagged, since)) ??
          (await this.provider.createBatch({ ...request, inputFileId: input, tag: partTagged }))
        made.push({ part: { id: batch.id, attempt: 0, retry: { round, input } }, answer: batch })
      }
      return made
    } catch (error) {
      // A round the provider will not take ends the retries; anything else is tried again later.
      if (refusedUpstream(error) && !(isApiError(error) && BUSY.has(error.code ?? ''))) return []
      throw error
    }
  }

  /**
   * Submits a part again, tagged with its attempt, after looking for a submission that a crash kept from
   * being recorded. A provider still too busy leaves it waiting; one that refuses it stops it.
   */
  private async submitAgain(
    request: ProviderBatchRequest,
    parts: readonly BatchPart[],
    index: number,
    turnedDown: ProviderBatch,
  ): Promise<PartState> {
    const part = parts[index] as BatchPart
    const { input, tag: base } = submissionOf(request, parts, index)
    const attempt = part.attempt + 1
    const tag = `${base}_q${attempt}`
    try {
      // Made after the provider turned the part down, by the provider's own clock.
      const since = turnedDown.failedAt ?? 0
      const made =
        (await this.provider.findBatch(tag, since)) ??
        (await this.provider.createBatch({ ...request, inputFileId: input, tag }))
      return { part: { ...part, id: made.id, attempt }, answer: made }
    } catch (error) {
      if (isApiError(error) && BUSY.has(error.code ?? '')) return { part, answer: turnedDown }
      if (!refusedUpstream(error)) throw error
      return {
        part: { ...part, stopped: { reason: 'refused', at: Math.floor(Date.now() / 1000) } },
        answer: turnedDown,
      }
    }
  }

  /**
   * The batch its parts make, as a client sees it. While a follow-up round may still start it is in
   * progress, never finalizing: a status never goes back, and a round takes it back to work.
   */
  private combine(states: readonly PartState[], done: boolean): ProviderBatch {
    const combined = combineBatches(
      states.map((state) => this.shown(state)),
      joinBatchParts(
        states.map((state) => state.part),
        done,
      ),
      states.map((state) => state.part.retry),
    )
    const pending = this.retryPending(states, done)
    const mayRetry = this.retries.attempts > 0 && !done && lastRound(states) < this.retries.attempts
    if (!pending && !(mayRetry && combined.status === 'finalizing')) return combined
    return {
      ...combined,
      status: 'in_progress',
      finalizingAt: null,
      completedAt: null,
      failedAt: null,
      outputFileId: null,
      errorFileId: null,
      nextSubmitAtMs: pending ? Date.now() : combined.nextSubmitAtMs,
    }
  }
}

/** The input file part and the tag of part `index`'s first submission. */
function submissionOf(
  request: ProviderBatchRequest,
  parts: readonly BatchPart[],
  index: number,
): { input: string; tag: string } {
  const part = parts[index] as BatchPart
  const round = roundOf(part)
  const position = parts.slice(0, index).filter((other) => roundOf(other) === round).length
  if (part.retry) return { input: part.retry.input, tag: partTag(roundTag(request.tag, round), position) }
  return { input: partIdsOf(request.inputFileId)[position] as string, tag: partTag(request.tag, position) }
}

/** The tag of follow-up round `round`'s input file, and the base of its parts' batches' tags. */
function roundTag(tag: string, round: number): string {
  return `${tag}_r${round}`
}

function roundOf(part: BatchPart): number {
  return part.retry?.round ?? 0
}

function lastRound(states: readonly PartState[]): number {
  return Math.max(...states.map((state) => roundOf(state.part)))
}

function endedAt(batch: ProviderBatch): number {
  return batch.completedAt ?? batch.failedAt ?? batch.expiredAt ?? batch.cancelledAt ?? 0
}

const NEWLINE = Buffer.from('\n')

/** Refusals that mean "not now": a part that meets one while being submitted again keeps waiting. */
const BUSY: ReadonlySet<string> = new Set(['upstream_rate_limited', 'upstream_unavailable'])
