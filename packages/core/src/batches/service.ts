import { createHash } from 'node:crypto'
import type { Budgets } from '../budgets/budgets.js'
import { ApiError, invalidValue, isApiError, notFound } from '../errors.js'
import type { ErrorReporter } from '../files/service.js'
import { derivedFileId, newBatchId } from '../ids.js'
import type { IdempotencyKeys } from '../intents/idempotency.js'
import { type Intent, type IntentLog, searchSince } from '../intents/intent-log.js'
import type { ProviderRegistry } from '../providers/registry.js'
import { partIdsOf } from '../providers/split/part-ids.js'
import { PartsLeftUpstream } from '../providers/split/upload-parts.js'
import type { Provider, ProviderBatch, ProviderBatchRequest } from '../providers/types.js'
import { refusedUpstream } from '../providers/upstream-errors.js'
import type { RecordStore } from '../store/records.js'
import {
  type BatchBilling,
  type BatchDraft,
  type BatchErrorEntry,
  type BatchProgress,
  type BatchRecord,
  type BatchStatus,
  type FileRecord,
  type Page,
  type Principal,
  TERMINAL_STATUSES,
} from '../types.js'
import { attempt } from '../util/attempt.js'
import type { FailedRequests } from './failed-requests.js'
import type { FreshnessWindow } from './freshness.js'
import { type CreateBatchInput, type ValidBatchInput, validateCreateBatch } from './validate.js'

export type { CreateBatchInput } from './validate.js'

/** Options of a batches list. */
export interface ListBatchesOptions {
  /** A batch id: the page starts after it. */
  after?: string
  /** 1 to 100. @default 20 */
  limit?: number
}

/** Options of a create. */
export interface CreateOptions {
  /** The client's `Idempotency-Key`: a retry with the same key and request answers the first result. */
  idempotencyKey?: string
}

/** What the rest of the kit hears from the batch service. */
export interface BatchLifecycle {
  /** After a new batch is stored; when it fails, the create is undone and fails too. Safe to repeat. */
  created(batch: BatchRecord, requestCount: number): Promise<void>
  /** Settles an ended batch's billing, once however many ask; resolves with it. */
  settle(batch: BatchRecord): Promise<BatchBilling>
}

/**
 * Batches: create, retrieve, list and cancel, scoped to the caller's own batches. Reads answer from
 * the store at once; an unfinished batch older than the freshness window is refreshed from its
 * provider in the background, once per window whoever reads it. A refresh registers the provider's
 * output and error files under batchkit ids owned by the batch's owner. A batch that has ended is
 * shown ended only with its usage and cost settled; until then it shows `finalizing`.
 */
export class BatchService {
  constructor(
    private readonly store: RecordStore,
    private readonly providers: ProviderRegistry,
    private readonly reportError: ErrorReporter,
    private readonly lifecycle: BatchLifecycle,
    private readonly intents: IntentLog,
    private readonly idempotency: IdempotencyKeys,
    private readonly freshness: FreshnessWindow,
    private readonly failedRequests: FailedRequests,
    /** Spending limits each new batch's estimate is held against (when on), and where holds are let go. */
    private readonly budgets?: Budgets,
  ) {}

  /** Background refreshes and billings started by reads, by batch id, so each runs once at a time here. */
  private readonly background = new Map<string, Promise<void>>()

  /**
   * Validates the request like OpenAI, starts the batch on the input file's provider, and records it.
   * The batch is written down as an intent under its batchkit id before the provider is asked, and the
   * provider's batch is tagged with that id, so a crash at any point leaves something the reconciler
   * can adopt. With an `idempotencyKey`, a retry answers the first result instead of creating again.
   */
  async create(principal: Principal, input: CreateBatchInput, options: CreateOptions = {}): Promise<BatchRecord> {
    const request = validateCreateBatch(input)
    const key = options.idempotencyKey
    if (key === undefined) return this.createAs(newBatchId(), principal, request)
    const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex')
    return this.idempotency.run(principal.owner, key, {
      fingerprint,
      newId: newBatchId,
      create: async (id) => ({ value: await this.createAs(id, principal, request), fingerprint }),
      replay: (id) => this.retrieve(principal, id),
      exists: async (id) => (await this.store.getBatch(id)) !== undefined,
      settle: (intent) => this.settleIntent(intent),
    })
  }

