import { createHash } from 'node:crypto'
import type { EventOutbox } from '../events/outbox.js'
import type { BatchCreatedEvent, BatchEndedEvent, BatchEndType } from '../events/types.js'
import { recordBatchFinished } from '../observability/telemetry.js'
import type { Pricing } from '../pricing/cost.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { RecordStore } from '../store/records.js'
import type { BatchBilling, BatchRecord, FileRecord } from '../types.js'
import { aggregateUsage, mergeUsageSummaries, type UsageSummary } from './aggregate.js'
import type { FinishBatch } from './tracker.js'

const END_TYPES: Record<string, BatchEndType> = {
  completed: 'batch_success',
  failed: 'batch_failed',
  cancelled: 'batch_cancelled',
  expired: 'batch_expired',
}

/** An event's id: derived from the batch and the kind of event, so every emission of it is the same event. */
export function eventId(batchId: string, type: string): string {
  return `evt_${createHash('sha256').update(`${batchId}\n${type}`).digest('hex').slice(0, 32)}`
}

/** The `acreate_batch` event of a new batch. */
export function createdEvent(batch: BatchRecord, input: FileRecord): BatchCreatedEvent {
  return {
    id: eventId(batch.id, 'acreate_batch'),
    type: 'acreate_batch',
    createdAt: batch.createdAt,
    ...eventBase(batch),
    requestCount: input.batchInput?.requests ?? 0,
    responseCost: 0,
  }
}

/**
 * What the tracker does with a batch that has ended: sum its output and error files once (the
 * billing record then stands for it), and emit its end event with what it cost.
 */
export function createFinisher(deps: {
  store: RecordStore
  providers: ProviderRegistry
  pricing: Pricing
  outbox: EventOutbox
}): FinishBatch {
  const { store, providers, pricing, outbox } = deps

  const summarize = async (batch: BatchRecord, fileId: string | null): Promise<UsageSummary | undefined> => {
    const file = fileId ? await store.getFile(fileId) : undefined
    if (!file) return undefined
    const download = await providers.get(file.provider).downloadFile(file.providerFileId)
    return aggregateUsage(download.body, pricing, { defaultModel: batch.model })
  }

  return async (batch) => {
    let billing = await store.getRecord<BatchBilling>('billing', batch.id)
    if (!billing) {
      const parts = await Promise.all([summarize(batch, batch.outputFileId), summarize(batch, batch.errorFileId)])
      const summary = mergeUsageSummaries(...parts.filter((part): part is UsageSummary => part !== undefined))
      billing = {
        byModel: summary.byModel,
        totals: summary.totals,
        unpricedModels: summary.unpricedModels,
        computedAt: Math.floor(Date.now() / 1000),
      }
      await store.putRecord('billing', batch.id, billing)
      recordBatchFinished({ provider: batch.provider, model: batch.model, status: batch.status }, billing)
    }
    await outbox.emit(endedEvent(batch, billing))
  }
}

function endedEvent(batch: BatchRecord, billing: BatchBilling): BatchEndedEvent {
  const type = END_TYPES[batch.status] as BatchEndType
  const endedAt = batch.completedAt ?? batch.failedAt ?? batch.cancelledAt ?? batch.expiredAt
  const { cost, ...usage } = billing.totals
  return {
    id: eventId(batch.id, type),
    type,
    createdAt: billing.computedAt,
    ...eventBase(batch),
    status: batch.status as BatchEndedEvent['status'],
    requestCounts: batch.requestCounts,
    usage,
    responseCost: cost,
    byModel: billing.byModel,
    unpricedModels: billing.unpricedModels,
    timings: {
      createdAt: batch.createdAt,
      inProgressAt: batch.inProgressAt,
      finalizingAt: batch.finalizingAt,
      endedAt,
      durationSeconds: endedAt === null ? null : endedAt - batch.createdAt,
    },
  }
}

function eventBase(batch: BatchRecord) {
  return {
    batchId: batch.id,
    owner: batch.owner,
    provider: batch.provider,
    model: batch.model,
    endpoint: batch.endpoint,
    metadata: batch.metadata,
  }
}
