import { createHash } from 'node:crypto'
import { pipeline, type Readable, Transform, type TransformCallback, Writable } from 'node:stream'
import { pipeline as pipelineAsync } from 'node:stream/promises'
import { validateExpiresAfter } from '../batches/validate.js'
import { ApiError, invalidValue, isApiError, notFound } from '../errors.js'
import { FileEstimator } from '../estimates/file-estimator.js'
import type { SamplingOptions } from '../estimates/text-counter.js'
import { newFileId } from '../ids.js'
import { type IdempotencyKeys, keyReused } from '../intents/idempotency.js'
import { type Intent, type IntentLog, searchSince } from '../intents/intent-log.js'
import type { Pricing } from '../pricing/cost.js'
import type { ProviderRegistry } from '../providers/registry.js'
import { PartsLeftUpstream } from '../providers/split/upload-parts.js'
import type { ProviderDownload } from '../providers/types.js'
import { refusedUpstream } from '../providers/upstream-errors.js'
import type { ListOrder, RecordStore } from '../store/records.js'
import type {
  BatchBilling,
  ExpiresAfter,
  FileEstimate,
  FilePurpose,
  FileRecord,
  Page,
  Principal,
  UploadPurpose,
} from '../types.js'
import { attempt } from '../util/attempt.js'
import { checkFilename } from './filename.js'
import { JsonlValidator } from './jsonl-validator.js'
import { ModelRewrite } from './model-rewrite.js'
import { type ListPurpose, listPurposeOf, uploadPurposeOf } from './purpose.js'
import type { UploadLimits } from './upload-limits.js'

/** A new file: its bytes as a stream, and the fields that go with it. */
export interface CreateFileInput {
  /** The bytes; consumed as a stream with backpressure, never held whole. */
  file: Readable
  /** At most 255 bytes of UTF-8. @default 'file.jsonl' */
  filename?: string
  /** May be a promise: a multipart client can send the purpose after the file. */
  purpose: UploadPurpose | Promise<UploadPurpose>
  expiresAfter?: ExpiresAfter | null | Promise<ExpiresAfter | null>
  /** The provider to use whatever the model (LiteLLM's `custom_llm_provider`). @default chosen by the model list */
  provider?: string
}

/** Options of a files list. */
export interface ListFilesOptions {
  /** Any of OpenAI's file purposes; one batchkit never stores matches nothing. */
  purpose?: ListPurpose
  /** A file id: the page starts after it. */
  after?: string
  /** 1 to 10,000. @default 10000 */
  limit?: number
  /** By creation time. @default 'desc' */
  order?: ListOrder
}

/** Options of an upload. */
export interface CreateFileOptions {
  /** The client's `Idempotency-Key`: a retry with the same key and bytes answers the first result. */
  idempotencyKey?: string
}

/** An upstream file whose delete waits for its batch's billing, which reads it. */
interface DeferredDelete {
  provider: string
  providerFileId: string
}

/** Reports a failure that could not be shown to the caller, such as a failed clean-up. */
export type ErrorReporter = (error: unknown, context: string) => void

/** How uploads are estimated: the prices to cost them at, and how much of their text to tokenize. */
export interface UploadEstimates {
  pricing: Pick<Pricing, 'priceOf'>
  sampling: SamplingOptions
}

/** Files: upload, list, retrieve, delete and download, each scoped to the caller's own files. */
export class FileService {
  constructor(
    private readonly store: RecordStore,
    private readonly providers: ProviderRegistry,
    private readonly limits: UploadLimits,
    private readonly reportError: ErrorReporter,
    private readonly intents: IntentLog,
    private readonly idempotency: IdempotencyKeys,
    /** Whether a provider's own request limit (Azure's 100,000) applies, the user having set none. */
    private readonly providerRequestLimits = true,
    /** Estimates of batch input files as they stream in; none when off. */
    private readonly estimates?: UploadEstimates,
  ) {}

  /**
   * Streams a new file to its provider, validating a batch input file on the way, and records it.
   * Any failure (bad line, size, missing field, client gone, provider error) leaves no record and
   * no upstream file: the upload is written down as an intent first and the provider's file is
   * tagged with batchkit's id, so even a crash mid-upload leaves nothing the reconciler cannot delete.
   * With an `idempotencyKey`, a retry of the same bytes answers the first result and uploads nothing.
   * A filename over 255 bytes is refused before anything is read.
   */
  async create(principal: Principal, input: CreateFileInput, options: CreateFileOptions = {}): Promise<FileRecord> {
    if (input.filename !== undefined) {
      try {
        checkFilename(input.filename)
      } catch (error) {
        input.file.destroy()
        throw error
      }
    }
    const key = options.idempotencyKey
    if (key === undefined) return this.upload(newFileId(), principal, input)
    return this.idempotency.run(principal.owner, key, {
      newId: newFileId,
      create: async (id) => {
        const digest = new Digest()
        pipeline(input.file, digest, () => undefined)
        const file = await this.upload(id, principal, { ...input, file: digest })
        return { value: file, fingerprint: await fingerprintOf(input, digest) }
      },
      replay: async (id, first) => {
        // The key's first upload decides the answer; these bytes only show whether it is the same request.
        const digest = new Digest()
        await pipelineAsync(input.file, digest, new Writable({ write: (_chunk, _encoding, done) => done() }))
        if (first !== null && first !== (await fingerprintOf(input, digest))) throw keyReused()
        return this.retrieve(principal, id)
      },
      exists: async (id) => (await this.store.getFile(id)) !== undefined,
      settle: (intent) => this.settleIntent(intent),
    })
  }