  /**
   * Finishes a batch create that a crash cut short: a stored batch gets its listing, its
   * `acreate_batch` and tracking (all safe to repeat); a batch the provider has under this id is adopted; nothing
   * upstream means the create never happened. Provider or store failures throw, to be retried.
   */
  async settleIntent(intent: Intent): Promise<void> {
    if (intent.kind !== 'batch') throw new TypeError(`not a batch intent: ${intent.id}`)
    const stored = await this.store.getBatch(intent.id)
    if (stored) {
      await this.store.relistBatch(stored)
      await this.lifecycle.created(stored, intent.batch.requestCount)
      return
    }
    const { batch: draft } = intent
    const upstream = await this.providers
      .get(intent.provider)
      .findBatch(intent.id, searchSince(intent), requestOf(draft))
    if (!upstream) {
      // The create never happened: what it held of the owner's budget goes back.
      await this.releaseHold(draft)
      return
    }
    const batch = recordOf(intent.batch, upstream, Date.now())
    await this.store.addBatch(batch)
    await this.lifecycle.created(batch, intent.batch.requestCount)
  }

  /**
   * Creates the batch on its input file; the error file of a finished batch stands for a new input
   * file of the requests that failed (see {@link FailedRequests}).
   */
  private async createAs(id: string, principal: Principal, request: ValidBatchInput): Promise<BatchRecord> {
    const file = await this.store.getFile(request.inputFileId)
    if (!file || file.owner !== principal.owner) {
      throw new ApiError(404, `No such File object: ${request.inputFileId}`, { param: 'input_file_id' })
    }
    const failedOf = await this.failedRequests.batchOfErrorFile(file)
    if (!failedOf) return this.createOn(id, principal, request, file)
    if (failedOf.endpoint !== request.endpoint) {
      throw invalidValue(
        'endpoint',
        `The endpoint '${request.endpoint}' does not match the endpoint '${failedOf.endpoint}' of ${failedOf.id}, whose failed requests ${file.id} names.`,
      )
    }
    return this.failedRequests.run(principal, failedOf, (input) =>
      this.createOn(id, principal, { ...request, inputFileId: input.id }, input),
    )
  }

  private async createOn(
    id: string,
    principal: Principal,
    request: ValidBatchInput,
    file: FileRecord,
  ): Promise<BatchRecord> {
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
    const createdAtMs = Date.now()
    const draft: BatchDraft = {
      id,
      owner: principal.owner,
      provider: file.provider,
      providerInputFileId: file.providerFileId,
      endpoint: request.endpoint,
      model: file.batchInput.model,
      inputFileId: file.id,
      completionWindow: '24h',
      metadata: request.metadata,
      createdAt: Math.floor(createdAtMs / 1000),
      createdAtMs,
      estimate: file.estimate ?? null,
      budget: this.budgets?.holdFor(file.estimate, createdAtMs) ?? null,
      requestCount: file.batchInput.requests,
      outputExpiresAfter: request.outputExpiresAfter,
    }
    const hold = await this.intents.begin({
      kind: 'batch',
      id,
      owner: principal.owner,
      provider: file.provider,
      createdAtMs,
      batch: draft,
    })
    if (this.budgets && draft.budget) {
      try {
        // After the intent, so a crash from here on leaves the reconciler a hold to let go.
        await this.budgets.reserve(principal.owner, id, draft.budget, file.estimate)
      } catch (error) {
        // Refused: nothing was held. A store failure may have held it all the same: the reconciler lets it go.
        if (isApiError(error) && error.status < 500)
          await this.intents.end(id, hold).catch((e) => this.reportError(e, `ending the intent of ${id}`))
        else await hold.release()
        throw error
      }
    }
    let upstream: ProviderBatch
    try {
      upstream = await provider.createBatch(requestOf(draft))
    } catch (error) {
      // Only a refusal proves nothing was made; after a timeout the reconciler asks the provider.
      if (
        refusedUpstream(error) &&
        (await attempt(this.releaseHold(draft), (e) => this.reportError(e, `releasing the budget of ${id}`)))
      )
        await this.intents.end(id, hold).catch((e) => this.reportError(e, `ending the intent of ${id}`))
      else await hold.release()
      throw error instanceof PartsLeftUpstream ? error.cause : error
    }
    const batch = recordOf(draft, upstream, createdAtMs)
    try {
      await this.store.addBatch(batch)
      await this.lifecycle.created(batch, draft.requestCount)
    } catch (error) {
      // The client is told the create failed, so undo it; whatever cannot be undone, the reconciler adopts.
      const undone = await Promise.all([
        attempt(provider.cancelBatch(upstream.id), (e) =>
          this.reportError(e, 'cancelling an upstream batch after a failed create'),
        ),
        attempt(this.store.deleteBatch(batch), (e) =>
          this.reportError(e, 'deleting a batch record after a failed create'),
        ),
      ])
      const released =
        undone.every(Boolean) &&
        (await attempt(this.releaseHold(draft), (e) => this.reportError(e, `releasing the budget of ${id}`)))
      if (released) await this.intents.end(id, hold).catch(() => hold.release())
      else await hold.release()
      throw error
    }
    // The batch exists and is followed: a failure to forget the intent only leaves the reconciler a no-op.
    await this.intents.end(id, hold).catch((e) => this.reportError(e, `ending the intent of ${id}`))
    return batch
  }

