import type { ServerResponse } from 'node:http'

/** Which API answers: their error bodies differ slightly. */
export type GcpService = 'gcs' | 'vertex'

/** `google.rpc.Code` names by HTTP status, as Google's APIs pair them. */
const STATUS_BY_HTTP: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
}

/** GCS `errors[].reason` by HTTP status. */
const REASON_BY_HTTP: Readonly<Record<number, string>> = {
  400: 'invalid',
  401: 'required',
  403: 'forbidden',
  404: 'notFound',
  409: 'conflict',
  412: 'conditionNotMet',
  429: 'rateLimitExceeded',
  500: 'backendError',
  503: 'backendError',
}

/**
 * An error in Google's JSON envelope. Vertex: `{"error":{"code","message","status"}}`; GCS:
 * `{"error":{"code","message","errors":[{"message","domain":"global","reason"}]}}`.
 */
export class GoogleError extends Error {
  readonly rpcStatus: string
  readonly reason: string

  constructor(
    readonly status: number,
    message: string,
    options: { rpcStatus?: string; reason?: string } = {},
  ) {
    super(message)
    this.name = 'GoogleError'
    this.rpcStatus = options.rpcStatus ?? STATUS_BY_HTTP[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT')
    this.reason = options.reason ?? REASON_BY_HTTP[status] ?? (status >= 500 ? 'backendError' : 'invalid')
  }

  toBody(service: GcpService): unknown {
    if (service === 'gcs') {
      return {
        error: {
          code: this.status,
          message: this.message,
          errors: [{ message: this.message, domain: 'global', reason: this.reason }],
        },
      }
    }
    return { error: { code: this.status, message: this.message, status: this.rpcStatus } }
  }
}

export const invalidArgument = (message: string): GoogleError => new GoogleError(400, message)

export const missingCredentials = (): GoogleError =>
  new GoogleError(
    401,
    'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    { reason: 'required' },
  )

export const invalidCredentials = (): GoogleError =>
  new GoogleError(
    401,
    'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    { reason: 'authError' },
  )

export const noSuchObject = (bucket: string, name: string): GoogleError =>
  new GoogleError(404, `No such object: ${bucket}/${name}`)

export const noSuchBucket = (): GoogleError => new GoogleError(404, 'The specified bucket does not exist.')

export const noRoute = (method: string, path: string): GoogleError =>
  new GoogleError(404, `The requested URL ${path} was not found on this server (${method}).`)

/** The body a `failNext` status answers with. */
export function errorForStatus(status: number): GoogleError {
  switch (status) {
    case 429:
      return new GoogleError(429, 'Quota exceeded (injected by the fake).')
    case 500:
      return new GoogleError(500, 'Internal error encountered.')
    case 503:
      return new GoogleError(503, 'The service is currently unavailable.')
    default:
      return new GoogleError(status, `Request failed with status ${status} (injected by the fake).`)
  }
}

/** Sends a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  })
  res.end(payload)
}

/** Sends a {@link GoogleError}, unless the client is already gone. */
export function sendError(res: ServerResponse, service: GcpService, error: GoogleError): void {
  if (res.headersSent || res.destroyed) return
  sendJson(res, error.status, error.toBody(service))
}
