import { Agent, type Dispatcher, request } from 'undici'
import { ApiError } from '../../errors.js'
import { readErrorJson } from '../bounded-body.js'
import { connectionError, upstreamErrorOf } from '../upstream-errors.js'
import type { TokenSource } from './auth.js'

/** The provider's name in client-facing messages: `The vertex provider …`. */
export const PROVIDER = 'vertex'

/** An upstream response, with its body still to be read. */
export type GoogleResponse = Dispatcher.ResponseData

/** For failures a retry cannot mend; OpenAI's SDK retries every 5xx unless told not to. */
export const NO_RETRY = { 'x-should-retry': 'false' } as const

/**
 * What an error answer said, for call-specific mappings: the HTTP status, the `google.rpc.Code` name
 * (`error.status`, e.g. `NOT_FOUND`) and Google's message. The message is only ever matched, never echoed.
 */
export interface GoogleErrorInfo {
  statusCode: number
  rpcStatus: string | null
  message: string
}

/** A call-specific error mapping; undefined falls back to the shared {@link upstreamErrorOf}. */
export type ErrorMapper = (error: GoogleErrorInfo) => ApiError | undefined

/** Options of one request. */
export interface SendOptions {
  body?: Dispatcher.RequestOptions['body']
  headers?: Record<string, string>
  signal?: AbortSignal | undefined
  /** Uploads and downloads: wait up to `idleTimeoutMs` for progress instead of `timeoutMs`. */
  streaming?: boolean
  /** Send the bearer token (not for resumable-upload session URIs, which are credentials themselves). @default true */
  auth?: boolean
  /** Statuses of 300 and more that are answers, not errors (GCS's 308 Resume Incomplete). */
  accept?: readonly number[]
  mapError?: ErrorMapper
}

/** How a {@link GoogleHttp} sends requests. */
export interface GoogleHttpOptions {
  token: TokenSource
  timeoutMs?: number | undefined
  idleTimeoutMs?: number | undefined
  dispatcher?: Dispatcher | undefined
}

/**
 * The HTTP side of the Vertex provider, shared by its GCS and Vertex AI calls: requests over undici with the
 * bearer token asked for before every request (so it may rotate), timeouts, and error answers turned into
 * {@link ApiError}s that carry neither tokens nor Google's bodies.
 */
export class GoogleHttp {
  readonly timeoutMs: number
  readonly idleTimeoutMs: number
  private readonly token: TokenSource
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean

  constructor(options: GoogleHttpOptions) {
    this.token = options.token
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000 })
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000
  }

  /**
   * One request. An error status becomes an {@link ApiError} (the call's own mapping first, then the shared
   * one); a request that got no answer a 502 or 504; an aborted one rejects with the signal's reason.
   */
  async send(method: Dispatcher.HttpMethod, url: string, options: SendOptions = {}): Promise<GoogleResponse> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
    if (options.auth !== false) headers.authorization = `Bearer ${await this.token()}`
    let response: GoogleResponse
    try {
      response = await request(url, {
        method,
        dispatcher: this.dispatcher,
        headers,
        body: options.body,
        signal: options.signal,
        headersTimeout: options.streaming ? this.idleTimeoutMs : this.timeoutMs,
        bodyTimeout: options.streaming ? this.idleTimeoutMs : this.timeoutMs,
      })
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      throw connectionError(PROVIDER, error)
    }
    if (response.statusCode >= 300 && !options.accept?.includes(response.statusCode)) {
      throw await this.toError(response, options.mapError)
    }
    return response
  }

  /** A control call with an optional JSON body; resolves to the parsed JSON answer. */
  async json(
    method: Dispatcher.HttpMethod,
    url: string,
    body?: unknown,
    options: Pick<SendOptions, 'mapError' | 'signal'> = {},
  ): Promise<unknown> {
    const response = await this.send(method, url, {
      ...options,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
    })
    return readJson(response)
  }

  /** Closes the dispatcher if this client created it. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  private async toError(response: GoogleResponse, mapError: ErrorMapper | undefined): Promise<ApiError> {
    const info = await readGoogleError(response)
    const mapped = mapError?.(info)
    if (mapped) return mapped
    // Google's `error.code` is a number, so the rpc status name stands in for a code token.
    return upstreamErrorOf(PROVIDER, {
      statusCode: response.statusCode,
      headers: response.headers,
      code: info.rpcStatus?.toLowerCase() ?? null,
    })
  }
}

/** The response body as JSON; anything else is a 502. */
export async function readJson(response: GoogleResponse): Promise<unknown> {
  try {
    return await response.body.json()
  } catch {
    throw new ApiError(502, `The ${PROVIDER} provider answered with a body that is not JSON.`, {
      code: 'upstream_error',
    })
  }
}

/** A JSON object, or the 502 for an answer batchkit does not recognise. */
export function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed()
  return value as Record<string, unknown>
}

/** The 502 for an answer that is JSON but not the object asked for. */
export function malformed(): ApiError {
  return new ApiError(502, `The ${PROVIDER} provider answered with an object batchkit does not recognise.`, {
    code: 'upstream_error',
  })
}

/** Google's `{"error":{"code","message","status"}}` (GCS leaves out `status`), read (64 KiB at most) but never passed on. */
async function readGoogleError(response: GoogleResponse): Promise<GoogleErrorInfo> {
  const body = (await readErrorJson(response.body)) as { error?: Record<string, unknown> } | null | undefined
  const error = typeof body?.error === 'object' && body.error !== null ? body.error : undefined
  return {
    statusCode: response.statusCode,
    rpcStatus: typeof error?.status === 'string' && /^[A-Z_]{1,64}$/.test(error.status) ? error.status : null,
    message: typeof error?.message === 'string' ? error.message : '',
  }
}