  /**
   * The caller's batch as stored, with its usage and cost once billed; if it is older than the
   * freshness window, a background refresh brings it up to date for the next read.
   */
  async retrieve(principal: Principal, id: string): Promise<BatchRecord> {
    const batch = await this.owned(principal, id)
    return this.present([batch], await this.billings([batch]))[0] as BatchRecord
  }

  /**
   * A page of the caller's batches, newest first, as stored; the ones older than the freshness
   * window are refreshed in the background for the next read.
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
    return { data: this.present(page.data, await this.billings(page.data)), hasMore: page.hasMore }
  }

  /**
   * Asks the provider to cancel, at once, and shows the batch `cancelling`; a batch that has already
   * ended answers 409, one already cancelled (or cancelling) as it is.
   */
  async cancel(principal: Principal, id: string): Promise<BatchRecord> {
    let batch = await this.owned(principal, id)
    for (;;) {
      if (batch.status === 'cancelling') return batch
      if (TERMINAL_STATUSES.has(batch.status)) {
        // Shown as the client would read it: an end whose bill is not settled is still finishing.
        const [shown] = this.present([batch], await this.billings([batch])) as [BatchRecord]
        if (shown.status === 'cancelled' || shown.status === 'cancelling') return shown
        throw cannotCancel(shown.status)
      }
      const provider = this.providers.get(batch.provider)
      const askedAtMs = Date.now()
      let upstream: ProviderBatch
      try {
        upstream = await provider.cancelBatch(batch.providerBatchId)
      } catch (error) {
        // The batch ended upstream before the store heard of it: show the client why.
        if (isApiError(error) && error.status === 409) return this.refreshOrThrow(batch, error)
        throw error
      }
      // The provider took the cancel: whatever its answer says yet, the batch is on its way to cancelled.
      const accepted = TERMINAL_STATUSES.has(upstream.status) ? upstream : cancellingOf(upstream)
      const cancelled = await this.apply(batch, provider, accepted, askedAtMs)
      if (cancelled.providerBatchId === upstream.id || cancelled.providerBatchId === batch.providerBatchId) {
        return this.present([cancelled], await this.billings([cancelled]))[0] as BatchRecord
      }
      // A part was submitted again meanwhile (see QueueRetryOptions): cancel what runs now.
      batch = cancelled
    }
  }

  /** Lets a create's hold on its owner's budget go: the batch was never made (or was undone). Safe to repeat. */
  private async releaseHold(draft: BatchDraft): Promise<void> {
    if (draft.budget && this.budgets) await this.budgets.release(draft.owner, draft.id, draft.budget)
  }

