import { createHash } from 'node:crypto'
import type { Budgets } from '../budgets/budgets.js'
import type { EventOutbox } from '../events/outbox.js'
import type { BatchCreatedEvent, BatchEndedEvent, BatchEndType } from '../events/types.js'
import { recordBatchFinished } from '../observability/telemetry.js'
import type { Pricing } from '../pricing/cost.js'
import type { ProviderRegistry } from '../providers/registry.js'
import type { RecordStore } from '../store/records.js'
import type { BatchBilling, BatchRecord } from '../types.js'
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

/** The `acreate_batch` event of a new batch of `requestCount` requests. */
export function createdEvent(batch: BatchRecord, requestCount: number): BatchCreatedEvent {
  return {
    id: eventId(batch.id, 'acreate_batch'),
    type: 'acreate_batch',
    createdAt: batch.createdAt,
    ...eventBase(batch),
    requestCount,
    responseCost: 0,
  }
}

/**
 * What the tracker does with a batch that has ended: sum its output and error files once, as the
 * provider holds them (a tenant deleting its copy changes nothing), store the billing record that
 * then stands for the batch, let go of the provider files whose delete waited for it, and emit the
 * end event with what it cost.
 */
export function createFinisher(deps: {
  store: RecordStore
  providers: ProviderRegistry
  pricing: Pricing
  outbox: EventOutbox
  /** Runs a tenant's delete of an output or error file that waited for billing. */
  runDeferredDelete(fileId: string): Promise<void>
  /** Where a batch's hold on its owner's budget is settled to what it cost. */
  budgets?: Budgets
}): FinishBatch {
  const { store, providers, pricing, outbox } = deps

  const summarize = async (
    batch: BatchRecord,
    providerFileId: string | null | undefined,
    fileId: string | null,
  ): Promise<UsageSummary | undefined> => {
    // Records made before batches kept the provider's ids name them only through the file record.
    const id = providerFileId ?? (fileId ? (await store.getFile(fileId))?.providerFileId : undefined)
    if (!id) return undefined
    const download = await providers.get(batch.provider).downloadFile(id)
    return aggregateUsage(download.body, pricing, { defaultModel: batch.model })
  }

  return async (batch) => {
    let billing = await store.getRecord<BatchBilling>('billing', batch.id)
    if (!billing) {
      const parts = await Promise.all([
        summarize(batch, batch.providerOutputFileId, batch.outputFileId),
        summarize(batch, batch.providerErrorFileId, batch.errorFileId),
      ])
      const summary = mergeUsageSummaries(...parts.filter((part): part is UsageSummary => part !== undefined))
      billing = {
        byModel: summary.byModel,
        totals: summary.totals,
        unpricedModels: summary.unpricedModels,
        computedAt: Math.floor(Date.now() / 1000),
      }
      await store.putRecord('billing', batch.id, billing)
      recordBatchFinished(
        {
          provider: batch.provider,
          providerKind: providers.get(batch.provider).kind,
          model: batch.model,
          endpoint: batch.endpoint,
          status: batch.status,
        },
        billing,
      )
    }
    // Every time, like what follows: a crash after the billing record was stored must not skip it.
    await store.listBilled(batch, billing.computedAt * 1000)
    if (batch.budget) await deps.budgets?.settle(batch.owner, batch.id, batch.budget, billing.totals.cost)
    for (const fileId of [batch.outputFileId, batch.errorFileId]) {
      if (fileId) await deps.runDeferredDelete(fileId)
    }
    await outbox.emit(endedEvent(batch, billing))
    return billing
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
