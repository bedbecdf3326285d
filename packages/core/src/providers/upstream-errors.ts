import type { Dispatcher } from 'undici'
import { ApiError, isApiError } from '../errors.js'
import { readErrorJson } from './bounded-body.js'

/** For failures a retry cannot mend; OpenAI's SDK retries every 5xx and 409 unless told not to. */
const NO_RETRY = { 'x-should-retry': 'false' }

/** An error code token that may be passed on to clients. */
const ERROR_CODE = /^[a-z0-9_]{1,64}$/

/** What {@link upstreamErrorOf} needs of an upstream error answer. */
export interface UpstreamFailure {
  statusCode: number
  headers: Dispatcher.ResponseData['headers']
  /** A well-formed error code token (`[a-z0-9_]{1,64}`) the provider sent, or null. */
  code: string | null
}

/**
 * Turns an upstream error response into a client-facing {@link ApiError}. At most 64 KiB of the body
 * is read (see {@link readErrorJson}), only for its `error.code` token, and never echoed: it can name
 * provider ids or accounts.
 */
export async function upstreamError(
  provider: string,
  response: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers' | 'body'>,
): Promise<ApiError> {
  const body = (await readErrorJson(response.body)) as { error?: { code?: unknown } } | null | undefined
  const code = body?.error?.code
  return upstreamErrorOf(provider, {
    statusCode: response.statusCode,
    headers: response.headers,
    code: typeof code === 'string' && ERROR_CODE.test(code) ? code : null,
  })
}

/**
 * The client-facing {@link ApiError} of an upstream failure whose body has been read. Timeouts are 504,
 * rate limits and unavailability 503, everything else 502: the client's own objects exist, so a
 * provider that lost one is a gateway failure, not a "not found". Any other 4xx is
 * `upstream_rejected`: a refusal, so a create that meets it made nothing.
 */
export function upstreamErrorOf(provider: string, failure: UpstreamFailure): ApiError {
  const { statusCode: status, code } = failure
  if (status === 404) {
    return new ApiError(502, `The ${provider} provider no longer has this object.`, {
      code: 'upstream_not_found',
      headers: NO_RETRY,
    })
  }
  if (status === 408 || status === 504) return timeout(provider)
  if (status === 429) {
    return new ApiError(503, `The ${provider} provider is rate limiting batchkit; try again later.`, {
      code: 'upstream_rate_limited',
      headers: retryAfter(failure.headers),
    })
  }
  if (status === 503) {
    return new ApiError(503, `The ${provider} provider is unavailable; try again later.`, {
      code: 'upstream_unavailable',
      headers: retryAfter(failure.headers),
    })
  }
  if (status === 401 || status === 403) {
    return new ApiError(
      502,
      `The ${provider} provider rejected batchkit's credentials; check the provider configuration.`,
      { code: 'upstream_auth_failed', headers: NO_RETRY },
    )
  }
  if (status === 409) {
    return new ApiError(409, `The ${provider} provider refused the change in the object's current state.`, {
      code: code ?? 'upstream_conflict',
      headers: NO_RETRY,
    })
  }
  const detail = code ? ` (${code})` : ''
  if (status >= 400 && status < 500) {
    // The provider read the request and turned it down: it made nothing, and the same request fails again.
    return new ApiError(502, `The ${provider} provider refused the request: ${status}${detail}.`, {
      code: 'upstream_rejected',
      headers: NO_RETRY,
    })
  }
  return new ApiError(502, `The ${provider} provider answered ${status}${detail}.`, { code: 'upstream_error' })
}

/** A client-facing error for a request that never got an answer. */
export function connectionError(provider: string, error: unknown): ApiError {
  const code = (error as { code?: unknown } | null)?.code
  const name = (error as { name?: unknown } | null)?.name
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || name === 'TimeoutError') {
    return timeout(provider)
  }
  return new ApiError(502, `The ${provider} provider could not be reached.`, { code: 'upstream_unreachable' })
}

function timeout(provider: string): ApiError {
  return new ApiError(504, `The ${provider} provider did not answer in time.`, { code: 'upstream_timeout' })
}

function retryAfter(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const value = headers['retry-after']
  return typeof value === 'string' && /^\d{1,5}$/.test(value) ? { 'retry-after': value } : {}
}

/** Codes of upstream answers that refused a request outright: the provider made nothing. */
const REFUSALS: ReadonlySet<string> = new Set([
  'upstream_rate_limited',
  'upstream_unavailable',
  'upstream_auth_failed',
  'upstream_not_found',
  'upstream_rejected',
])

/**
 * Whether a provider error proves a create was refused (nothing made), rather than maybe lost on the
 * way: a client error, or an answer that refused outright. A timeout or a cut connection proves nothing.
 */
export function refusedUpstream(error: unknown): boolean {
  if (!isApiError(error)) return false
  return error.status < 500 || REFUSALS.has(error.code ?? '')
}
