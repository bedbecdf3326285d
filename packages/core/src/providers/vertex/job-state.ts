import type { BatchErrorEntry, BatchStatus, RequestCounts } from '../../types.js'
import type { RpcStatus, VertexBatchJob, VertexCompletionStats, VertexJobState } from './types.js'

/**
 * Every Vertex `JobState` and the OpenAI batch status it reads as:
 *
 * | Vertex | OpenAI | why |
 * |---|---|---|
 * | `JOB_STATE_UNSPECIFIED` | `validating` | not started as far as anyone can tell; polling goes on |
 * | `JOB_STATE_QUEUED` | `validating` | "just created or resumed, processing not begun" |
 * | `JOB_STATE_PENDING` | `validating` | "the service is preparing to run the job" |
 * | `JOB_STATE_RUNNING` | `in_progress` | |
 * | `JOB_STATE_PAUSED` | `in_progress` | started, resumable; OpenAI has no paused status |
 * | `JOB_STATE_UPDATING` | `in_progress` | being updated while it runs |
 * | `JOB_STATE_SUCCEEDED` | `completed` | failed rows, if any, go to the error file |
 * | `JOB_STATE_PARTIALLY_SUCCEEDED` | `completed` | "some results may be missing due to errors": the rows that failed are in the error file, `partialFailures` in `errors` |
 * | `JOB_STATE_FAILED` | `failed` | `errors` from the job's `error` |
 * | `JOB_STATE_CANCELLING` | `cancelling` | may still end `SUCCEEDED` or `FAILED` |
 * | `JOB_STATE_CANCELLED` | `cancelled` | rows finished before the cancel are still in the output |
 * | `JOB_STATE_EXPIRED` | `expired` | queued for 72 h, or cut off after 24 h of running; finished rows are kept |
 *
 * Vertex has no `finalizing`: output is converted when it is downloaded, so a job goes straight to `completed`.
 */
export const VERTEX_STATE_TO_STATUS: Readonly<Record<VertexJobState, BatchStatus>> = {
  JOB_STATE_UNSPECIFIED: 'validating',
  JOB_STATE_QUEUED: 'validating',
  JOB_STATE_PENDING: 'validating',
  JOB_STATE_RUNNING: 'in_progress',
  JOB_STATE_PAUSED: 'in_progress',
  JOB_STATE_UPDATING: 'in_progress',
  JOB_STATE_SUCCEEDED: 'completed',
  JOB_STATE_PARTIALLY_SUCCEEDED: 'completed',
  JOB_STATE_FAILED: 'failed',
  JOB_STATE_CANCELLING: 'cancelling',
  JOB_STATE_CANCELLED: 'cancelled',
  JOB_STATE_EXPIRED: 'expired',
}

/**
 * The OpenAI status of a Vertex job state. A state this table does not know (a value added to the enum
 * after this was written) reads as `in_progress`: not terminal, so the batch keeps being polled until it
 * reaches a state that is.
 */
export function batchStatusOf(state: unknown): BatchStatus {
  return typeof state === 'string' && Object.hasOwn(VERTEX_STATE_TO_STATUS, state)
    ? VERTEX_STATE_TO_STATUS[state as VertexJobState]
    : 'in_progress'
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/

/**
 * An RFC 3339 timestamp (any number of fraction digits, as Vertex writes micro- and nanoseconds, `Z` or an
 * offset) as whole unix seconds, rounded down. Null for anything else, including an absent value.
 */
export function rfc3339ToSeconds(value: unknown): number | null {
  if (typeof value !== 'string') return null
  const match = RFC3339.exec(value)
  if (!match) return null
  const [, year, month, day, hour, minute, second, , zone] = match
  const ms = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second))
  if (Number.isNaN(ms)) return null
  let offsetSeconds = 0
  if (zone && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1
    offsetSeconds = sign * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60)
  }
  return Math.floor(ms / 1000) - offsetSeconds
}

