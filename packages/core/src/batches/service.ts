import { ApiError, invalidValue, isApiError, notFound } from '../errors.js'
import type { ErrorReporter } from '../files/service.js'
import { derivedFileId, newBatchId } from '../ids.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { Provider, ProviderBatch } from '../providers/types.js'
import type { RecordStore } from '../store/records.js'
import {
  type BatchBilling,
  type BatchProgress,
  type BatchRecord,
  type FileRecord,
  type Page,
  type Principal,
  TERMINAL_STATUSES,
} from '../types.js'
import { mapConcurrently } from '../util/map-concurrently.js'
import { type CreateBatchInput, validateCreateBatch } from './validate.js'

export type { CreateBatchInput } from './validate.js'

/** Options of a batches list. */
export interface ListBatchesOptions {
  /** A batch id: the page starts after it. */
  after?: string
  /** 1 to 100. @default 20 */
  limit?: number
}

/** How many provider refreshes one list request runs at once. */
const LIST_REFRESH_CONCURRENCY = 8

/** What the rest of the kit hears from the batch service. */
export interface BatchLifecycle {
  /** After a new batch is stored; when it fails, the create is undone and fails too. */
  created(batch: BatchRecord, input: FileRecord): Promise<void>
  /** When a refresh sees a batch end (the tracker then bills it without waiting for its next poll). */
  ended(batch: BatchRecord): void
}

/**
 * Batches: create, retrieve, list and cancel, scoped to the caller's own batches. Reads refresh
 * unfinished batches from their provider, so a client never sees a stale status, register the
 * provider's output and error files under batchkit ids owned by the batch's owner, and attach the
 * usage and cost of batches that have been billed.
 */
export class BatchService {
  constructor(
    private readonly store: RecordStore,
    private readonly providers: ProviderRegistry,
    private readonly reportError: ErrorReporter,
    private readonly lifecycle: BatchLifecycle,
  ) {}

  /** Validates the request like OpenAI, starts the batch on the input file's provider, and records it. */
  async create(principal: Principal, input: CreateBatchInput): Promise<BatchRecord> {
    const request = validateCreateBatch(input)
    const file = await this.store.getFile(request.inputFileId)
    if (!file || file.owner !== principal.owner) {
      throw new ApiError(404, `No such File object: ${request.inputFileId}`, { param: 'input_file_id' })
    }
    if (file.purpose !== 'batch' || !file.batchInput) {
      throw invalidValue(
        'input_file_id',
        `File ${file.id} has purpose '${file.purpose}'; a batch needs a file uploaded with purpose 'batch'.`,
      )
    }
    if (file.batchInput.url !== request.endpoint) {
      throw invalidValue(
        'endpoint',
        `The endpoint '${request.endpoint}' does not match the url '${file.batchInput.url}' of the requests in ${file.id}.`,
      )
    }
    const provider = this.providers.get(file.provider)
    const id = newBatchId()
    const upstream = await provider.createBatch({ ...request, inputFileId: file.providerFileId, tag: id })
    const createdAtMs = Date.now()
    const batch: BatchRecord = {
      ...progressOf(
        upstream,
        redactor({ providerBatchId: upstream.id, id, providerInputFileId: file.providerFileId, inputFileId: file.id }),
      ),
      id,
      owner: principal.owner,
      provider: file.provider,
      providerBatchId: upstream.id,
      providerInputFileId: file.providerFileId,
      endpoint: request.endpoint,
      model: file.batchInput.model,
      inputFileId: file.id,
      completionWindow: '24h',
      metadata: request.metadata,
      createdAt: Math.floor(createdAtMs / 1000),
      createdAtMs,
      outputFileId: null,
      errorFileId: null,
    }
    try {
      await this.store.addBatch(batch)
      try {
        await this.lifecycle.created(batch, file)
      } catch (error) {
        await this.store
          .deleteBatch(batch)
          .catch((e) => this.reportError(e, 'deleting a batch record after a failed create'))
        throw error
      }
    } catch (error) {
      await provider
        .cancelBatch(upstream.id)
        .catch((e) => this.reportError(e, 'cancelling an upstream batch after a failed create'))
      throw error
    }
    return batch
  }

