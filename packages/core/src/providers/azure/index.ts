import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher } from 'undici'
import { ApiError } from '../../errors.js'
import { type ExpiresAfter, TERMINAL_STATUSES } from '../../types.js'
import { jitter } from '../../util/jitter.js'
import { readBoundedText } from '../bounded-body.js'
import { providerLimits } from '../limits.js'
import { findTaggedBatch, findTaggedFile } from '../openai/find.js'
import { asObject, toProviderBatch, toProviderFile } from '../openai/objects.js'
import { type FormField, WireClient, type WireResponse } from '../openai/wire.js'
import { type TagSearchBounds, type TagSearchOptions, taggedMetadata, tagSearchBounds } from '../tag-search.js'
import type {
  Provider,
  ProviderBatch,
  ProviderBatchRequest,
  ProviderDownload,
  ProviderFile,
  ProviderLimits,
  ProviderUpload,
} from '../types.js'
import { azureUpstreamError } from './errors.js'
import { normaliseBatch, normaliseFile, normaliseStatus } from './normalise.js'

/**
 * The dated API's default `api-version`: the latest preview Azure's batch guide lists. Unlike the GA
 * version (`2024-10-21`) it takes `expires_after` and `output_expires_after` (from `2025-03-01-preview`) and runs the
 * models released since (`o3-mini`, `o4-mini`, `gpt-4.1`, …).
 */
export const AZURE_DATED_API_VERSION = '2025-04-01-preview'

/** The longest expiry Azure (and OpenAI) take: 30 days. */
const MAX_EXPIRY_SECONDS = 30 * 24 * 60 * 60

/** How long what batchkit creates on Azure lives when the client asks for no expiry: 30 days, OpenAI's default for batch files. */
export const AZURE_DEFAULT_EXPIRY_SECONDS = MAX_EXPIRY_SECONDS

/** Azure OpenAI's limits where they differ from OpenAI's. */
export const AZURE_LIMITS = { maxBatchRequests: 100_000 } as const

/** Options of the {@link azure} provider. */
export interface AzureProviderOptions {
  /**
   * The resource's endpoint, such as `https://my-resource.openai.azure.com`, without `/openai`;
   * any base works (a proxy, API Management, `http://127.0.0.1:PORT` for a fake).
   */
  endpoint: string
  /**
   * Which of Azure's APIs to call. `'v1'`: `{endpoint}/openai/v1/files`, with no `api-version`, the API
   * newer models need; `'dated'`: `{endpoint}/openai/files?api-version=…`.
   * @default 'v1', or 'dated' when `apiVersion` is given
   */
  api?: 'dated' | 'v1'
  /**
   * The dated API's `api-version`; not allowed with `api: 'v1'`. Versions before `2025-03-01-preview`
   * (the GA `2024-10-21` among them) drop expiries, so their files count against Azure's 500 files
   * without one, and refuse newer models for Global Batch.
   * @default '2025-04-01-preview'
   */
  apiVersion?: string
  /** The resource's key, sent as `api-key`. Give this or `azureADTokenProvider`, not both. Never shown anywhere. */
  apiKey?: string
  /**
   * Returns a Microsoft Entra ID access token (scope `https://cognitiveservices.azure.com/.default`),
   * sent as `Authorization: Bearer`. Asked before every request, so it should cache, as
   * `@azure/identity`'s `getBearerTokenProvider` does.
   */
  azureADTokenProvider?: () => Promise<string>
  /**
   * The expiry, in seconds, of uploads without `expires_after` and of batch output without
   * `output_expires_after`: Azure keeps at most 500 files that never expire per resource, and each batch
   * makes up to three. Between 3600 and 2592000. @default 2592000 (30 days)
   */
  defaultExpirySeconds?: number
  /** How long to wait for Azure to process an upload before answering it (Azure runs no batch on a file still `pending`). */
  fileProcessing?: {
    /** Give up (504, and the file is deleted upstream) after this long. @default 600000 */
    timeoutMs?: number
    /** The first pause between checks; it doubles each time. @default 500 */
    initialDelayMs?: number
    /** The longest pause between checks. @default 5000 */
    maxDelayMs?: number
  }
  /** How long a control call (everything but uploads and downloads) may wait for an answer. @default 60000 */
  timeoutMs?: number
  /** How long an upload or download may sit without moving a byte. @default 300000 */
  idleTimeoutMs?: number
  /** The undici dispatcher to send requests through. @default a keep-alive Agent of its own */
  dispatcher?: Dispatcher
  /** How far `findFile` and `findBatch` look through Azure's lists. */
  search?: TagSearchOptions
  /** What one batch takes, in place of the service's published limits ({@link AZURE_LIMITS}). */
  limits?: ProviderLimits
}

