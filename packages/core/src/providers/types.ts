import type { Readable } from 'node:stream'
import type { BatchEndpoint, BatchProgress, ExpiresAfter, UploadPurpose } from '../types.js'

/** A file upload handed to a provider: the bytes as a stream, consumed with backpressure. */
export interface ProviderUpload {
  body: Readable
  filename: string
  /** Resolves once the purpose is known; a multipart client may send it after the file. */
  purpose: Promise<UploadPurpose>
  /** Resolves with the `expires_after` to ask for, once known. */
  expiresAfter: Promise<ExpiresAfter | null>
  signal: AbortSignal
  /** batchkit's own id of the file being created; the provider tags its object with it, so a reconciler can find it after a crash. */
  tag: string
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
  metadata: Record<string, string> | null
  outputExpiresAfter: ExpiresAfter | null
  /** batchkit's own id of the batch being created; the provider tags its object with it, so a reconciler can find it after a crash. */
  tag: string
}

/** A batch as a provider reports it, with the provider's own ids. */
export interface ProviderBatch extends BatchProgress {
  id: string
  outputFileId: string | null
  errorFileId: string | null
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
   * input file (OpenAI 50,000; Azure OpenAI 100,000). Unset means OpenAI's.
   */
  readonly limits?: { readonly maxBatchRequests?: number }
  uploadFile(upload: ProviderUpload): Promise<ProviderFile>
  retrieveFile(id: string): Promise<ProviderFile>
  downloadFile(id: string, signal?: AbortSignal): Promise<ProviderDownload>
  deleteFile(id: string): Promise<void>
  createBatch(request: ProviderBatchRequest): Promise<ProviderBatch>
  retrieveBatch(id: string): Promise<ProviderBatch>
  cancelBatch(id: string): Promise<ProviderBatch>
  /** The provider's file tagged `tag` at upload, created at or after `since` (unix seconds), if there is one. */
  findFile(tag: string, since: number): Promise<ProviderFile | undefined>
  /** The provider's batch tagged `tag` at creation, created at or after `since` (unix seconds), if there is one. */
  findBatch(tag: string, since: number): Promise<ProviderBatch | undefined>
  /** Releases connections. */
  close?(): Promise<void>
}
