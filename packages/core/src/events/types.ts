import type { ModelUsage, RequestCounts } from '../types.js'

/** What every event says about its batch. */
export interface BatchEventBase {
  /** Stable for the event: a consumer that sees an id twice has seen the same event twice. */
  id: string
  /** When the event happened, unix seconds. */
  createdAt: number
  batchId: string
  owner: string
  /** The provider instance's name, as configured. */
  provider: string
  model: string
  endpoint: string
  metadata: Record<string, string> | null
}

/** A batch was created (LiteLLM's name for it). */
export interface BatchCreatedEvent extends BatchEventBase {
  type: 'acreate_batch'
  /** Requests in the input file. */
  requestCount: number
  /** Nothing is billed at creation. */
  responseCost: 0
}

/** How a batch ended. */
export type BatchEndType = 'batch_success' | 'batch_failed' | 'batch_cancelled' | 'batch_expired'

/** A batch ended: what it did, and what it cost. */
export interface BatchEndedEvent extends BatchEventBase {
  type: BatchEndType
  status: 'completed' | 'failed' | 'cancelled' | 'expired'
  requestCounts: RequestCounts
  /** Sums over every model. */
  usage: Omit<ModelUsage, 'cost'>
  /** In USD at batch prices, for the requests that completed; null when a model has no price. */
  responseCost: number | null
  /** Per model, as the output file reports them. */
  byModel: Record<string, ModelUsage>
  /** Models with no price, whose requests make `responseCost` null. */
  unpricedModels: string[]
  /** Unix seconds of each step, as the provider reports them, and the whole run's length. */
  timings: {
    createdAt: number
    inProgressAt: number | null
    finalizingAt: number | null
    endedAt: number | null
    durationSeconds: number | null
  }
}

/** Every event batchkit reports. */
export type BatchEvent = BatchCreatedEvent | BatchEndedEvent

/**
 * Receives events, each once (retried with backoff until it resolves; a consumer deduplicates by
 * `event.id` across crashes). It runs apart from API calls: a callback that throws or hangs delays
 * nothing but its own later events.
 */
export type BatchEventCallback = (event: BatchEvent) => void | Promise<void>