/**
 * A provider for Azure OpenAI's Files and Batch API, on the `/openai/v1/` API (the default) or the
 * dated API (`api-version`). Batch input lines name the Global-Batch (or Data Zone Batch) deployment
 * as `body.model`. Every file it creates expires: uploads and batch output get the client's expiry,
 * else {@link AzureProviderOptions.defaultExpirySeconds}. Its {@link Provider.limits} carry Azure's
 * 100,000 requests per batch file.
 */
export function azure(options: AzureProviderOptions): Provider {
  return new AzureProvider(options)
}

/** How a file's status reads, whatever Azure's spelling. */
type FileState = 'ready' | 'waiting' | 'error' | 'gone'

class AzureProvider implements Provider {
  readonly kind = 'azure'
  readonly limits: ProviderLimits
  private readonly client: WireClient
  private readonly defaultExpiry: ExpiresAfter
  private readonly processing: { timeoutMs: number; initialDelayMs: number; maxDelayMs: number }
  private readonly search: TagSearchBounds

  constructor(options: AzureProviderOptions) {
    const endpoint = checkEndpoint(options.endpoint)
    const api = options.api ?? (options.apiVersion === undefined ? 'v1' : 'dated')
    if (api !== 'dated' && api !== 'v1') throw new TypeError(`azure(): api must be 'dated' or 'v1', not '${api}'`)
    if (api === 'v1' && options.apiVersion !== undefined) {
      throw new TypeError("azure(): apiVersion applies to the dated API only; the 'v1' API takes none")
    }
    const apiVersion = options.apiVersion ?? AZURE_DATED_API_VERSION
    if (!/^\d{4}-\d{2}-\d{2}(?:-preview)?$/.test(apiVersion)) {
      throw new TypeError(`azure(): apiVersion '${apiVersion}' is not an Azure api-version such as '2024-10-21'`)
    }
    if (Boolean(options.apiKey) === Boolean(options.azureADTokenProvider)) {
      throw new TypeError('azure(): give exactly one of apiKey and azureADTokenProvider')
    }
    const seconds = options.defaultExpirySeconds ?? AZURE_DEFAULT_EXPIRY_SECONDS
    if (!Number.isInteger(seconds) || seconds < 3600 || seconds > MAX_EXPIRY_SECONDS) {
      throw new TypeError('azure(): defaultExpirySeconds must be an integer from 3600 (1 hour) to 2592000 (30 days)')
    }
    this.defaultExpiry = { anchor: 'created_at', seconds }
    this.search = tagSearchBounds(options.search, 'azure')
    this.limits = providerLimits(options.limits, AZURE_LIMITS, 'azure')
    this.processing = {
      timeoutMs: options.fileProcessing?.timeoutMs ?? 600_000,
      initialDelayMs: options.fileProcessing?.initialDelayMs ?? 500,
      maxDelayMs: options.fileProcessing?.maxDelayMs ?? 5_000,
    }

    const query = `?api-version=${encodeURIComponent(apiVersion)}`
    const url =
      api === 'dated'
        ? (path: string) => `${endpoint}/openai${path}${query}`
        : (path: string) => `${endpoint}/openai/v1${path}`
    const apiKey = options.apiKey
    const tokenProvider = options.azureADTokenProvider
    this.client = new WireClient({
      provider: 'azure',
      url,
      headers: apiKey ? () => ({ 'api-key': apiKey }) : () => bearer(tokenProvider as () => Promise<string>),
      toError: azureUpstreamError,
      timeoutMs: options.timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      dispatcher: options.dispatcher,
    })
  }