  /**
   * Finishes or undoes an upload a crash cut short: a stored record gets its listing (the crash may
   * have come between the two); a file the provider holds under this id, with no record pointing to
   * it, is deleted (nobody can reach it). A delete a crash cut short is finished. Failures throw, to
   * be retried.
   */
  async settleIntent(intent: Intent): Promise<void> {
    if (intent.kind === 'file-delete') {
      await deleteUpstream(this.providers.get(intent.provider), intent.providerFileId)
      const left = await this.store.getFile(intent.fileId)
      if (left) await this.store.deleteFile(left)
      return
    }
    if (intent.kind !== 'file') throw new TypeError(`not a file intent: ${intent.id}`)
    const stored = await this.store.getFile(intent.id)
    if (stored) {
      await this.store.relistFile(stored)
      return
    }
    const provider = this.providers.get(intent.provider)
    const upstream = await provider.findFile(intent.id, searchSince(intent), intent.parts)
    if (upstream) await deleteUpstream(provider, upstream.id)
  }

  private async upload(id: string, principal: Principal, input: CreateFileInput): Promise<FileRecord> {
    const purpose = Promise.resolve(input.purpose).then(uploadPurposeOf)
    const expiresAfter = Promise.resolve(input.expiresAfter ?? null).then((value) =>
      validateExpiresAfter('expires_after', value),
    )
    const estimator = this.estimates ? new FileEstimator(this.estimates.sampling) : undefined
    const validator = new JsonlValidator(this.limits, purpose, estimator)
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
    const createdAtMs = Date.now()
    let hold: Awaited<ReturnType<IntentLog['begin']>>
    try {
      hold = await this.intents.begin({ kind: 'file', id, owner: principal.owner, provider: name, createdAtMs })
    } catch (error) {
      validator.destroy(error as Error)
      throw error
    }
    let uploaded: Awaited<ReturnType<typeof provider.uploadFile>>
    try {
      uploaded = await provider.uploadFile({
        body,
        filename: input.filename ?? 'file.jsonl',
        purpose,
        expiresAfter,
        signal: aborter.signal,
        tag: id,
        beforePart: (index) => this.intents.note(id, { parts: index + 1 }),
      })
    } catch (error) {
      validator.destroy()
      // Our own failure aborted the upload before its end; a provider's answer may have come after it was made.
      // Parts of a large file that could not be deleted again are left to the reconciler.
      const leftParts = error instanceof PartsLeftUpstream
      if (!leftParts && (failure !== undefined || refusedUpstream(error))) await this.endIntent(id, hold)
      else await hold.release()
      throw failure === undefined ? (leftParts ? error.cause : error) : asUploadError(failure)
    }

    try {
      const batchInput = validator.summary()
      const record: FileRecord = {
        id,
        owner: principal.owner,
        provider: name,
        providerFileId: uploaded.id,
        bytes: validator.bytes,
        createdAt: Math.floor(createdAtMs / 1000),
        createdAtMs,
        // The lifetime the provider gave, from our created_at (as OpenAI's is): the provider started its
        // clock a moment later, so the file is shown gone no later than it is.
        expiresAt:
          uploaded.expiresAt === null
            ? null
            : Math.floor(createdAtMs / 1000) + (uploaded.expiresAt - uploaded.createdAt),
        filename: input.filename ?? uploaded.filename,
        purpose: await purpose,
        batchInput,
        ...(batchInput && this.estimates && estimator ? { estimate: estimator.result(this.estimates.pricing) } : {}),
        batchId: null,
        modelRewrite:
          rewrite && providerModel && firstModel ? { model: firstModel, providerModel, exact: rewrite.exact } : null,
      }
      await this.store.addFile(record)
      await this.endIntent(id, hold)
      return record
    } catch (error) {
      const deleted = await attempt(deleteUpstream(provider, uploaded.id), (e) =>
        this.reportError(e, 'deleting an upstream file after a failed upload'),
      )
      // What could not be deleted now, the reconciler deletes once the intent's lease lapses.
      if (deleted) await this.endIntent(id, hold)
      else await hold.release()
      throw error
    }
  }

  private endIntent(id: string, hold: Awaited<ReturnType<IntentLog['begin']>>): Promise<void> {
    return this.intents.end(id, hold).catch((e) => this.reportError(e, `ending the intent of ${id}`))
  }

