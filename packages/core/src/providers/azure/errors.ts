import { ApiError } from '../../errors.js'
import { readErrorJson } from '../bounded-body.js'
import type { WireResponse } from '../openai/wire.js'
import { upstreamErrorOf } from '../upstream-errors.js'

/**
 * Azure's "the input file is still being processed" refusal of a batch create: "The input file
 * 'file-…' is in 'pending' state. Only files with status 'Processed' are accepted for batch
 * inferencing." Matched, never echoed.
 */
const FILE_NOT_PROCESSED = /\b(?:pending|uploaded|running)\b[\s\S]*\bprocessed\b/i

/** The parameters of an expiry Azure may refuse. */
const EXPIRY_PARAM = /^(?:output_)?expires_after(?:\.(?:seconds|anchor))?$/

const NO_RETRY = { 'x-should-retry': 'false' }

/**
 * Turns an Azure OpenAI error response into a client-facing error through the shared mapping of
 * {@link upstreamErrorOf}, after Azure-specific corrections (at most 64 KiB of the body is read):
 *
 * - Azure's bodies are `{"error":{"code","message","param"?,"type"?,"inner_error"?}}` with codes
 *   in camelCase (`invalidPayload`, `unexpectedEntityState`, `tooManyRequests`), PascalCase
 *   (`BadRequest`), snake_case (`model_not_found`) or the status repeated (`"401"`). The code is
 *   reduced to a snake_case token (`invalid_payload`) so the shared mapping may surface it; a
 *   numeric code says nothing the status does not, and is dropped. Nothing else of the body leaves.
 * - `quotaExceeded` (a resource at its file limit: 500 files without an expiry) is a 429
 *   `upstream_quota_exceeded` that retrying soon will not mend, not a bare 502.
 * - A refused `expires_after` or `output_expires_after` is the client's to change: a 400
 *   `invalid_value` naming the parameter.
 * - A refusal because of an entity's state (`unexpectedEntityState`, which Azure may send as a 400)
 *   is a 409, and a batch create refused because its input file is not processed yet is a
 *   transient 503 rather than a 502.
 */
export async function azureUpstreamError(response: WireResponse): Promise<ApiError> {
  const { code, message, param } = await readAzureError(response.body)
  let status = response.statusCode
  let headers = response.headers
  if (code === 'quota_exceeded' && (status === 400 || status === 403 || status === 429)) return quotaExceeded()
  if (status === 400 && param !== null && EXPIRY_PARAM.test(param)) return expiryRefused(param)
  if ((status === 400 || status === 409) && message !== null && FILE_NOT_PROCESSED.test(message)) {
    status = 503
    headers = { 'retry-after': '5', ...headers }
  } else if (status === 400 && code === 'unexpected_entity_state') {
    status = 409
  }
  return upstreamErrorOf('azure', { statusCode: status, headers, code })
}

/** A well-formed error code token from an Azure code: `invalidPayload` → `invalid_payload`; null for others. */
export function azureCodeToken(code: unknown): string | null {
  if (typeof code !== 'string' || /^\d+$/.test(code)) return null
  const token = code
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/[-\s.]+/g, '_')
    .toLowerCase()
  return /^[a-z0-9_]{1,64}$/.test(token) ? token : null
}

function quotaExceeded(): ApiError {
  return new ApiError(
    429,
    'The azure provider refused: its Azure OpenAI resource is over quota (Azure keeps at most 500 files ' +
      'without an expiry per resource, 10,000 in all). Delete files or let them expire, then try again.',
    { type: 'insufficient_quota', code: 'upstream_quota_exceeded', headers: NO_RETRY },
  )
}

function expiryRefused(param: string): ApiError {
  return new ApiError(
    400,
    `The azure provider refused the expiry in '${param}'. Azure OpenAI documents 1209600 to 2592000 seconds (14 to 30 days) for batch files.`,
    { param, code: 'invalid_value', headers: NO_RETRY },
  )
}

async function readAzureError(
  body: WireResponse['body'],
): Promise<{ code: string | null; message: string | null; param: string | null }> {
  const parsed = (await readErrorJson(body)) as { error?: unknown } | null | undefined
  if (typeof parsed?.error !== 'object' || parsed.error === null) return { code: null, message: null, param: null }
  const error = parsed.error as Record<string, unknown>
  const inner = (error.inner_error ?? error.innererror) as { code?: unknown } | undefined
  const code = azureCodeToken(error.code) ?? azureCodeToken(inner?.code)
  return {
    code,
    message: typeof error.message === 'string' ? error.message : null,
    param: typeof error.param === 'string' ? error.param : null,
  }
}
