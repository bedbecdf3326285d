import type { Readable } from 'node:stream'
import type { BatchEndpoint, BatchProgress, ExpiresAfter, UploadPurpose } from '../types.js'

/** A file upload handed to a provider: the bytes as a stream, consumed with backpressure. */
export interface ProviderUpload {
  body: Readable
  /** The client's filename. batchkit keeps it itself; a provider that tags by filename does not send it upstream. */
  filename: string
  /**
   * batchkit's own id of the file being created (such as `file-AbC…`). The provider tags its upstream
   * object with it, so that {@link Provider.findFile} can find the object if batchkit crashes before it
   * learns the provider's id.
   */
  tag: string
  /** Resolves once the purpose is known; a multipart client may send it after the file. */
  purpose: Promise<UploadPurpose>
  /** Resolves with the `expires_after` to ask for, once known. */
  expiresAfter: Promise<ExpiresAfter | null>
  signal: AbortSignal
  /**
   * Awaited before part `index` (from 1) of a file kept upstream in parts starts, so the caller can write
   * down how many parts may exist before the provider is asked for one more.
   */
  beforePart?: (index: number) => Promise<void>
}

/** A file as a provider describes it. Timestamps are unix seconds. */
export interface ProviderFile {
  id: string
  bytes: number
  createdAt: number
  expiresAt: number | null
  filename: string
}

/** A file's bytes as a provider streams them. */
export interface ProviderDownload {
  body: Readable
  /** The length when the provider says it. */
  bytes: number | null
}

/** What batchkit asks a provider to run. */
export interface ProviderBatchRequest {
  /** The provider's id of the input file. */
  inputFileId: string
  endpoint: BatchEndpoint
  completionWindow: '24h'
  /**
   * The client's metadata. batchkit keeps it itself; any copy a provider sends upstream is informational
   * and may be cut short to make room for the tag (OpenAI allows 16 keys: the first 15 are kept).
   */
  metadata: Record<string, string> | null
  outputExpiresAfter: ExpiresAfter | null
  /**
   * batchkit's own id of the batch being created (`batch_<32 hex>`). The provider tags its upstream batch
   * with it (OpenAI and Azure: `metadata.batchkit_id`; Vertex AI: a job label), so that
   * {@link Provider.findBatch} can find the batch if batchkit crashes before it learns the provider's id.
   */
  tag: string
}

/** What one batch of a service takes. Unset means OpenAI's: 50,000 requests and 200 MB. */
export interface ProviderLimits {
  /** Most requests in one batch input file. */
  readonly maxBatchRequests?: number
  /** Largest batch input file, in bytes. */
  readonly maxBatchFileBytes?: number
}

/** A batch as a provider reports it, with the provider's own ids. */
export interface ProviderBatch extends BatchProgress {
  id: string
  outputFileId: string | null
  errorFileId: string | null
  /**
   * When a part the provider turned down for a full queue is next due to be submitted again (unix ms;
   * see `QueueRetryOptions`), for the tracker to come back then; absent or null when none waits.
   */
  nextSubmitAtMs?: number | null
}

/**
 * One configured upstream (an OpenAI account, an Azure resource, a Vertex project). batchkit keeps
 * all state itself; a provider only moves bytes and batches to and from its service, and throws
 * {@link ApiError}s whose messages carry neither credentials nor raw upstream bodies.
 */
export interface Provider {
  /** The kind of service, such as `openai`. */
  readonly kind: string
  /**
   * The service's own limits where they differ from OpenAI's (the core's defaults), for the core
   * to apply to uploads routed to this provider. `maxBatchRequests`: most requests in one batch
   * input file (OpenAI 50,000; Azure OpenAI 100,000); `maxBatchFileBytes`: largest batch input file
   * (OpenAI 200 MB). Unset means OpenAI's. A file above them, where batchkit's own limits allow it, is
   * kept upstream in parts within them, and its batch runs as one provider batch per part.
   */
  readonly limits?: ProviderLimits
  uploadFile(upload: ProviderUpload): Promise<ProviderFile>
  retrieveFile(id: string): Promise<ProviderFile>
  downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload>
  deleteFile(id: string): Promise<void>
  createBatch(request: ProviderBatchRequest): Promise<ProviderBatch>
  /**
   * The batch as the provider has it now. `resubmit` is the batch's create, given only by the one
   * process following the batch: with it, parts the provider turned down for a full queue and now
   * due are submitted again (see `QueueRetryOptions`), and the answer's id says which batches run
   * them. A service's own provider ignores it; batchkit wraps every provider to do this.
   */
  retrieveBatch(id: string, resubmit?: ProviderBatchRequest): Promise<ProviderBatch>
  cancelBatch(id: string): Promise<ProviderBatch>
  /**
   * The upstream file tagged `tag` ({@link ProviderUpload.tag}) and created at or after `since` (unix
   * seconds; callers pass the intent's creation time less a margin for clock skew), or undefined when
   * there is none. The search is bounded: when the bound is reached before `since`, it rejects with an
   * {@link ApiError} coded `upstream_search_incomplete` rather than claim there is no such file. `parts`
   * is how many parts the upload may have started ({@link ProviderUpload.beforePart}), when the caller
   * knows it; a provider may ignore it.
   */
  findFile(tag: string, since: number, parts?: number): Promise<ProviderFile | undefined>
  /**
   * The upstream batch tagged `tag` ({@link ProviderBatchRequest.tag}) and created at or after `since`
   * (unix seconds), or undefined when there is none; bounded like {@link Provider.findFile}. `request`
   * is the create that was under way, when the caller knows it; a provider may ignore it.
   */
  findBatch(tag: string, since: number, request?: ProviderBatchRequest): Promise<ProviderBatch | undefined>
  /** Releases connections. */
  close?(): Promise<void>
}
