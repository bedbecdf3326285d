import type { Dispatcher } from 'undici'
import { providerLimits } from '../limits.js'
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
import { findTaggedBatch, findTaggedFile } from './find.js'
import { toProviderBatch, toProviderFile } from './objects.js'
import { type FormField, WireClient } from './wire.js'

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
  /** How far `findFile` and `findBatch` look through OpenAI's lists. */
  search?: TagSearchOptions
  /**
   * What one batch of the service takes, for a service that speaks OpenAI's API with limits of its own.
   * A larger file, where the kit's `limits` allow it, runs as several batches of at most this.
   * @default OpenAI's: 50,000 requests and 200 MB
   */
  limits?: ProviderLimits
}

/** A provider for OpenAI's own Files and Batch API, or any service that speaks it. */
export function openai(options: OpenAIProviderOptions): Provider {
  return new OpenAIProvider(options)
}

class OpenAIProvider implements Provider {
  readonly kind = 'openai'
  readonly limits: Provider['limits']
  private readonly client: WireClient
  private readonly search: TagSearchBounds

  constructor(options: OpenAIProviderOptions) {
    if (!options.apiKey) throw new TypeError('openai(): apiKey is required')
    this.limits = providerLimits(options.limits, {}, 'openai')
    this.search = tagSearchBounds(options.search, 'openai')
    const baseURL = (options.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '')
    const headers: Record<string, string> = { authorization: `Bearer ${options.apiKey}` }
    if (options.organization) headers['openai-organization'] = options.organization
    if (options.project) headers['openai-project'] = options.project
    this.client = new WireClient({
      provider: 'openai',
      url: (path) => baseURL + path,
      headers: () => headers,
      timeoutMs: options.timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      dispatcher: options.dispatcher,
    })
  }

  /** Streams the file to OpenAI under the filename of its tag; the answer keeps the client's filename. */
  async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
    const response = await this.client.upload('/files', upload, () => formFields(upload))
    return { ...toProviderFile(await this.client.readJson(response), 'openai'), filename: upload.filename }
  }

  async retrieveFile(id: string): Promise<ProviderFile> {
    return toProviderFile(await this.client.json('GET', `/files/${encodeURIComponent(id)}`), 'openai')
  }

  downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    return this.client.download(`/files/${encodeURIComponent(id)}/content`, signal)
  }

  async deleteFile(id: string): Promise<void> {
    await this.client.json('DELETE', `/files/${encodeURIComponent(id)}`)
  }

  async createBatch(batch: ProviderBatchRequest): Promise<ProviderBatch> {
    const body: Record<string, unknown> = {
      input_file_id: batch.inputFileId,
      endpoint: batch.endpoint,
      completion_window: batch.completionWindow,
      metadata: taggedMetadata(batch.metadata, batch.tag),
    }
    if (batch.outputExpiresAfter) body.output_expires_after = batch.outputExpiresAfter
    return toProviderBatch(await this.client.json('POST', '/batches', body), 'openai')
  }

  async retrieveBatch(id: string): Promise<ProviderBatch> {
    return toProviderBatch(await this.client.json('GET', `/batches/${encodeURIComponent(id)}`), 'openai')
  }

  async cancelBatch(id: string): Promise<ProviderBatch> {
    return toProviderBatch(await this.client.json('POST', `/batches/${encodeURIComponent(id)}/cancel`), 'openai')
  }

  /** Pages `GET /files` newest first, matching the upstream filename the upload's tag gave. */
  async findFile(tag: string, since: number): Promise<ProviderFile | undefined> {
    const found = await findTaggedFile({ client: this.client, bounds: this.search, tag, since })
    return found && toProviderFile(found, 'openai')
  }

  /** Pages `GET /batches` (newest first), matching `metadata.batchkit_id`. */
  async findBatch(tag: string, since: number): Promise<ProviderBatch | undefined> {
    const found = await findTaggedBatch({ client: this.client, bounds: this.search, tag, since })
    return found && toProviderBatch(found, 'openai')
  }

  close(): Promise<void> {
    return this.client.close()
  }
}

/** The fields after the file, in OpenAI's bracket form: `purpose`, then `expires_after[…]` when asked for. */
async function formFields(upload: ProviderUpload): Promise<FormField[]> {
  const fields: FormField[] = [['purpose', await upload.purpose]]
  const expiresAfter = await upload.expiresAfter
  if (expiresAfter) {
    fields.push(
      ['expires_after[anchor]', expiresAfter.anchor],
      ['expires_after[seconds]', String(expiresAfter.seconds)],
    )
  }
  return fields
}
