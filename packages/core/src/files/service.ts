import { pipeline, type Readable } from 'node:stream'
import { validateExpiresAfter } from '../batches/validate.js'
import { ApiError, invalidValue, isApiError, missingParameter, notFound } from '../errors.js'
import { newFileId } from '../ids.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { ProviderDownload } from '../providers/types.js'
import type { ListOrder, RecordStore } from '../store/records.js'
import {
  type ExpiresAfter,
  type FilePurpose,
  type FileRecord,
  type Page,
  type Principal,
  UPLOAD_PURPOSES,
  type UploadPurpose,
} from '../types.js'
import { JsonlValidator } from './jsonl-validator.js'
import { ModelRewrite } from './model-rewrite.js'
import type { UploadLimits } from './upload-limits.js'

const PURPOSES: ReadonlySet<string> = new Set(UPLOAD_PURPOSES)

/** A new file: its bytes as a stream, and the fields that go with it. */
export interface CreateFileInput {
  /** The bytes; consumed as a stream with backpressure, never held whole. */
  file: Readable
  /** @default 'file.jsonl' */
  filename?: string
  /** May be a promise: a multipart client can send the purpose after the file. */
  purpose: UploadPurpose | Promise<UploadPurpose>
  expiresAfter?: ExpiresAfter | null | Promise<ExpiresAfter | null>
  /** The provider to use whatever the model (LiteLLM's `custom_llm_provider`). @default chosen by the model list */
  provider?: string
}

/** Options of a files list. */
export interface ListFilesOptions {
  purpose?: FilePurpose
  /** A file id: the page starts after it. */
  after?: string
  /** 1 to 10,000. @default 10000 */
  limit?: number
  /** By creation time. @default 'desc' */
  order?: ListOrder
}

/** Reports a failure that could not be shown to the caller, such as a failed clean-up. */
export type ErrorReporter = (error: unknown, context: string) => void

/** Files: upload, list, retrieve, delete and download, each scoped to the caller's own files. */
export class FileService {
  constructor(
    private readonly store: RecordStore,
    private readonly providers: ProviderRegistry,
    private readonly limits: UploadLimits,
    private readonly reportError: ErrorReporter,
    /** Whether a provider's own request limit (Azure's 100,000) applies, the user having set none. */
    private readonly providerRequestLimits = true,
  ) {}

  /**
   * Streams a new file to its provider, validating a batch input file on the way, and records it.
   * Any failure (bad line, size, missing field, client gone, provider error) leaves no record and
   * no upstream file.
   */
  async create(principal: Principal, input: CreateFileInput): Promise<FileRecord> {
    const purpose = Promise.resolve(input.purpose).then(validatePurpose)
    const expiresAfter = Promise.resolve(input.expiresAfter ?? null).then((value) =>
      validateExpiresAfter('expires_after', value),
    )
    const validator = new JsonlValidator(this.limits, purpose)
    const aborter = new AbortController()
    // The first thing that went wrong on our side; it explains the upload's failure better than the provider can.
    let failure: unknown
    const fail = (error: unknown) => {
      failure ??= error
      aborter.abort(error)
    }
    // Registered before the provider starts reading, so the cause is known before the upload rejects.
    validator.once('error', fail)
    const fieldFailed = (error: unknown) => {
      fail(error)
      validator.destroy(error as Error)
    }
    purpose.catch(fieldFailed)
    expiresAfter.catch(fieldFailed)
    pipeline(input.file, validator, () => undefined)

    const firstModel = await validator.firstModel
    let route: ReturnType<ProviderRegistry['route']>
    try {
      route = this.providers.route(firstModel, input.provider)
      const max = route.provider.limits?.maxBatchRequests
      if (this.providerRequestLimits && max !== undefined) validator.setMaxBatchRequests(max)
    } catch (error) {
      validator.destroy(error as Error)
      throw error
    }
    const { name, provider, providerModel } = route
    // The provider knows the model by another name: rename it in every line on the way, and back on reads.
    const rewrite =
      providerModel === undefined || firstModel === undefined ? undefined : new ModelRewrite(firstModel, providerModel)
    const body = rewrite ? validator.pipe(rewrite) : validator
    if (rewrite) validator.once('error', (error) => rewrite.destroy(error))
    let uploaded: Awaited<ReturnType<typeof provider.uploadFile>>
    const id = newFileId()
    try {
      uploaded = await provider.uploadFile({
        body,
        filename: input.filename ?? 'file.jsonl',
        tag: id,
        purpose,
        expiresAfter,
        signal: aborter.signal,
      })
    } catch (error) {
      validator.destroy()
      throw failure === undefined ? error : asUploadError(failure)
    }

    try {
      const createdAtMs = Date.now()
      const record: FileRecord = {
        id,
        owner: principal.owner,
        provider: name,
        providerFileId: uploaded.id,
        bytes: validator.bytes,
        createdAt: Math.floor(createdAtMs / 1000),
        createdAtMs,
        expiresAt: uploaded.expiresAt,
        filename: input.filename ?? uploaded.filename,
        purpose: await purpose,
        batchInput: validator.summary(),
        batchId: null,
        modelRewrite:
          rewrite && providerModel && firstModel ? { model: firstModel, providerModel, exact: rewrite.exact } : null,
      }
      await this.store.addFile(record)
      return record
    } catch (error) {
      await provider
        .deleteFile(uploaded.id)
        .catch((e) => this.reportError(e, 'deleting an upstream file after a failed upload'))
      throw error
    }
  }