  /**
   * Brings a batch up to date with its provider now; a batch that has ended is returned as stored.
   * `resubmit` (only for the one process following the batch) submits again the parts the provider
   * turned down for a full queue that are now due.
   */
  async refresh(batch: BatchRecord, options: { resubmit?: boolean } = {}): Promise<BatchRecord> {
    if (TERMINAL_STATUSES.has(batch.status)) return batch
    const provider = this.providers.get(batch.provider)
    const askedAtMs = Date.now()
    const upstream = await provider.retrieveBatch(
      batch.providerBatchId,
      options.resubmit ? requestOf(batch) : undefined,
    )
    const stored = await this.apply(batch, provider, upstream, askedAtMs)
    if (upstream.id !== batch.providerBatchId && stored.providerBatchId !== upstream.id) {
      // A part was submitted again while the batch was being cancelled: that submission is cancelled too.
      if (stored.status === 'cancelling' || stored.status === 'cancelled') {
        await attempt(provider.cancelBatch(upstream.id), (e) =>
          this.reportError(e, `cancelling a part of ${batch.id} submitted again during its cancel`),
        )
      }
    }
    return stored
  }

  /**
   * Refreshes a batch from its provider if it is older than the freshness window and no other reader
   * or instance has this window's refresh; else returns it as it is.
   */
  async refreshIfStale(batch: BatchRecord): Promise<BatchRecord> {
    if (!this.freshness.stale(batch) || !(await this.freshness.claim(batch.id))) return batch
    return this.refresh(batch)
  }

  /** Resolves once the background refreshes and billings that reads have started so far are done. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all(this.background.values())
  }

  private async refreshOrThrow(batch: BatchRecord, conflict: ApiError): Promise<BatchRecord> {
    const fresh = await this.refresh(batch)
    if (TERMINAL_STATUSES.has(fresh.status) && fresh.status !== 'cancelled') throw cannotCancel(fresh.status)
    if (fresh.status === 'cancelled' || fresh.status === 'cancelling')
      return this.present([fresh], await this.billings([fresh]))[0] as BatchRecord
    throw conflict
  }

  /**
   * Runs `work` for a batch in the background unless it already runs in this process; its failure is
   * reported, and the next read (or the tracker) tries again.
   */
  private inBackground(batchId: string, context: string, work: () => Promise<unknown>): void {
    if (this.background.has(batchId)) return
    const job = work()
      .then(() => undefined)
      .catch((error) => this.reportError(error, `${context} ${batchId}`))
      .finally(() => this.background.delete(batchId))
    this.background.set(batchId, job)
  }

  private async owned(principal: Principal, id: string): Promise<BatchRecord> {
    const batch = await this.store.getBatch(id)
    if (!batch || batch.owner !== principal.owner) throw notFound('batch', id)
    return batch
  }

  /**
   * Stores what the provider said of a batch, over the batch as it is stored now: an answer that
   * arrives after a newer one (a refresh overtaken by a cancel or another refresh) never moves a
   * batch back, and an answer about provider batches that no longer run it (a part was submitted
   * again, or stopped by a cancel, since it was asked) is dropped.
   */
  private async apply(
    batch: BatchRecord,
    provider: Provider,
    upstream: ProviderBatch,
    askedAtMs: number,
  ): Promise<BatchRecord> {
    const current = (await this.store.getBatch(batch.id)) ?? batch
    if (current.providerBatchId !== batch.providerBatchId) return current
    // New work upstream (a part submitted again, a follow-up round) may take a finalizing batch back in
    // progress; nothing takes back a cancel or an end.
    const newWork = upstream.id !== current.providerBatchId && STAGE[current.status] < STAGE.cancelling
    if (STAGE[current.status] > STAGE[upstream.status] && !newWork) return current
    const [outputFileId, errorFileId] = await Promise.all([
      this.registerFile(current, provider, upstream.outputFileId, 'output'),
      this.registerFile(current, provider, upstream.errorFileId, 'error'),
    ])
    const next: BatchRecord = {
      ...current,
      ...progressOf(upstream, idsOf(current, upstream)),
      providerBatchId: upstream.id,
      nextSubmitAtMs: upstream.nextSubmitAtMs ?? null,
      outputFileId,
      errorFileId,
      providerOutputFileId: upstream.outputFileId ?? current.providerOutputFileId ?? null,
      providerErrorFileId: upstream.errorFileId ?? current.providerErrorFileId ?? null,
      refreshedAtMs: Math.max(askedAtMs, current.refreshedAtMs ?? 0),
    }
    await this.store.updateBatch(next)
    return next
  }