/** A job's timestamps in OpenAI's Batch fields, as unix seconds (null when unknown or not reached). */
export interface VertexJobTimestamps {
  createdAt: number | null
  inProgressAt: number | null
  finalizingAt: null
  completedAt: number | null
  failedAt: number | null
  cancellingAt: number | null
  cancelledAt: number | null
  expiredAt: number | null
}

/**
 * A job's timestamps: `createTime` → `createdAt`; `startTime` ("first entered RUNNING") → `inProgressAt`;
 * `endTime` → the field of the terminal state reached (`completedAt` for SUCCEEDED and PARTIALLY_SUCCEEDED,
 * `failedAt`, `cancelledAt`, `expiredAt`), falling back to `updateTime` when Vertex omits `endTime`;
 * `cancellingAt` is the `updateTime` of a CANCELLING job (the moment it was last changed: the cancel).
 */
export function jobTimestamps(
  job: Pick<VertexBatchJob, 'state' | 'createTime' | 'startTime' | 'endTime' | 'updateTime'>,
): VertexJobTimestamps {
  const end = rfc3339ToSeconds(job.endTime) ?? rfc3339ToSeconds(job.updateTime)
  const status = batchStatusOf(job.state)
  return {
    createdAt: rfc3339ToSeconds(job.createTime),
    inProgressAt: rfc3339ToSeconds(job.startTime),
    finalizingAt: null,
    completedAt: status === 'completed' ? end : null,
    failedAt: status === 'failed' ? end : null,
    cancellingAt: status === 'cancelling' ? rfc3339ToSeconds(job.updateTime) : null,
    cancelledAt: status === 'cancelled' ? end : null,
    expiredAt: status === 'expired' ? end : null,
  }
}

/**
 * `completionStats` as OpenAI's `request_counts`. The counters are int64, so proto3 JSON sends them as strings
 * and omits the zero ones; `incompleteCount` is `-1` when unknown and then adds nothing to the total.
 * `completed` = successful, `failed` = failed, `total` = successful + failed + incomplete.
 */
export function requestCountsOf(stats: VertexCompletionStats | undefined | null): RequestCounts {
  const completed = int64(stats?.successfulCount)
  const failed = int64(stats?.failedCount)
  const incomplete = Math.max(int64(stats?.incompleteCount), 0)
  return { total: completed + failed + incomplete, completed, failed }
}

/** The name of a `google.rpc.Code`, by number. */
export const RPC_CODE_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]

/**
 * OpenAI's `errors.data` for a job: its `error` (set for FAILED jobs) and each of its `partialFailures`, with
 * `code` the lower-cased `google.rpc.Code` name (`invalid_argument`, `internal`, …). A cancelled (or
 * cancelling) job's `error` only says it was cancelled (`CANCELLED`): OpenAI leaves `errors` null then, and so
 * does this. Null when there is nothing to report.
 */
export function jobErrorsOf(
  job: Pick<VertexBatchJob, 'error' | 'partialFailures' | 'state'>,
): BatchErrorEntry[] | null {
  const status = batchStatusOf(job.state)
  const cancelled = status === 'cancelled' || status === 'cancelling'
  const statuses = [cancelled ? undefined : job.error, ...(job.partialFailures ?? [])].filter(
    (entry): entry is RpcStatus =>
      typeof entry === 'object' && entry !== null && (entry.code !== undefined || !!entry.message),
  )
  if (statuses.length === 0) return null
  return statuses.map((entry) => ({
    code: rpcCodeName(entry.code)?.toLowerCase() ?? 'vertex_error',
    message: entry.message || 'The Vertex AI batch prediction job reported an error.',
    param: null,
    line: null,
  }))
}

/** The `google.rpc.Code` name of a number, or undefined. */
export function rpcCodeName(code: unknown): string | undefined {
  return typeof code === 'number' && Number.isInteger(code) ? RPC_CODE_NAMES[code] : undefined
}

function int64(value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value
  if (typeof value === 'string' && /^-?\d+$/.test(value)) {
    const parsed = Number(value)
    if (Number.isSafeInteger(parsed)) return parsed
  }
  return 0
}