  /** The caller's file, or a 404 exactly like a missing one. */
  async retrieve(principal: Principal, id: string): Promise<FileRecord> {
    const file = await this.store.getFile(id)
    if (!file || file.owner !== principal.owner) throw notFound('file', id)
    return file
  }

  /** A page of the caller's files; `after` may name a file deleted since the previous page. */
  async list(principal: Principal, options: ListFilesOptions = {}): Promise<Page<FileRecord>> {
    const limit = options.limit ?? 10_000
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw invalidValue('limit', `Invalid value for 'limit': ${limit}. It must be an integer from 1 to 10000.`)
    }
    const order = options.order ?? 'desc'
    if (order !== 'asc' && order !== 'desc') {
      throw invalidValue('order', `Invalid value for 'order': '${order}'. Supported values are: 'asc' and 'desc'.`)
    }
    const after = options.after === undefined ? undefined : await this.store.fileCursor(options.after)
    if (options.after !== undefined && (!after || after.owner !== principal.owner)) {
      throw invalidValue('after', `Invalid value for 'after': no file '${options.after}' to list after.`)
    }
    return this.store.listFiles(principal.owner, { purpose: options.purpose, after, limit, order })
  }

  /** Deletes the file upstream and then its record. */
  async delete(principal: Principal, id: string): Promise<{ id: string; deleted: true }> {
    const file = await this.retrieve(principal, id)
    try {
      await this.providers.get(file.provider).deleteFile(file.providerFileId)
    } catch (error) {
      // Already gone upstream (expired, deleted elsewhere): the record should go too.
      if (!(isApiError(error) && error.code === 'upstream_not_found')) throw error
    }
    await this.store.deleteFile(file)
    return { id, deleted: true }
  }

  /** The file's bytes, streamed from its provider. */
  async content(principal: Principal, id: string, signal?: AbortSignal): Promise<ProviderDownload> {
    const file = await this.retrieve(principal, id)
    const download = await this.providers.get(file.provider).downloadFile(file.providerFileId, signal)
    if (!file.modelRewrite) return download
    const back = new ModelRewrite(file.modelRewrite.providerModel, file.modelRewrite.model)
    pipeline(download.body, back, () => undefined)
    return { body: back, bytes: file.modelRewrite.exact ? file.bytes : null }
  }
}

/** Errors of the incoming stream that are not batchkit's own mean the upload did not arrive whole. */
function asUploadError(error: unknown): unknown {
  if (isApiError(error)) return error
  return new ApiError(400, 'The upload did not arrive whole: the request body was cut short or malformed.', {
    param: 'file',
    code: 'upload_incomplete',
  })
}

function validatePurpose(purpose: unknown): UploadPurpose {
  if (purpose === undefined || purpose === null || purpose === '') throw missingParameter('purpose')
  if (typeof purpose === 'string' && PURPOSES.has(purpose)) return purpose as UploadPurpose
  throw invalidValue(
    'purpose',
    `Invalid value for 'purpose': '${String(purpose)}'. Supported values are: ${UPLOAD_PURPOSES.map((p) => `'${p}'`).join(', ')}.`,
  )
}