  /** The caller's batch, refreshed from its provider unless it has ended, with its usage and cost once billed. */
  async retrieve(principal: Principal, id: string): Promise<BatchRecord> {
    const [batch] = await this.withBilling([await this.refresh(await this.owned(principal, id))])
    return batch as BatchRecord
  }

  /**
   * A page of the caller's batches, newest first, each refreshed from its provider; a batch whose
   * refresh fails is shown as last stored, and the failure is reported.
   */
  async list(principal: Principal, options: ListBatchesOptions = {}): Promise<Page<BatchRecord>> {
    const limit = options.limit ?? 20
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidValue('limit', `Invalid value for 'limit': ${limit}. It must be an integer from 1 to 100.`)
    }
    const after = options.after === undefined ? undefined : await this.store.getBatch(options.after)
    if (options.after !== undefined && (!after || after.owner !== principal.owner)) {
      throw invalidValue('after', `Invalid value for 'after': no batch '${options.after}' to list after.`)
    }
    const page = await this.store.listBatches(principal.owner, { after, limit })
    const data = await mapConcurrently(page.data, LIST_REFRESH_CONCURRENCY, (batch) =>
      // One provider hiccup must not hide the whole list: that batch is shown as last seen.
      this.refresh(batch).catch((error) => {
        this.reportError(error, `refreshing ${batch.id} for a list`)
        return batch
      }),
    )
    return { data: await this.withBilling(data), hasMore: page.hasMore }
  }

  /** Asks the provider to cancel; a batch that has already ended answers 409, one already cancelled as it is. */
  async cancel(principal: Principal, id: string): Promise<BatchRecord> {
    const batch = await this.refresh(await this.owned(principal, id))
    if (batch.status === 'cancelled' || batch.status === 'cancelling') return batch
    if (TERMINAL_STATUSES.has(batch.status)) throw cannotCancel(batch.status)
    const provider = this.providers.get(batch.provider)
    let upstream: ProviderBatch
    try {
      upstream = await provider.cancelBatch(batch.providerBatchId)
    } catch (error) {
      // The batch ended between our refresh and the cancel: show the client why.
      if (isApiError(error) && error.status === 409) return this.refreshOrThrow(batch, error)
      throw error
    }
    const [cancelled] = await this.withBilling([await this.apply(batch, provider, upstream)])
    return cancelled as BatchRecord
  }

  /** Brings a batch up to date with its provider; a batch that has ended is returned as stored. */
  async refresh(batch: BatchRecord): Promise<BatchRecord> {
    if (TERMINAL_STATUSES.has(batch.status)) return batch
    const provider = this.providers.get(batch.provider)
    return this.apply(batch, provider, await provider.retrieveBatch(batch.providerBatchId))
  }

  private async refreshOrThrow(batch: BatchRecord, conflict: ApiError): Promise<BatchRecord> {
    const fresh = await this.refresh(batch)
    if (TERMINAL_STATUSES.has(fresh.status) && fresh.status !== 'cancelled') throw cannotCancel(fresh.status)
    if (fresh.status === 'cancelled' || fresh.status === 'cancelling') return fresh
    throw conflict
  }

  private async owned(principal: Principal, id: string): Promise<BatchRecord> {
    const batch = await this.store.getBatch(id)
    if (!batch || batch.owner !== principal.owner) throw notFound('batch', id)
    return batch
  }

  private async apply(batch: BatchRecord, provider: Provider, upstream: ProviderBatch): Promise<BatchRecord> {
    const [outputFileId, errorFileId] = await Promise.all([
      this.registerFile(batch, provider, upstream.outputFileId, 'output'),
      this.registerFile(batch, provider, upstream.errorFileId, 'error'),
    ])
    const next: BatchRecord = { ...batch, ...progressOf(upstream, redactor(batch)), outputFileId, errorFileId }
    if (changed(batch, next)) await this.store.updateBatch(next)
    if (TERMINAL_STATUSES.has(next.status)) this.lifecycle.ended(next)
    return next
  }

  /** Attaches the billing of batches that have ended and been billed. */
  private async withBilling(batches: BatchRecord[]): Promise<BatchRecord[]> {
    const ended = batches.filter((batch) => TERMINAL_STATUSES.has(batch.status))
    const billings = await this.store.getRecords<BatchBilling>(
      'billing',
      ended.map((batch) => batch.id),
    )
    const byId = new Map(ended.map((batch, i) => [batch.id, billings[i] ?? null]))
    return batches.map((batch) => (byId.has(batch.id) ? { ...batch, billing: byId.get(batch.id) } : batch))
  }

  /** Records a provider's output or error file under a batchkit id, once, whichever instance sees it first. */
  private async registerFile(
    batch: BatchRecord,
    provider: Provider,
    providerFileId: string | null,
    kind: 'output' | 'error',
  ): Promise<string | null> {
    if (!providerFileId) return null
    const id = derivedFileId(batch.id, providerFileId)
    if (await this.store.getFile(id)) return id
    const upstream = await provider.retrieveFile(providerFileId)
    const file: FileRecord = {
      id,
      owner: batch.owner,
      provider: batch.provider,
      providerFileId,
      bytes: upstream.bytes,
      createdAt: upstream.createdAt,
      createdAtMs: upstream.createdAt * 1000,
      expiresAt: upstream.expiresAt,
      filename: `${batch.id}_${kind}.jsonl`,
      purpose: 'batch_output',
      batchInput: null,
      batchId: batch.id,
    }
    await this.store.addFile(file)
    return id
  }
}

