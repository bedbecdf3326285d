import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { Agent, type Dispatcher, request } from 'undici'
import { ApiError } from '../../errors.js'
import type { BatchErrorEntry, BatchStatus, BatchUsage } from '../../types.js'
import type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderUpload,
} from '../types.js'
import { connectionError, upstreamError } from '../upstream-errors.js'

/** Options of the {@link openai} provider. */
export interface OpenAIProviderOptions {
  /** The API key batchkit uses upstream. Never shown to clients, events or logs. */
  apiKey: string
  /** The API's base URL, `/v1` included. @default 'https://api.openai.com/v1' */
  baseURL?: string
  /** Sent as `OpenAI-Organization` when set. */
  organization?: string
  /** Sent as `OpenAI-Project` when set. */
  project?: string
  /** How long a control call (everything but uploads and downloads) may wait for an answer. @default 60000 */
  timeoutMs?: number
  /** How long an upload or download may sit without moving a byte. @default 300000 */
  idleTimeoutMs?: number
  /** The undici dispatcher to send requests through. @default a keep-alive Agent of its own */
  dispatcher?: Dispatcher
}

const STATUSES: ReadonlySet<string> = new Set<BatchStatus>([
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
])

/** A provider for OpenAI's own Files and Batch API, or any service that speaks it. */
export function openai(options: OpenAIProviderOptions): Provider {
  return new OpenAIProvider(options)
}

class OpenAIProvider implements Provider {
  readonly kind = 'openai'
  private readonly baseURL: string
  private readonly headers: Record<string, string>
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean
  private readonly timeoutMs: number
  private readonly idleTimeoutMs: number

