import type { Logger } from '../observability/logger.js'
import type { DueQueue } from '../store/due-queue.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import { jitter } from '../util/jitter.js'
import { withTimeout } from '../util/with-timeout.js'
import { type AttemptOutcome, DeliveryQueue } from './delivery-queue.js'
import type { BatchEvent, BatchEventCallback } from './types.js'

/** How events are delivered. */
export interface DeliveryOptions {
  /** How long one call of a callback may take before it counts as failed. @default 10000 */
  callbackTimeoutMs?: number
  /** Attempts per event before it is given up and reported to `onError`. @default 8 */
  maxAttempts?: number
  /** The first retry's delay; each next one doubles, up to 5 minutes. @default 1000 */
  retryDelayMs?: number
  /** How often the outbox looks for due deliveries. @default 1000 */
  pollIntervalMs?: number
}

/** An event waiting in the outbox, and which callbacks still owe it a successful call. */
interface PendingEvent {
  event: BatchEvent
  /** Indexes into the callbacks list. */
  pending: number[]
  attempts: number
}

const LEASE_MS = 60_000
const MAX_RETRY_DELAY_MS = 5 * 60_000

/**
 * Receives the events the outbox stores, besides the callbacks: webhooks. `enqueue` resolves once
 * its own delivery is stored, and does nothing for events it does not send.
 */
export interface EventSink {
  enqueue(event: BatchEvent): Promise<void>
  start(): void
  stop(): Promise<void>
}

/**
 * Delivers events to the user's callbacks apart from the API calls that cause them: `emit` stores
 * the event (keyed by its stable id, so emitting it twice stores it once) and returns; a poller
 * delivers it, retrying failures and timeouts with backoff, and reports what it gives up on. The
 * outbox lives in the store, so a restart or another instance finishes what this one started.
 * Sinks (webhooks) get each event too, stored as deliveries of their own, so they never hold up
 * or fail a callback.
 */
export class EventOutbox {
  private readonly deliveries: DeliveryQueue<PendingEvent>
  private readonly options: Required<DeliveryOptions>

  constructor(
    private readonly callbacks: readonly BatchEventCallback[],
    store: RecordStore,
    queue: DueQueue,
    leases: LeaseStore,
    holder: string,
    options: DeliveryOptions,
    private readonly reportError: (error: unknown, context: string) => void,
    private readonly logger: Logger,
    private readonly sinks: readonly EventSink[] = [],
  ) {
    this.options = {
      callbackTimeoutMs: options.callbackTimeoutMs ?? 10_000,
      maxAttempts: options.maxAttempts ?? 8,
      retryDelayMs: options.retryDelayMs ?? 1000,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
    }
    this.deliveries = new DeliveryQueue<PendingEvent>({
      kinds: { pending: 'event', done: 'event-done' },
      store,
      queue,
      leases,
      holder,
      leaseMs: Math.max(LEASE_MS, 2 * this.options.callbackTimeoutMs),
      pollIntervalMs: this.options.pollIntervalMs,
      attempt: (id, state) => this.attempt(id, state),
      reportError,
    })
  }

  /** Stores an event for delivery; resolves once it is safely stored, not when it is delivered. */
  async emit(event: BatchEvent): Promise<void> {
    this.logger.info({ eventId: event.id, type: event.type, batchId: event.batchId }, 'batchkit event')
    await Promise.all([
      this.callbacks.length === 0
        ? undefined
        : this.deliveries.enqueue(event.id, { event, pending: this.callbacks.map((_, i) => i), attempts: 0 }),
      ...this.sinks.map((sink) => sink.enqueue(event)),
    ])
  }

  start(): void {
    if (this.callbacks.length > 0) this.deliveries.start()
    for (const sink of this.sinks) sink.start()
  }

  async stop(): Promise<void> {
    await Promise.all([this.deliveries.stop(), ...this.sinks.map((sink) => sink.stop())])
  }

  private async attempt(id: string, record: PendingEvent): Promise<AttemptOutcome<PendingEvent>> {
    const failures: unknown[] = []
    const pending: number[] = []
    await Promise.all(
      record.pending.map(async (index) => {
        try {
          await this.call(this.callbacks[index] as BatchEventCallback, record.event)
        } catch (error) {
          pending.push(index)
          failures.push(error)
        }
      }),
    )
    const attempts = record.attempts + 1
    if (pending.length === 0 || attempts >= this.options.maxAttempts) {
      for (const error of failures) {
        this.reportError(error, `delivering event ${id} (${record.event.type}); given up after ${attempts} attempts`)
      }
      return { done: true }
    }
    const delay = Math.min(this.options.retryDelayMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS)
    this.logger.warn({ eventId: id, attempts, retryInMs: delay }, 'batchkit event callback failed; will retry')
    return { done: false, state: { ...record, pending, attempts }, retryInMs: jitter(delay) }
  }

  private call(callback: BatchEventCallback, event: BatchEvent): Promise<void> {
    return withTimeout(
      () => callback(event),
      this.options.callbackTimeoutMs,
      `callback did not settle within ${this.options.callbackTimeoutMs} ms`,
    )
  }
}