  /** The stored billings of those of `batches` that have ended, by id. */
  private async billings(batches: BatchRecord[]): Promise<Map<string, BatchBilling | undefined>> {
    const ids = batches.filter((batch) => TERMINAL_STATUSES.has(batch.status)).map((batch) => batch.id)
    const found = await this.store.getRecords<BatchBilling>('billing', ids)
    return new Map(ids.map((id, i) => [id, found[i]]))
  }

  /**
   * What a client is shown, from the store alone: a batch that has ended carries its billing, and
   * one not billed yet is shown as still finishing while its billing runs in the background, so no
   * answer ever says `completed` without the usage and cost that go with it. Stale unfinished
   * batches get a background refresh.
   */
  private present(batches: BatchRecord[], billings: Map<string, BatchBilling | undefined>): BatchRecord[] {
    return batches.map((batch) => {
      if (!TERMINAL_STATUSES.has(batch.status)) {
        if (this.freshness.stale(batch)) this.inBackground(batch.id, 'refreshing', () => this.refreshAndSettle(batch))
        return batch
      }
      const billing = billings.get(batch.id)
      // `billing` first: stored records never carry it, and on Node 20 a field added after a spread costs microseconds.
      if (billing) return { billing, ...batch }
      this.inBackground(batch.id, 'settling the billing of', () => this.lifecycle.settle(batch))
      return settling(batch)
    })
  }