  constructor(options: OpenAIProviderOptions) {
    if (!options.apiKey) throw new TypeError('openai(): apiKey is required')
    this.baseURL = (options.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '')
    this.headers = { authorization: `Bearer ${options.apiKey}` }
    if (options.organization) this.headers['openai-organization'] = options.organization
    if (options.project) this.headers['openai-project'] = options.project
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000 })
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000
  }

  async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    const boundary = `batchkit-${randomBytes(16).toString('hex')}`
    const response = await this.send('POST', '/files', {
      body: Readable.from(multipartBody(boundary, upload), { objectMode: false }),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      signal: upload.signal,
      headersTimeout: this.idleTimeoutMs,
      bodyTimeout: this.idleTimeoutMs,
    })
    return toProviderFile(await readJson(response))
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    return toProviderFile(await this.json('GET', `/files/${encodeURIComponent(id)}`))
  }

  async downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    const response = await this.send('GET', `/files/${encodeURIComponent(id)}/content`, {
      signal,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.idleTimeoutMs,
    })
    const length = Number(response.headers['content-length'])
    return { body: response.body, bytes: Number.isSafeInteger(length) ? length : null }
  }

  async deleteFile(id: string): Promise<void> {
    await this.json('DELETE', `/files/${encodeURIComponent(id)}`)
  }

  async createBatch(batch: ProviderBatchRequest): Promise<ProviderBatch> {
    const body: Record<string, unknown> = {
      input_file_id: batch.inputFileId,
      endpoint: batch.endpoint,
      completion_window: batch.completionWindow,
    }
    if (batch.metadata) body.metadata = batch.metadata
    if (batch.outputExpiresAfter) body.output_expires_after = batch.outputExpiresAfter
    return toProviderBatch(await this.json('POST', '/batches', body))
  }

  async retrieveBatch(id: string): Promise<ProviderBatch> {
    return toProviderBatch(await this.json('GET', `/batches/${encodeURIComponent(id)}`))
  }

  async cancelBatch(id: string): Promise<ProviderBatch> {
    return toProviderBatch(await this.json('POST', `/batches/${encodeURIComponent(id)}/cancel`))
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  private async json(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<unknown> {
    const response = await this.send(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    return readJson(response)
  }

  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    options: {
      body?: Dispatcher.RequestOptions['body']
      headers?: Record<string, string>
      signal?: AbortSignal | undefined
      headersTimeout: number
      bodyTimeout: number
    },
  ): Promise<Dispatcher.ResponseData> {
    let response: Dispatcher.ResponseData
    try {
      response = await request(this.baseURL + path, {
        method,
        dispatcher: this.dispatcher,
        headers: { ...this.headers, accept: 'application/json', ...options.headers },
        body: options.body,
        signal: options.signal,
        headersTimeout: options.headersTimeout,
        bodyTimeout: options.bodyTimeout,
      })
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      throw connectionError('openai', error)
    }
    if (response.statusCode >= 400) throw await upstreamError('openai', response)
    return response
  }
}

async function readJson(response: Dispatcher.ResponseData): Promise<unknown> {
  try {
    return await response.body.json()
  } catch {
    throw new ApiError(502, 'The openai provider answered with a body that is not JSON.', { code: 'upstream_error' })
  }
}

/** The upload as multipart/form-data: the file first, streamed, then the fields once they are known. */
async function* multipartBody(boundary: string, upload: ProviderUpload): AsyncGenerator<Buffer> {
  const filename = upload.filename.replace(/[\r\n"]/g, '_')
  yield Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  )
  for await (const chunk of upload.body) yield chunk as Buffer
  const fields: [string, string][] = [['purpose', await upload.purpose]]
  const expiresAfter = await upload.expiresAfter
  if (expiresAfter) {
    fields.push(
      ['expires_after[anchor]', expiresAfter.anchor],
      ['expires_after[seconds]', String(expiresAfter.seconds)],
    )
  }
  let tail = '\r\n'
  for (const [name, value] of fields) {
    tail += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  }
  yield Buffer.from(`${tail}--${boundary}--\r\n`)
}

type Json = Record<string, unknown>

function toProviderFile(value: unknown): ProviderFile {
  const file = asObject(value)
  if (typeof file.id !== 'string') throw malformed()
  return {
    id: file.id,
    bytes: integer(file.bytes) ?? 0,
    createdAt: integer(file.created_at) ?? Math.floor(Date.now() / 1000),
    expiresAt: integer(file.expires_at),
    filename: typeof file.filename === 'string' ? file.filename : 'file',
  }
}

function toProviderBatch(value: unknown): ProviderBatch {
  const batch = asObject(value)
  if (typeof batch.id !== 'string' || typeof batch.status !== 'string' || !STATUSES.has(batch.status)) throw malformed()
  const counts = batch.request_counts ? asObject(batch.request_counts) : {}
  return {
    id: batch.id,
    status: batch.status as BatchStatus,
    inProgressAt: integer(batch.in_progress_at),
    expiresAt: integer(batch.expires_at),
    finalizingAt: integer(batch.finalizing_at),
    completedAt: integer(batch.completed_at),
    failedAt: integer(batch.failed_at),
    expiredAt: integer(batch.expired_at),
    cancellingAt: integer(batch.cancelling_at),
    cancelledAt: integer(batch.cancelled_at),
    requestCounts: {
      total: integer(counts.total) ?? 0,
      completed: integer(counts.completed) ?? 0,
      failed: integer(counts.failed) ?? 0,
    },
    errors: toErrors(batch.errors),
    usage: toUsage(batch.usage),
    outputFileId: typeof batch.output_file_id === 'string' ? batch.output_file_id : null,
    errorFileId: typeof batch.error_file_id === 'string' ? batch.error_file_id : null,
  }
}

function toErrors(value: unknown): BatchErrorEntry[] | null {
  const data = (value as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) return null
  return data.map((entry) => {
    const e = asObject(entry)
    return {
      code: typeof e.code === 'string' ? e.code : null,
      message: typeof e.message === 'string' ? e.message : null,
      param: typeof e.param === 'string' ? e.param : null,
      line: integer(e.line),
    }
  })
}

function toUsage(value: unknown): BatchUsage | null {
  if (typeof value !== 'object' || value === null) return null
  const usage = value as Json
  const input = integer(usage.input_tokens) ?? 0
  const output = integer(usage.output_tokens) ?? 0
  return {
    inputTokens: input,
    cachedTokens: integer((usage.input_tokens_details as Json | undefined)?.cached_tokens) ?? 0,
    outputTokens: output,
    reasoningTokens: integer((usage.output_tokens_details as Json | undefined)?.reasoning_tokens) ?? 0,
    totalTokens: integer(usage.total_tokens) ?? input + output,
  }
}

function asObject(value: unknown): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed()
  return value as Json
}

/** An integer, or null; providers that send milliseconds or strings are not OpenAI, but tolerated. */
function integer(value: unknown): number | null {
  const n = typeof value === 'string' && value !== '' ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) ? Math.trunc(n) : null
}

function malformed(): ApiError {
  return new ApiError(502, 'The openai provider answered with an object batchkit does not recognise.', {
    code: 'upstream_error',
  })
}
