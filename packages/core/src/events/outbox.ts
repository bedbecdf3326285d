import type { Logger } from '../observability/logger.js'
import type { DueQueue } from '../store/due-queue.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import { Poller } from '../tracking/poller.js'
import { jitter } from '../util/jitter.js'
import { mapConcurrently } from '../util/map-concurrently.js'
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
  /** The queue key of the next attempt. */
  key: string
}

/** How long a delivered event's id is remembered, so a late duplicate emission is dropped. */
/** Events delivered at once: many, since a hanging callback holds its event until the timeout. */
const CONCURRENCY = 100
const DONE_TTL_MS = 7 * 24 * 60 * 60 * 1000
const LEASE_MS = 60_000
const MAX_RETRY_DELAY_MS = 5 * 60_000

/**
 * Delivers events to the user's callbacks apart from the API calls that cause them: `emit` stores
 * the event (keyed by its stable id, so emitting it twice stores it once) and returns; a poller
 * delivers it, retrying failures and timeouts with backoff, and reports what it gives up on. The
 * outbox lives in the store, so a restart or another instance finishes what this one started.
 */
export class EventOutbox {
  private readonly poller: Poller
  private readonly options: Required<DeliveryOptions>

  constructor(
    private readonly callbacks: readonly BatchEventCallback[],
    private readonly store: RecordStore,
    private readonly queue: DueQueue,
    private readonly leases: LeaseStore,
    private readonly holder: string,
    options: DeliveryOptions,
    private readonly reportError: (error: unknown, context: string) => void,
    private readonly logger: Logger,
  ) {
    this.options = {
      callbackTimeoutMs: options.callbackTimeoutMs ?? 10_000,
      maxAttempts: options.maxAttempts ?? 8,
      retryDelayMs: options.retryDelayMs ?? 1000,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
    }
    this.poller = new Poller(
      () => this.deliverDue(),
      this.options.pollIntervalMs,
      (e) => reportError(e, 'delivering events'),
    )
  }

  /** Stores an event for delivery; resolves once it is safely stored, not when it is delivered. */
  async emit(event: BatchEvent): Promise<void> {
    this.logger.info({ eventId: event.id, type: event.type, batchId: event.batchId }, 'batchkit event')
    if (this.callbacks.length === 0) return
    const [known, done] = await Promise.all([
      this.store.getRecord<PendingEvent>('event', event.id),
      this.store.getRecord<true>('event-done', event.id),
    ])
    if (known || done) return
    const key = await this.queue.schedule(event.id, Date.now())
    const pending: PendingEvent = { event, pending: this.callbacks.map((_, i) => i), attempts: 0, key }
    await this.store.putRecord('event', event.id, pending)
    this.poller.poke()
  }

  start(): void {
    if (this.callbacks.length > 0) this.poller.start()
  }

  stop(): Promise<void> {
    return this.poller.stop()
  }

  private async deliverDue(): Promise<void> {
    const due = await this.queue.due(Date.now(), 100)
    // Each event on its own: one hanging callback holds back only its own event's attempt.
    await mapConcurrently(due, CONCURRENCY, (entry) => this.deliverOne(entry.id, entry.key))
  }

  private async deliverOne(id: string, key: string): Promise<void> {
    if (!(await this.leases.acquire(`event:${id}`, this.holder, LEASE_MS))) return
    try {
      const record = await this.store.getRecord<PendingEvent>('event', id)
      // Stored after its queue entry, so a missing record may be an emit still under way: leave young entries be.
      if (!record) {
        if (Number(key.slice(0, key.indexOf(':'))) < Date.now() - LEASE_MS) await this.queue.remove(key)
        return
      }
      if (record.key !== key) {
        await this.queue.remove(key)
        return
      }
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
        for (const error of pending.length === 0 ? [] : failures) {
          this.reportError(error, `delivering event ${id} (${record.event.type}); given up after ${attempts} attempts`)
        }
        await this.store.putRecord('event-done', id, true, DONE_TTL_MS)
        await this.store.deleteRecord('event', id)
        await this.queue.remove(key)
        return
      }
      const delay = Math.min(this.options.retryDelayMs * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS)
      const next = await this.queue.schedule(id, Date.now() + jitter(delay))
      await this.store.putRecord('event', id, { ...record, pending, attempts, key: next })
      await this.queue.remove(key)
      this.logger.warn({ eventId: id, attempts, retryInMs: delay }, 'batchkit event callback failed; will retry')
    } finally {
      await this.leases.release(`event:${id}`, this.holder)
    }
  }

  private call(callback: BatchEventCallback, event: BatchEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`callback did not settle within ${this.options.callbackTimeoutMs} ms`)),
        this.options.callbackTimeoutMs,
      )
      timer.unref()
      Promise.resolve()
        .then(() => callback(event))
        .then(
          () => resolve(),
          (error) => reject(error),
        )
        .finally(() => clearTimeout(timer))
    })
  }
}