  /** The caller's file, or a 404 exactly like a missing one. */
  async retrieve(principal: Principal, id: string): Promise<FileRecord> {
    const file = await this.store.getFile(id)
    if (!file || file.owner !== principal.owner) throw notFound('file', id)
    return file
  }

  /**
   * What the caller's batch input file is expected to cost (worked out as it was uploaded); null for
   * a file that is not a batch input, one of an endpoint not billed by tokens, or one uploaded
   * while estimating was off.
   */
  async estimate(principal: Principal, id: string): Promise<FileEstimate | null> {
    return (await this.retrieve(principal, id)).estimate ?? null
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
    // A purpose batchkit never stores matches no record: the store can look for it all the same.
    const purpose = listPurposeOf(options.purpose) as FilePurpose | undefined
    const after = options.after === undefined ? undefined : await this.store.fileCursor(options.after)
    if (options.after !== undefined && (!after || after.owner !== principal.owner)) {
      throw invalidValue('after', `Invalid value for 'after': no file '${options.after}' to list after.`)
    }
    return this.store.listFiles(principal.owner, { purpose, after, limit, order })
  }

  /**
   * Deletes the file upstream and then its record. A batch's output or error file that is not billed
   * yet loses its record at once, but its provider copy stays until billing has read it, so a
   * delete can never change a bill.
   */
  async delete(principal: Principal, id: string): Promise<{ id: string; deleted: true }> {
    const file = await this.retrieve(principal, id)
    if (file.batchId !== null && !(await this.billed(file.batchId))) {
      const deferred: DeferredDelete = { provider: file.provider, providerFileId: file.providerFileId }
      await this.store.putRecord('deferred-delete', file.id, deferred)
      // Billing may have ended between the check and the write, and would not see this one.
      if (await this.billed(file.batchId)) await this.runDeferredDelete(file.id)
      await this.store.deleteFile(file)
    } else {
      await this.deleteNow(file)
    }
    return { id, deleted: true }
  }

  /**
   * Deletes the provider's copy of a file, then its record, written down first as an intent: a crash
   * between the two leaves the reconciler to finish the delete, never a record of a file the provider
   * no longer has. A provider's refusal changes nothing, and the client is told.
   */
  private async deleteNow(file: FileRecord): Promise<void> {
    const id = `delete:${file.id}`
    const hold = await this.intents.begin({
      kind: 'file-delete',
      id,
      owner: file.owner,
      provider: file.provider,
      createdAtMs: Date.now(),
      fileId: file.id,
      providerFileId: file.providerFileId,
    })
    try {
      await deleteUpstream(this.providers.get(file.provider), file.providerFileId)
    } catch (error) {
      if (refusedUpstream(error)) await this.endIntent(id, hold)
      else await hold.release()
      throw error
    }
    try {
      await this.store.deleteFile(file)
    } catch (error) {
      await hold.release()
      throw error
    }
    await this.endIntent(id, hold)
  }

  /** Deletes the provider's copy of a file whose delete waited for billing; the finisher calls it. */
  async runDeferredDelete(fileId: string): Promise<void> {
    const deferred = await this.store.getRecord<DeferredDelete>('deferred-delete', fileId)
    if (!deferred) return
    await deleteUpstream(this.providers.get(deferred.provider), deferred.providerFileId)
    // A delete killed between writing this down and dropping the record left the record behind.
    const left = await this.store.getFile(fileId)
    if (left) await this.store.deleteFile(left)
    await this.store.deleteRecord('deferred-delete', fileId)
  }

  private async billed(batchId: string): Promise<boolean> {
    return (await this.store.getRecord<BatchBilling>('billing', batchId)) !== undefined
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

/** Deletes a provider's file; one already gone (expired, deleted elsewhere) counts as deleted. */
async function deleteUpstream(provider: { deleteFile(id: string): Promise<void> }, providerFileId: string) {
  try {
    await provider.deleteFile(providerFileId)
  } catch (error) {
    if (!(isApiError(error) && error.code === 'upstream_not_found')) throw error
  }
}

/** Passes bytes through while hashing them: an upload's part of its idempotency fingerprint. */
class Digest extends Transform {
  private readonly hash = createHash('sha256')

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    callback(null, chunk)
  }

  /** The hex digest; call once the stream has ended. */
  digest(): string {
    return this.hash.digest('hex')
  }
}

/** An upload's fingerprint: its filename, purpose and bytes. */
async function fingerprintOf(input: CreateFileInput, digest: Digest): Promise<string> {
  const purpose = await input.purpose
  return createHash('sha256')
    .update(JSON.stringify([input.filename ?? null, purpose, digest.digest()]))
    .digest('hex')
}

/** Errors of the incoming stream that are not batchkit's own mean the upload did not arrive whole. */
function asUploadError(error: unknown): unknown {
  if (isApiError(error)) return error
  return new ApiError(400, 'The upload did not arrive whole: the request body was cut short or malformed.', {
    param: 'file',
    code: 'upload_incomplete',
  })
}
