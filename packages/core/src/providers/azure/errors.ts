import type { ApiError } from '../../errors.js'
import type { WireResponse } from '../openai/wire.js'
import { upstreamError } from '../upstream-errors.js'

/** How much of an error body is read; Azure's are a few hundred bytes. */
const MAX_ERROR_BODY_CHARS = 64 * 1024

/**
 * Azure's "the input file is still being processed" refusal of a batch create: "The input file
 * 'file-…' is in 'pending' state. Only files with status 'Processed' are accepted for batch
 * inferencing." Matched, never echoed.
 */
const FILE_NOT_PROCESSED = /\b(?:pending|uploaded|running)\b[\s\S]*\bprocessed\b/i

/**
 * Turns an Azure OpenAI error response into a client-facing error through the shared mapping of
 * {@link upstreamError}, after two Azure-specific corrections:
 *
 * - Azure's bodies are `{"error":{"code","message","param"?,"type"?,"inner_error"?}}` with codes
 *   in camelCase (`invalidPayload`, `unexpectedEntityState`, `tooManyRequests`), PascalCase
 *   (`BadRequest`), snake_case (`model_not_found`) or the status repeated (`"401"`). The code is
 *   reduced to a snake_case token (`invalid_payload`) so the shared mapping may surface it; a
 *   numeric code says nothing the status does not, and is dropped. Nothing else of the body leaves.
 * - A refusal because of an entity's state (`unexpectedEntityState`, which Azure may send as a 400)
 *   is a 409, and a batch create refused because its input file is not processed yet is a
 *   transient 503 rather than a 502.
 */
export async function azureUpstreamError(response: WireResponse): Promise<ApiError> {
  const { code, message } = await readAzureError(response.body)
  let status = response.statusCode
  let headers = response.headers
  if ((status === 400 || status === 409) && message !== null && FILE_NOT_PROCESSED.test(message)) {
    status = 503
    headers = { 'retry-after': '5', ...headers }
  } else if (status === 400 && code === 'unexpected_entity_state') {
    status = 409
  }
  return upstreamError('azure', { statusCode: status, headers, body: errorBody(code) })
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

async function readAzureError(body: WireResponse['body']): Promise<{ code: string | null; message: string | null }> {
  const decoder = new TextDecoder()
  let text = ''
  try {
    for await (const chunk of body) {
      text += decoder.decode(chunk as Buffer, { stream: true })
      if (text.length > MAX_ERROR_BODY_CHARS) break
    }
  } catch {
    // A body cut short is read for what arrived.
  }
  body.destroy()
  let error: Record<string, unknown>
  try {
    const parsed = JSON.parse(text.slice(0, MAX_ERROR_BODY_CHARS)) as { error?: unknown }
    if (typeof parsed.error !== 'object' || parsed.error === null) return { code: null, message: null }
    error = parsed.error as Record<string, unknown>
  } catch {
    return { code: null, message: null }
  }
  const inner = (error.inner_error ?? error.innererror) as { code?: unknown } | undefined
  const code = azureCodeToken(error.code) ?? azureCodeToken(inner?.code)
  return { code, message: typeof error.message === 'string' ? error.message : null }
}

/** The one part of a body the shared mapping reads: `{"error":{"code"}}`, with nothing of Azure's text. */
function errorBody(code: string | null): WireResponse['body'] {
  const text = JSON.stringify({ error: { code } })
  // upstreamError only calls `text()`; a full undici body is not needed to hand it a token.
  return { text: async () => text } as unknown as WireResponse['body']
}