  /**
   * Streams the file to Azure, then waits until Azure has processed it: Azure answers the upload
   * (201 with `Location`, or 200) with a `pending` file and refuses batches on it until it is
   * `processed`. A file that ends in `error`, or is not processed in time, is deleted upstream. Azure
   * gets the filename of the upload's tag; the answer keeps the client's filename.
   */
  async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    return { ...(await this.storeUpload(upload)), filename: upload.filename }
  }

  private async storeUpload(upload: ProviderUpload): Promise<ProviderFile> {
    const refused = new AbortController()
    const signal = AbortSignal.any([upload.signal, refused.signal])
    const response = await this.client.upload(
      '/files',
      upload,
      async () => {
        try {
          return await this.formFields(upload)
        } catch (error) {
          // Abort before the closing boundary, so Azure keeps nothing, and say why.
          refused.abort(error)
          throw error
        }
      },
      signal,
    )
    const value = normaliseFile(await readUploadAnswer(response))
    const file = asObject(value, 'azure')
    if (typeof file.id !== 'string') throw notStored()
    if (fileState(file.status) === 'ready') return toProviderFile(file, 'azure')
    try {
      return await this.untilProcessed(file.id, upload.signal)
    } catch (error) {
      await this.deleteFile(file.id).catch(() => undefined)
      throw error
    }
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    return toProviderFile(normaliseFile(await this.client.json('GET', filePath(id))), 'azure')
  }

  downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    return this.client.download(`${filePath(id)}/content`, signal)
  }

  async deleteFile(id: string): Promise<void> {
    await this.client.json('DELETE', filePath(id))
  }

  async createBatch(batch: ProviderBatchRequest): Promise<ProviderBatch> {
    const body: Record<string, unknown> = {
      input_file_id: batch.inputFileId,
      endpoint: batch.endpoint,
      completion_window: batch.completionWindow,
      metadata: taggedMetadata(batch.metadata, batch.tag),
      output_expires_after: batch.outputExpiresAfter ?? this.defaultExpiry,
    }
    return this.toBatch(await this.client.json('POST', '/batches', body))
  }

  async retrieveBatch(id: string): Promise<ProviderBatch> {
    return this.toBatch(await this.client.json('GET', batchPath(id)))
  }

  async cancelBatch(id: string): Promise<ProviderBatch> {
    return this.toBatch(await this.client.json('POST', `${batchPath(id)}/cancel`))
  }

  /** Pages `GET /files` newest first, matching the upstream filename the upload's tag gave; a file in any processing state counts. */
  async findFile(tag: string, since: number): Promise<ProviderFile | undefined> {
    const found = await findTaggedFile({
      client: this.client,
      bounds: this.search,
      tag,
      since,
      normalise: normaliseFile,
    })
    return found && toProviderFile(found, 'azure')
  }

  /** Pages `GET /batches` (newest first), matching `metadata.batchkit_id`. */
  async findBatch(tag: string, since: number): Promise<ProviderBatch | undefined> {
    const found = await findTaggedBatch({
      client: this.client,
      bounds: this.search,
      tag,
      since,
      normalise: normaliseBatch,
    })
    return found && this.toBatch(found)
  }

  close(): Promise<void> {
    return this.client.close()
  }

  /**
   * The fields after the file: `purpose`, then `expires_after` in the dot form Azure documents
   * (`expires_after.anchor`, `expires_after.seconds`): the client's as asked (Azure has taken less than
   * the 14 days it documents; a refusal reaches the client as a 400), else the default.
   */
  private async formFields(upload: ProviderUpload): Promise<FormField[]> {
    const purpose = await upload.purpose
    const expiresAfter = (await upload.expiresAfter) ?? this.defaultExpiry
    return [
      ['purpose', purpose],
      ['expires_after.anchor', expiresAfter.anchor],
      ['expires_after.seconds', String(expiresAfter.seconds)],
    ]
  }

  /** Checks the file until Azure has processed it, pausing with backoff; bounded by `fileProcessing.timeoutMs`. */
  private async untilProcessed(id: string, signal: AbortSignal): Promise<ProviderFile> {
    const deadline = Date.now() + this.processing.timeoutMs
    let delay = this.processing.initialDelayMs
    for (;;) {
      signal.throwIfAborted()
      const file = asObject(normaliseFile(await this.client.json('GET', filePath(id))), 'azure')
      const state = fileState(file.status)
      if (state === 'ready') return toProviderFile(file, 'azure')
      if (state === 'error') {
        throw new ApiError(
          400,
          "The azure provider could not process the uploaded file (its status became 'error'), so it was not kept. " +
            'Check that the file is a batch file Azure OpenAI accepts.',
          { param: 'file', code: 'file_processing_failed', headers: { 'x-should-retry': 'false' } },
        )
      }
      if (state === 'gone') {
        throw new ApiError(502, 'The azure provider deleted the file while processing it.', {
          code: 'upstream_not_found',
          headers: { 'x-should-retry': 'false' },
        })
      }
      if (Date.now() + delay > deadline) {
        throw new ApiError(504, 'The azure provider did not finish processing the uploaded file in time.', {
          code: 'upstream_timeout',
        })
      }
      await sleep(jitter(delay), undefined, { signal }).catch(() => signal.throwIfAborted())
      delay = Math.min(delay * 2, this.processing.maxDelayMs)
    }
  }

  /**
   * An Azure Batch object as a {@link ProviderBatch}. Azure creates an error file for every batch,
   * empty when nothing failed; OpenAI only has one when something did, so a finished batch's empty
   * error file is not reported.
   */
  private async toBatch(value: unknown): Promise<ProviderBatch> {
    const batch = toProviderBatch(normaliseBatch(value), 'azure')
    if (batch.errorFileId !== null && TERMINAL_STATUSES.has(batch.status)) {
      const errorFile = await this.retrieveFile(batch.errorFileId).catch(() => null)
      if (errorFile?.bytes === 0) return { ...batch, errorFileId: null }
    }
    return batch
  }
}

