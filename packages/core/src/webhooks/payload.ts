import { createHash } from 'node:crypto'
import type { BatchEndType, BatchEvent } from '../events/types.js'

/** The webhook event types batchkit sends: OpenAI's batch events. */
export type BatchWebhookType = 'batch.completed' | 'batch.failed' | 'batch.cancelled' | 'batch.expired'

/** A webhook's body, exactly OpenAI's batch event: the receiver retrieves the batch by `data.id`. */
export interface BatchWebhookEvent {
  /** The event's id: the same as the `id` of the matching callback event (`batch_success`, …). */
  id: string
  object: 'event'
  /** When the batch ended, unix seconds. */
  created_at: number
  type: BatchWebhookType
  /** The batch, by batchkit's id. */
  data: { id: string }
}

/** One webhook to send: its body and its Standard Webhooks message id, the same on every attempt. */
export interface WebhookMessage {
  webhookId: string
  owner: string
  event: BatchWebhookEvent
}

const WEBHOOK_TYPES: Record<BatchEndType, BatchWebhookType> = {
  batch_success: 'batch.completed',
  batch_failed: 'batch.failed',
  batch_cancelled: 'batch.cancelled',
  batch_expired: 'batch.expired',
}

/** The webhook for an event, if it has one (a batch's end); `acreate_batch` has none, as at OpenAI. */
export function webhookMessageOf(event: BatchEvent): WebhookMessage | undefined {
  if (event.type === 'acreate_batch') return undefined
  return {
    webhookId: `wh_${createHash('sha256').update(`webhook\n${event.id}`).digest('hex').slice(0, 32)}`,
    owner: event.owner,
    event: {
      id: event.id,
      object: 'event',
      created_at: event.timings.endedAt ?? event.createdAt,
      type: WEBHOOK_TYPES[event.type],
      data: { id: event.batchId },
    },
  }
}

/** The body as sent and signed: OpenAI's field order, no whitespace. */
export function webhookBody(event: BatchWebhookEvent): string {
  const { id, object, created_at, type, data } = event
  return JSON.stringify({ id, object, created_at, type, data: { id: data.id } })
}