  /** A read's background refresh: a batch found ended is billed at once, so the next read shows its end. */
  private async refreshAndSettle(batch: BatchRecord): Promise<void> {
    const fresh = await this.refreshIfStale(batch)
    if (TERMINAL_STATUSES.has(fresh.status)) await this.lifecycle.settle(fresh)
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
    const stored = await this.store.getFile(id)
    if (stored) {
      await this.store.relistFile(stored)
      return id
    }
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

/** The ids a provider's text about `batch` may name, its batch now being `upstream`. */
function idsOf(
  batch: Pick<BatchRecord, 'id' | 'inputFileId' | 'providerInputFileId'>,
  upstream: ProviderBatch,
): BatchIds {
  return {
    id: batch.id,
    providerBatchId: upstream.id,
    inputFileId: batch.inputFileId,
    providerInputFileId: batch.providerInputFileId,
  }
}

/** Provider account ids (`org-…`, `proj_…`) that providers put in messages and other tenants must not see. */
const ACCOUNT_IDS = /\b(?:org|proj)[-_][A-Za-z0-9]{4,}\b/g

/** Replaces a batch's provider ids (its input file's parts' too) in a provider's text with batchkit's own, and hides account ids. */
function redactor(ids: BatchIds): (text: string | null) => string | null {
  // An input file kept upstream in parts: a provider names the part its batch ran on.
  const inputs = [ids.providerInputFileId, ...partIdsOf(ids.providerInputFileId)]
  return (text) =>
    text === null
      ? null
      : inputs
          .reduce((redacted, input) => redacted.replaceAll(input, ids.inputFileId), text)
          .replaceAll(ids.providerBatchId, ids.id)
          .replace(ACCOUNT_IDS, '[account]')
}

/** What the provider is asked to run for a batch: its create, tagged with the batch's id. */
function requestOf(batch: BatchDraft | BatchRecord): ProviderBatchRequest {
  return {
    inputFileId: batch.providerInputFileId,
    endpoint: batch.endpoint,
    completionWindow: batch.completionWindow,
    metadata: batch.metadata,
    outputExpiresAfter: batch.outputExpiresAfter ?? null,
    tag: batch.id,
  }
}

/** A new batch's record: the draft its intent holds, and what the provider answered when asked at `askedAtMs`. */
function recordOf(draft: BatchDraft, upstream: ProviderBatch, askedAtMs: number): BatchRecord {
  // One literal, field by field: on Node 20, spreading an object into a literal and then adding fields it
  // lacks costs about a microsecond per added field (30 µs here), and this runs on every create.
  const progress = progressOf(upstream, idsOf(draft, upstream))
  const record = {
    status: progress.status,
    inProgressAt: progress.inProgressAt,
    expiresAt: progress.expiresAt,
    finalizingAt: progress.finalizingAt,
    completedAt: progress.completedAt,
    failedAt: progress.failedAt,
    expiredAt: progress.expiredAt,
    cancellingAt: progress.cancellingAt,
    cancelledAt: progress.cancelledAt,
    requestCounts: progress.requestCounts,
    errors: progress.errors,
    usage: progress.usage,
    id: draft.id,
    owner: draft.owner,
    provider: draft.provider,
    providerInputFileId: draft.providerInputFileId,
    endpoint: draft.endpoint,
    model: draft.model,
    inputFileId: draft.inputFileId,
    completionWindow: draft.completionWindow,
    metadata: draft.metadata,
    createdAt: draft.createdAt,
    createdAtMs: draft.createdAtMs,
    estimate: draft.estimate,
    budget: draft.budget,
    outputExpiresAfter: draft.outputExpiresAfter,
    providerBatchId: upstream.id,
    outputFileId: null,
    errorFileId: null,
    refreshedAtMs: askedAtMs,
    nextSubmitAtMs: upstream.nextSubmitAtMs ?? null,
  }
  // Every field of the draft but its request count, and of the progress, is the record's: a new one cannot be forgotten here.
  return record satisfies BatchRecord & Record<keyof Omit<BatchDraft, 'requestCount'> | keyof BatchProgress, unknown>
}

/** How far along a status is: a provider's answer never moves a stored batch to an earlier stage. */
const STAGE: Record<BatchStatus, number> = {
  validating: 0,
  in_progress: 1,
  finalizing: 2,
  cancelling: 3,
  completed: 4,
  failed: 4,
  expired: 4,
  cancelled: 4,
}

/** A batch whose cancel the provider has taken, shown `cancelling` until the provider says it ended. */
function cancellingOf(upstream: ProviderBatch): ProviderBatch {
  return { ...upstream, status: 'cancelling', cancellingAt: upstream.cancellingAt ?? Math.floor(Date.now() / 1000) }
}

/**
 * An ended batch whose billing is not settled, as a client sees it: still cancelling, or finalizing,
 * with no end time yet, so a client keeps polling and never reads an end without its cost.
 */
function settling(batch: BatchRecord): BatchRecord {
  const cancelled = batch.status === 'cancelled'
  return {
    // First, as in `present`: a stored record never carries a billing of its own.
    billing: null,
    ...batch,
    status: cancelled ? 'cancelling' : 'finalizing',
    finalizingAt: cancelled
      ? batch.finalizingAt
      : (batch.finalizingAt ?? batch.completedAt ?? batch.failedAt ?? batch.expiredAt ?? batch.createdAt),
    cancellingAt: cancelled ? (batch.cancellingAt ?? batch.createdAt) : batch.cancellingAt,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancelledAt: null,
  }
}

/** The changing part of a batch as its provider reports it. */
function progressOf(upstream: ProviderBatch, ids: BatchIds): BatchProgress {
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
    errors: upstream.errors ? redactErrors(upstream.errors, ids) : null,
    usage: upstream.usage,
  }
}

/** A provider's batch errors, with its ids in their messages made batchkit's (see {@link redactor}). */
function redactErrors(errors: BatchErrorEntry[], ids: BatchIds): BatchErrorEntry[] {
  const redact = redactor(ids)
  return errors.map((e) => ({ ...e, message: redact(e.message) }))
}

function cannotCancel(status: string): ApiError {
  return new ApiError(409, `Cannot cancel a batch with status '${status}'.`, { headers: { 'x-should-retry': 'false' } })
}