type BatchIds = Pick<BatchRecord, 'id' | 'providerBatchId' | 'inputFileId' | 'providerInputFileId'>

/** Provider account ids (`org-…`, `proj_…`) that providers put in messages and other tenants must not see. */
const ACCOUNT_IDS = /\b(?:org|proj)[-_][A-Za-z0-9]{4,}\b/g

/** Replaces a batch's provider ids in a provider's text with batchkit's own, and hides account ids. */
function redactor(ids: BatchIds): (text: string | null) => string | null {
  return (text) =>
    text === null
      ? null
      : text
          .replaceAll(ids.providerInputFileId, ids.inputFileId)
          .replaceAll(ids.providerBatchId, ids.id)
          .replace(ACCOUNT_IDS, '[account]')
}

/** The changing part of a batch as its provider reports it. */
function progressOf(upstream: ProviderBatch, redact: (text: string | null) => string | null): BatchProgress {
  return {
    status: upstream.status,
    inProgressAt: upstream.inProgressAt,
    expiresAt: upstream.expiresAt,
    finalizingAt: upstream.finalizingAt,
    completedAt: upstream.completedAt,
    failedAt: upstream.failedAt,
    expiredAt: upstream.expiredAt,
    cancellingAt: upstream.cancellingAt,
    cancelledAt: upstream.cancelledAt,
    requestCounts: upstream.requestCounts,
    errors: upstream.errors?.map((e) => ({ ...e, message: redact(e.message) })) ?? null,
    usage: upstream.usage,
  }
}

/** Whether a refresh changed anything worth writing: only these fields come from the provider. */
function changed(before: BatchRecord, after: BatchRecord): boolean {
  return (
    before.status !== after.status ||
    before.outputFileId !== after.outputFileId ||
    before.errorFileId !== after.errorFileId ||
    before.requestCounts.total !== after.requestCounts.total ||
    before.requestCounts.completed !== after.requestCounts.completed ||
    before.requestCounts.failed !== after.requestCounts.failed ||
    JSON.stringify([before.errors, before.usage, before.expiresAt]) !==
      JSON.stringify([after.errors, after.usage, after.expiresAt])
  )
}

function cannotCancel(status: string): ApiError {
  return new ApiError(409, `Cannot cancel a batch with status '${status}'.`, { headers: { 'x-should-retry': 'false' } })
}
