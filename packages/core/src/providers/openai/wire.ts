import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { Agent, type Dispatcher, request } from 'undici'
import { ApiError } from '../../errors.js'
import { taggedFilename } from '../tag-search.js'
import type { ProviderDownload, ProviderUpload } from '../types.js'
import { connectionError, upstreamError } from '../upstream-errors.js'

/** An upstream response, with its body still to be read. */
export type WireResponse = Dispatcher.ResponseData

/** How a {@link WireClient} reaches one service that speaks OpenAI's Files and Batches wire format. */
export interface WireClientOptions {
  /** The provider's kind, named in error messages: `The <provider> provider …`. */
  provider: string
  /** The absolute URL of an API path such as `/files/abc`. */
  url(path: string): string
  /** The credential headers of one request; asked before every request, so a token may rotate. */
  headers(): Record<string, string> | Promise<Record<string, string>>
  /** Turns an error response into a client-facing error. @default {@link upstreamError} */
  toError?(response: WireResponse): Promise<ApiError>
  /** How long a control call may wait for an answer. @default 60000 */
  timeoutMs?: number | undefined
  /** How long an upload or download may sit without moving a byte. @default 300000 */
  idleTimeoutMs?: number | undefined
  /** @default a keep-alive Agent of its own, closed by {@link WireClient.close} */
  dispatcher?: Dispatcher | undefined
}

/** Options of one request. */
export interface SendOptions {
  body?: Dispatcher.RequestOptions['body']
  /** Query parameters, added to those the configured URL may carry (such as Azure's `api-version`). */
  query?: Record<string, string>
  headers?: Record<string, string>
  signal?: AbortSignal | undefined
  headersTimeout: number
  bodyTimeout: number
}

/** A multipart form field that follows the file part: `[name, value]`. */
export type FormField = readonly [name: string, value: string]

/**
 * The HTTP side of a provider that speaks OpenAI's wire format (OpenAI itself, Azure OpenAI):
 * requests over undici, timeouts, the credential headers, streamed multipart uploads and
 * downloads, and error responses turned into {@link ApiError}s without upstream bodies.
 */
export class WireClient {
  readonly provider: string
  readonly timeoutMs: number
  readonly idleTimeoutMs: number
  private readonly options: WireClientOptions
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean

  constructor(options: WireClientOptions) {
    this.options = options
    this.provider = options.provider
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000 })
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000
  }

  /** A control call with an optional JSON body; resolves to the parsed JSON answer. */
  async json(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<unknown> {
    const response = await this.send(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    return this.readJson(response)
  }

  /** `GET path` with query parameters (a list); resolves to the parsed JSON answer. */
  async list(path: string, query: Record<string, string>): Promise<unknown> {
    const response = await this.send('GET', path, {
      query,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    return this.readJson(response)
  }

  /**
   * `POST path` with the upload as `multipart/form-data`, named by its tag (see {@link taggedFilename}):
   * the file part first, streamed with backpressure, then `fields` once they are known (they may wait
   * for the end of the file). The boundary is set here, after the credential headers, so no credential scheme can lose it.
   * Resolves to the raw response, with its body unread.
   */
  async upload(
    path: string,
    upload: ProviderUpload,
    fields: () => Promise<readonly FormField[]>,
    signal: AbortSignal = upload.signal,
  ): Promise<WireResponse> {
    const boundary = `batchkit-${randomBytes(16).toString('hex')}`
    return this.send('POST', path, {
      body: Readable.from(multipartBody(boundary, upload, fields), { objectMode: false }),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      signal,
      headersTimeout: this.idleTimeoutMs,
      bodyTimeout: this.idleTimeoutMs,
    })
  }

  /** `GET path` streamed: the body is handed over unread. */
  async download(path: string, signal?: AbortSignal): Promise<ProviderDownload> {
    const response = await this.send('GET', path, {
      signal,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.idleTimeoutMs,
    })
    const length = Number(response.headers['content-length'])
    return { body: response.body, bytes: Number.isSafeInteger(length) ? length : null }
  }

  /** One request; an error status becomes the provider's {@link ApiError}, a lost connection a 502 or 504. */
  async send(method: Dispatcher.HttpMethod, path: string, options: SendOptions): Promise<WireResponse> {
    const credentials = await this.options.headers()
    let response: WireResponse
    try {
      response = await request(withQuery(this.options.url(path), options.query), {
        method,
        dispatcher: this.dispatcher,
        headers: { ...credentials, accept: 'application/json', ...options.headers },
        body: options.body,
        signal: options.signal,
        headersTimeout: options.headersTimeout,
        bodyTimeout: options.bodyTimeout,
      })
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      throw connectionError(this.provider, error)
    }
    if (response.statusCode >= 400) {
      throw await (this.options.toError ? this.options.toError(response) : upstreamError(this.provider, response))
    }
    return response
  }

  /** The response body as JSON; anything else is a 502. */
  async readJson(response: WireResponse): Promise<unknown> {
    try {
      return await response.body.json()
    } catch {
      throw new ApiError(502, `The ${this.provider} provider answered with a body that is not JSON.`, {
        code: 'upstream_error',
      })
    }
  }

  /** Closes the dispatcher if this client created it. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }
}

function withQuery(url: string, query: Record<string, string> | undefined): string {
  if (!query) return url
  const withParams = new URL(url)
  for (const [name, value] of Object.entries(query)) withParams.searchParams.set(name, value)
  return withParams.toString()
}

/**
 * The upload as multipart/form-data: the file first, streamed, then the fields once they are known. The
 * file part is named by the upload's tag, not the client's filename, so that a file list can find it.
 */
async function* multipartBody(
  boundary: string,
  upload: ProviderUpload,
  fields: () => Promise<readonly FormField[]>,
): AsyncGenerator<Buffer> {
  const filename = taggedFilename(upload.tag).replace(/[\r\n"]/g, '_')
  yield Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  )
  for await (const chunk of upload.body) yield chunk as Buffer
  let tail = '\r\n'
  for (const [name, value] of await fields()) {
    tail += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  }
  yield Buffer.from(`${tail}--${boundary}--\r\n`)
}
