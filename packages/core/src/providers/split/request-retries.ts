import { parseJsonLine } from '../../util/lines.js'

/**
 * Automatic retries of the requests of a batch that failed for a transient reason (a rate limit, a
 * server error or timeout of the provider's, as its error file reports them): once every provider
 * batch of the batch has ended, the requests whose error line says so are run again as a follow-up
 * provider batch of the same batchkit batch, up to `attempts` times. Off by default. Requests that
 * failed for any other reason (a 400: the request itself is wrong) are never run again, nor are the
 * requests of a batch that was cancelled or expired.
 */
export interface RequestRetryOptions {
  /** How many follow-up rounds at most; 0 turns retries off. @default 0 */
  attempts?: number
}

/** HTTP statuses of a request's result that another run may not meet: timeouts, rate limits, server errors. */
function transientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** Error codes of a request that never got a response, for the same reasons. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'rate_limit_exceeded',
  'server_error',
  'internal_error',
  'service_unavailable',
  'timeout',
])

/** The `custom_id` of an error-file line that failed for a transient reason, else undefined. */
export function transientFailureOf(line: Buffer): string | undefined {
  const value = parseJsonLine(line) as {
    custom_id?: unknown
    response?: { status_code?: unknown } | null
    error?: { code?: unknown } | null
  }
  if (typeof value?.custom_id !== 'string') return undefined
  const status = value.response?.status_code
  if (typeof status === 'number') return transientStatus(status) ? value.custom_id : undefined
  const code = value.error?.code
  return typeof code === 'string' && TRANSIENT_CODES.has(code) ? value.custom_id : undefined
}
