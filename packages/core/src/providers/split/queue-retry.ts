import type { ProviderBatch } from '../types.js'
import type { BatchPart } from './part-ids.js'

/**
 * How a batch, or a part of a big one, that the provider turned down because its queue was full
 * (OpenAI's per-model enqueued-token limit: the batch is created, then fails validating with
 * `token_limit_exceeded`) is submitted again. It waits, shown `validating`, and is submitted again
 * after `initialDelayMs`, then after waits doubling up to `maxDelayMs`, at most `attempts` times;
 * after the last it stays failed with the provider's reason.
 */
export interface QueueRetryOptions {
  /** The wait after the provider first turned it down. @default 60_000 (one minute) */
  initialDelayMs?: number
  /** The longest wait between two submissions. @default 1_800_000 (30 minutes) */
  maxDelayMs?: number
  /** Most submissions after the first. @default 40 (about 18 hours of waiting) */
  attempts?: number
}

/** The defaults of {@link QueueRetryOptions}. */
export const DEFAULT_QUEUE_RETRY: Required<QueueRetryOptions> = {
  initialDelayMs: 60_000,
  maxDelayMs: 1_800_000,
  attempts: 40,
}

/** The error codes with which a provider says its queue is full, not that the batch is wrong. */
const QUEUE_FULL_CODES: ReadonlySet<string> = new Set(['token_limit_exceeded'])

/** Whether the provider failed a batch only because its queue was full: the same batch may run later. */
export function turnedDownForQueue(batch: ProviderBatch): boolean {
  return (
    batch.status === 'failed' &&
    batch.errors !== null &&
    batch.errors.length > 0 &&
    batch.errors.every((error) => error.code !== null && QUEUE_FULL_CODES.has(error.code))
  )
}

/** When a part turned down for a full queue is next due to be submitted (unix ms). */
export function nextSubmitAtMs(
  part: BatchPart,
  turnedDown: ProviderBatch,
  options: Required<QueueRetryOptions>,
): number {
  const delay = Math.min(options.initialDelayMs * 2 ** part.attempt, options.maxDelayMs)
  return (turnedDown.failedAt ?? 0) * 1000 + delay
}

/** A part waiting for the provider's queue, as the batch shows it: not started yet, nothing counted. */
export function waitingPart(turnedDown: ProviderBatch, dueAtMs: number): ProviderBatch {
  return {
    ...notRun(turnedDown),
    status: 'validating',
    nextSubmitAtMs: dueAtMs,
  }
}

/** A part that was waiting for the provider's queue when its batch was cancelled (at `at`, unix seconds). */
export function cancelledWhileWaiting(turnedDown: ProviderBatch, at: number): ProviderBatch {
  return { ...notRun(turnedDown), status: 'cancelled', cancellingAt: at, cancelledAt: at }
}

function notRun(batch: ProviderBatch): ProviderBatch {
  return {
    ...batch,
    failedAt: null,
    errors: null,
    requestCounts: { total: 0, completed: 0, failed: 0 },
    usage: null,
    outputFileId: null,
    errorFileId: null,
    nextSubmitAtMs: null,
  }
}
