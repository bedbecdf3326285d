import type { ServerResponse } from 'node:http'
import { ApiError } from '../fake-openai/errors.js'
import { sendJson } from '../fake-openai/http.js'
import type { AzureErrorBody } from './types.js'

/** An error answered with Azure OpenAI's error body. */
export class AzureError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: { param?: string | null; type?: string; innerCode?: string; headers?: Record<string, string> } = {},
  ) {
    super(message)
    this.name = 'AzureError'
  }

  toBody(): AzureErrorBody {
    const error: AzureErrorBody['error'] = { code: this.code, message: this.message }
    if (this.extra.param !== undefined) error.param = this.extra.param
    if (this.extra.type !== undefined) error.type = this.extra.type
    if (this.extra.innerCode !== undefined) error.inner_error = { code: this.extra.innerCode }
    return { error }
  }
}

/** Sends an error with Azure's body, unless the client is already gone. */
export function sendAzureError(res: ServerResponse, error: AzureError): void {
  if (res.headersSent || res.destroyed) return
  for (const [name, value] of Object.entries(error.extra.headers ?? {})) res.setHeader(name, value)
  sendJson(res, error.status, error.toBody())
}

/**
 * Any failure as Azure answers it. The fake OpenAI's request checks (shared by this fake) throw
 * OpenAI-shaped errors; Azure's authoring API words the same failures with its own codes
 * (`invalidPayload`, `notFound`, `conflict`, `internalFailure`), keeping message and param.
 */
export function toAzureError(error: unknown): AzureError {
  if (error instanceof AzureError) return error
  if (error instanceof ApiError) {
    const code =
      error.status === 404
        ? 'notFound'
        : error.status === 409
          ? 'conflict'
          : error.status >= 500
            ? 'internalFailure'
            : 'invalidPayload'
    return new AzureError(error.status, code, error.message, error.param === null ? {} : { param: error.param })
  }
  return new AzureError(500, 'internalFailure', `The fake Azure OpenAI server failed: ${(error as Error).message}`)
}

const ACCESS_DENIED =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an ' +
  'active subscription and use a correct regional API endpoint for your resource.'

/** 401 for a missing or wrong `api-key` (Azure's data-plane wording, with the status as the code). */
export const invalidKey = (): AzureError => new AzureError(401, '401', ACCESS_DENIED)

/** 401 for a bearer token Azure does not accept. */
export const invalidToken = (): AzureError =>
  new AzureError(
    401,
    '401',
    'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
  )

/** 404 for a path the resource does not serve. */
export const resourceNotFound = (): AzureError => new AzureError(404, '404', 'Resource not found')

export const missingApiVersion = (): AzureError =>
  new AzureError(400, 'BadRequest', "Missing required query parameter 'api-version'.")

export const unsupportedApiVersion = (): AzureError => new AzureError(400, 'BadRequest', 'API version not supported')

/** The body `failNext` answers for a status, unless it names its own `code` or `message`. */
export function azureErrorForStatus(status: number, code?: string, message?: string): AzureError {
  const base = defaultFor(status)
  return new AzureError(status, code ?? base.code, message ?? base.message, base.extra)
}

function defaultFor(status: number): AzureError {
  switch (status) {
    case 400:
      return new AzureError(400, 'invalidPayload', 'The request is invalid (injected by the fake).')
    case 401:
      return invalidKey()
    case 403:
      return new AzureError(
        403,
        'PermissionDenied',
        'The principal lacks the required data action to perform this operation (injected by the fake).',
      )
    case 404:
      return resourceNotFound()
    case 408:
      return new AzureError(408, 'Timeout', 'The operation was timeout.')
    case 409:
      return new AzureError(409, 'conflict', 'The operation conflicts with the current state (injected by the fake).')
    case 429:
      return new AzureError(
        429,
        '429',
        'Requests to the Batch API have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.',
        { headers: { 'retry-after': '1' } },
      )
    case 500:
      return new AzureError(500, 'internalFailure', 'Internal error. Please retry.')
    case 502:
      return new AzureError(502, 'BadGateway', 'Bad gateway.')
    case 503:
      return new AzureError(503, 'serviceUnavailable', 'The service is currently not available.', {
        headers: { 'retry-after': '2' },
      })
    case 504:
      return new AzureError(504, 'GatewayTimeout', 'The gateway did not receive a response in time.')
    default:
      return status >= 500
        ? new AzureError(status, 'internalFailure', 'Internal error. Please retry.')
        : new AzureError(status, String(status), `Request failed with status ${status} (injected by the fake).`)
  }
}
