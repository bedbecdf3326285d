import type { DueQueue } from '../store/due-queue.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import { Poller } from '../tracking/poller.js'

/** What one attempt at a delivery came to: done (delivered or given up), or to be tried again. */
export type AttemptOutcome<S> = { done: true } | { done: false; state: S; retryInMs: number }

/** The record kinds a {@link DeliveryQueue} keeps: its pending deliveries and the ids it is done with. */
export type DeliveryKinds = { pending: 'event'; done: 'event-done' } | { pending: 'webhook'; done: 'webhook-done' }

/** How a {@link DeliveryQueue} runs. */
export interface DeliveryQueueOptions<S> {
  kinds: DeliveryKinds
  store: RecordStore
  queue: DueQueue
  leases: LeaseStore
  /** This instance's lease holder name. */
  holder: string
  /** How long an instance holds a delivery while it attempts it; longer than any one attempt. */
  leaseMs: number
  pollIntervalMs: number
  /** Makes one attempt; must settle within `leaseMs`. */
  attempt(id: string, state: S): Promise<AttemptOutcome<S>>
  reportError(error: unknown, context: string): void
}

/** Deliveries under way at once per instance: many, since a hanging receiver holds its delivery until its timeout. */
const CONCURRENCY = 100
/** How long a finished delivery's id is remembered, so a late duplicate enqueue is dropped. */
const DONE_TTL_MS = 7 * 24 * 60 * 60 * 1000

/**
 * Durable, at-least-once delivery kept in the store: `enqueue` stores a delivery under a stable id
 * (enqueuing it twice stores it once) and schedules it; a poller attempts due deliveries, each under
 * a lease so one instance at a time works on it, and stores the state and the next attempt's time
 * when an attempt asks to be retried. A restart or another instance finishes what this one started.
 * The stored record is the state plus the key of its next attempt in the due queue. Each poll starts
 * the due deliveries not already under way and does not wait for them, so a delivery that hangs
 * until its timeout holds up no other.
 */
export class DeliveryQueue<S extends object> {
  private readonly poller: Poller
  private readonly underWay = new Map<string, Promise<void>>()

  constructor(private readonly options: DeliveryQueueOptions<S>) {
    this.poller = new Poller(
      () => this.deliverDue(),
      options.pollIntervalMs,
      (e) => options.reportError(e, `delivering ${options.kinds.pending}s`),
    )
  }

  /** Stores a delivery and schedules it now; does nothing for an id already pending or done. */
  async enqueue(id: string, state: S): Promise<void> {
    const { store, queue, kinds } = this.options
    const [known, done] = await Promise.all([
      store.getRecord<S>(kinds.pending, id),
      store.getRecord<true>(kinds.done, id),
    ])
    if (known || done) return
    const key = await queue.schedule(id, Date.now())
    await store.putRecord(kinds.pending, id, { ...state, key })
    this.poller.poke()
  }

  start(): void {
    this.poller.start()
  }

  /** Stops polling and waits for the attempts under way. */
  async stop(): Promise<void> {
    await this.poller.stop()
    await Promise.all(this.underWay.values())
  }

  private async deliverDue(): Promise<void> {
    if (this.underWay.size >= CONCURRENCY) return
    // The entries of deliveries under way stay in the queue until they end: look past them.
    const due = await this.options.queue.due(Date.now(), CONCURRENCY + this.underWay.size)
    for (const { id, key } of due) {
      if (this.underWay.size >= CONCURRENCY) break
      if (this.underWay.has(id)) continue
      const attempt = this.deliverOne(id, key)
        .catch((error) => this.options.reportError(error, `delivering ${this.options.kinds.pending} ${id}`))
        .finally(() => this.underWay.delete(id))
      this.underWay.set(id, attempt)
    }
  }

  private async deliverOne(id: string, key: string): Promise<void> {
    const { store, queue, leases, holder, leaseMs, kinds } = this.options
    const lease = `${kinds.pending}:${id}`
    if (!(await leases.acquire(lease, holder, leaseMs))) return
    try {
      const record = await store.getRecord<S & { key: string }>(kinds.pending, id)
      // Stored after its queue entry, so a missing record may be an enqueue still under way: leave young entries be.
      if (!record) {
        if (Number(key.slice(0, key.indexOf(':'))) < Date.now() - leaseMs) await queue.remove(key)
        return
      }
      if (record.key !== key) {
        await queue.remove(key)
        return
      }
      const { key: _key, ...state } = record
      const outcome = await this.options.attempt(id, state as unknown as S)
      if (outcome.done) {
        await store.putRecord(kinds.done, id, true, DONE_TTL_MS)
        await store.deleteRecord(kinds.pending, id)
        await queue.remove(key)
        return
      }
      const next = await queue.schedule(id, Date.now() + outcome.retryInMs)
      await store.putRecord(kinds.pending, id, { ...outcome.state, key: next })
      await queue.remove(key)
    } finally {
      await leases.release(lease, holder)
    }
  }
}
