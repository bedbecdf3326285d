import { type BatchErrorEntry, type BatchStatus, type BatchUsage, TERMINAL_STATUSES } from '../../types.js'
import type { ProviderBatch, ProviderFile } from '../types.js'
import { type BatchPart, joinFilteredParts, joinPartIds } from './part-ids.js'

/**
 * One batch made of the batches run on the parts of its input file, as a client sees a batch:
 * - it has ended once every part has; then it is `cancelled` if a part was, else `expired` if a part
 *   expired, else `completed` if a part completed (the failed parts' requests are in the error file and
 *   their reasons in `errors`), else `failed`;
 * - until then it is `cancelling` while a part is (or already is cancelled), `validating` while every
 *   part is, `finalizing` once every part is finalizing or has ended, else `in_progress`;
 * - request counts and usage are the parts' sums, `errors` all the parts' errors, with line numbers
 *   counted through the whole input (each part's total gives its lines);
 * - its output and error files, once it has ended, are the parts' files joined in order.
 * Each part's id in a provider message becomes the whole batch's id, for the core to replace in turn.
 * `id` is the whole batch's id: by default the parts' ids joined.
 *
 * `retries` says, for each part, whether it belongs to a follow-up round that ran failed requests of
 * the round before again (see `request-retries.ts`). Those requests count once, as the client sent
 * them: `total` is the first round's, a request counts as failed only while no later round has taken
 * it, and the error file leaves out the lines of requests a later round ran again.
 */
export function combineBatches(
  parts: readonly ProviderBatch[],
  id: string = joinPartIds(parts.map((p) => p.id)),
  retries: readonly BatchPart['retry'][] = [],
): ProviderBatch {
  const roundOf = (index: number) => retries[index]?.round ?? 0
  const first = parts.filter((_, index) => roundOf(index) === 0)
  const later = parts.filter((_, index) => roundOf(index) > 0)
  const total = sum(first.map((p) => p.requestCounts.total))
  const completed = sum(parts.map((p) => p.requestCounts.completed))
  // A request a later round took is no longer failed; what it ends as, that round counts.
  const failed = Math.max(
    0,
    Math.min(
      total - completed,
      sum(first.map((p) => p.requestCounts.failed)) +
        sum(later.map((p) => p.requestCounts.failed - p.requestCounts.total)),
    ),
  )
  const status = statusOf(parts.map((p) => p.status))
  const ended = TERMINAL_STATUSES.has(status)
  const endedAt = (at: (p: ProviderBatch) => number | null, when: BatchStatus) =>
    status === when ? latest(parts.map(at)) : null
  return {
    id,
    status,
    inProgressAt: earliest(parts.map((p) => p.inProgressAt)),
    expiresAt: latest(parts.map((p) => p.expiresAt)),
    finalizingAt: status === 'finalizing' || ended ? latest(parts.map((p) => p.finalizingAt)) : null,
    completedAt: endedAt((p) => p.completedAt, 'completed'),
    failedAt: endedAt((p) => p.failedAt, 'failed'),
    expiredAt: endedAt((p) => p.expiredAt, 'expired'),
    cancellingAt: status === 'cancelling' || status === 'cancelled' ? earliest(parts.map((p) => p.cancellingAt)) : null,
    cancelledAt: endedAt((p) => p.cancelledAt, 'cancelled'),
    requestCounts: { total, completed, failed },
    errors: errorsOf(first, id, later),
    usage: usageOf(parts),
    outputFileId: ended ? joinedOrNull(parts.map((p) => p.outputFileId)) : null,
    // When later rounds ran every failure again, nothing is left to show (and OpenAI shows no file).
    errorFileId: ended && (later.length === 0 || failed > 0) ? errorFileOf(parts, retries) : null,
    nextSubmitAtMs: earliest(parts.map((p) => p.nextSubmitAtMs ?? null)),
  }
}

/** One file made of the provider's parts of it, in order. */
export function combineFiles(parts: readonly ProviderFile[]): ProviderFile {
  const [first] = parts as [ProviderFile]
  const expiries = parts.map((p) => p.expiresAt).filter((at): at is number => at !== null)
  return {
    id: joinPartIds(parts.map((p) => p.id)),
    bytes: sum(parts.map((p) => p.bytes)),
    createdAt: first.createdAt,
    // The whole is gone once any part of it is.
    expiresAt: expiries.length > 0 ? Math.min(...expiries) : null,
    filename: first.filename,
  }
}

function statusOf(statuses: BatchStatus[]): BatchStatus {
  if (statuses.every((s) => TERMINAL_STATUSES.has(s))) {
    if (statuses.includes('cancelled')) return 'cancelled'
    if (statuses.includes('expired')) return 'expired'
    if (statuses.includes('completed')) return 'completed'
    return 'failed'
  }
  if (statuses.includes('cancelling') || statuses.includes('cancelled')) return 'cancelling'
  if (statuses.every((s) => s === 'validating')) return 'validating'
  if (statuses.every((s) => s === 'finalizing' || TERMINAL_STATUSES.has(s))) return 'finalizing'
  return 'in_progress'
}

/** The parts' errors; a follow-up round's lines are of no file the client knows, so they go unnumbered. */
function errorsOf(
  parts: readonly ProviderBatch[],
  id: string,
  later: readonly ProviderBatch[],
): BatchErrorEntry[] | null {
  const errors: BatchErrorEntry[] = []
  const add = (part: ProviderBatch, line: (line: number) => number | null) => {
    for (const error of part.errors ?? []) {
      errors.push({
        ...error,
        message: error.message === null ? null : error.message.replaceAll(part.id, id),
        line: error.line === null ? null : line(error.line),
      })
    }
  }
  let linesBefore = 0
  for (const part of parts) {
    const before = linesBefore
    add(part, (line) => line + before)
    linesBefore += part.requestCounts.total
  }
  for (const part of later) add(part, () => null)
  return errors.length > 0 ? errors : null
}

/** The parts' error files in order, each without the requests that the next round ran again. */
function errorFileOf(parts: readonly ProviderBatch[], retries: readonly BatchPart['retry'][]): string | null {
  const filtered = parts.flatMap((part, index) => {
    if (part.errorFileId === null) return []
    const next = (retries[index]?.round ?? 0) + 1
    const skip = retries.filter((retry) => retry?.round === next).map((retry) => retry?.input as string)
    return [{ id: part.errorFileId, skip }]
  })
  return filtered.length > 0 ? joinFilteredParts(filtered) : null
}

function usageOf(parts: readonly ProviderBatch[]): BatchUsage | null {
  const reported = parts.map((p) => p.usage).filter((u): u is BatchUsage => u !== null)
  if (reported.length === 0) return null
  return {
    inputTokens: sum(reported.map((u) => u.inputTokens)),
    cachedTokens: sum(reported.map((u) => u.cachedTokens)),
    outputTokens: sum(reported.map((u) => u.outputTokens)),
    reasoningTokens: sum(reported.map((u) => u.reasoningTokens)),
    totalTokens: sum(reported.map((u) => u.totalTokens)),
  }
}

function joinedOrNull(ids: (string | null)[]): string | null {
  const present = ids.filter((id): id is string => id !== null)
  return present.length > 0 ? joinPartIds(present) : null
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

function earliest(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null)
  return present.length > 0 ? Math.min(...present) : null
}

function latest(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null)
  return present.length > 0 ? Math.max(...present) : null
}