/** The endpoint without trailing slashes, checked to be an http(s) URL without `/openai`, query or fragment. */
function checkEndpoint(endpoint: string): string {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError('azure(): endpoint must be a URL such as https://my-resource.openai.azure.com')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('azure(): endpoint must be http(s)')
  if (url.search || url.hash || url.username || url.password) {
    throw new TypeError('azure(): endpoint must have no query, fragment or credentials')
  }
  const base = `${url.origin}${url.pathname}`.replace(/\/+$/, '')
  if (/\/openai(?:\/v1)?$/i.test(base)) {
    throw new TypeError(
      'azure(): endpoint is the resource endpoint without /openai, such as https://my-resource.openai.azure.com',
    )
  }
  return base
}

async function bearer(tokenProvider: () => Promise<string>): Promise<Record<string, string>> {
  let token: unknown
  try {
    token = await tokenProvider()
  } catch {
    token = undefined
  }
  if (typeof token !== 'string' || token === '' || /[\s]/.test(token)) {
    throw new ApiError(502, 'The azure provider could not get an access token; check the provider configuration.', {
      code: 'upstream_auth_failed',
    })
  }
  return { authorization: `Bearer ${token}` }
}

/**
 * The File object of an upload answer: its JSON body (64 KiB at most; a File object is a few hundred
 * bytes), or (a 201 with an empty body) the id in `Location`.
 */
async function readUploadAnswer(response: WireResponse): Promise<unknown> {
  const text = await readBoundedText(response.body)
  if (text.trim() !== '') {
    try {
      return JSON.parse(text)
    } catch {
      throw new ApiError(502, 'The azure provider answered with a body that is not JSON.', { code: 'upstream_error' })
    }
  }
  const location = response.headers.location
  const segment =
    typeof location === 'string' ? new URL(location, 'http://location.invalid').pathname.split('/').pop() : ''
  let id = ''
  try {
    id = decodeURIComponent(segment ?? '')
  } catch {
    // Not an id.
  }
  if (!id) throw notStored()
  return { id, status: 'pending' }
}

function notStored(): ApiError {
  return new ApiError(502, 'The azure provider did not say which file it stored.', { code: 'upstream_error' })
}

function fileState(status: unknown): FileState {
  const value = typeof status === 'string' ? normaliseStatus(status) : 'processed'
  if (value === 'processed' || value === 'succeeded') return 'ready'
  if (value === 'error' || value === 'failed') return 'error'
  if (value === 'deleted' || value === 'deleting') return 'gone'
  return 'waiting'
}

const filePath = (id: string) => `/files/${encodeURIComponent(id)}`
const batchPath = (id: string) => `/batches/${encodeURIComponent(id)}`
