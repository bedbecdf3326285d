import type { BatchService } from '../batches/service.js'
import { isApiError } from '../errors.js'
import type { Logger } from '../observability/logger.js'
import { recordPollError } from '../observability/telemetry.js'
import type { DueQueue } from '../store/due-queue.js'
import { holdLease } from '../store/lease-hold.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import { type BatchBilling, type BatchRecord, TERMINAL_STATUSES } from '../types.js'
import { jitter } from '../util/jitter.js'
import { mapConcurrently } from '../util/map-concurrently.js'
import { Poller } from './poller.js'

/** How batches are followed. */
export interface TrackingOptions {
  /** Run the tracker in this instance; turn off for instances that only serve the API. @default true */
  enabled?: boolean
  /**
   * The first poll's delay after a batch is created; each next one grows by `backoff`. A poll finds a
   * batch that a reader refreshed within `freshnessMs` as fresh, so polls never ask the provider more
   * often than that window. @default 5000
   */
  initialIntervalMs?: number
  /** The longest delay between two polls of a batch. @default 300000 */
  maxIntervalMs?: number
  /** How much each delay grows. @default 1.5 */
  backoff?: number
  /** How often the tracker looks for due polls. @default 1000 */
  tickMs?: number
  /**
   * How long an instance's hold on a batch lasts unless renewed; it is renewed every third of it while a
   * poll runs, so a dead instance's batches are free again after it. @default 120000
   */
  leaseMs?: number
}

/** The tracker's own state of a batch, apart from the batch record so API writes never clobber it. */
interface TrackingState {
  polls: number
  /** The queue key of the next poll. */
  key: string
  /** Polls in a row that the provider answered "no such batch". */
  notFound?: number
}

/** Polls in a row answered "no such batch" before the batch counts as lost (a new batch may not be visible at once). */
const NOT_FOUND_LIMIT = 3

/** How many batches one instance polls at once. */
const CONCURRENCY = 16
const ORPHAN_AGE_MS = 60_000

function dueAtOf(key: string): number {
  return Number(key.slice(0, key.indexOf(':')))
}

/** What is done when a batch has ended: bill it and tell the callbacks, once; resolves with the billing. */
export type FinishBatch = (batch: BatchRecord) => Promise<BatchBilling>

/**
 * Follows every open batch to its end, whether or not a client polls it: polls with backoff (fast
 * at first, then slower), from a schedule kept in the store, so restarts resume it and several
 * instances share it; a lease makes sure one instance at a time works on a batch. When a batch
 * ends, `finish` runs (billing, events), and only then is the batch dropped from the schedule, so
 * a crash mid-finish means a second finish, which is idempotent, never a lost one.
 */
export class BatchTracker {
  private readonly poller: Poller
  private readonly options: Required<Omit<TrackingOptions, 'enabled'>>

  constructor(
    private readonly batches: BatchService,
    private readonly store: RecordStore,
    private readonly queue: DueQueue,
    private readonly leases: LeaseStore,
    private readonly holder: string,
    private readonly finish: FinishBatch,
    options: TrackingOptions,
    private readonly reportError: (error: unknown, context: string) => void,
    private readonly logger: Logger,
    /** A provider's kind, for the poll error counter's attributes. */
    private readonly providerKind: (provider: string) => string = (provider) => provider,
  ) {
    this.options = {
      initialIntervalMs: options.initialIntervalMs ?? 5000,
      maxIntervalMs: options.maxIntervalMs ?? 300_000,
      backoff: options.backoff ?? 1.5,
      tickMs: options.tickMs ?? 1000,
      leaseMs: options.leaseMs ?? 120_000,
    }
    this.poller = new Poller(
      () => this.pollDue(),
      this.options.tickMs,
      (e) => reportError(e, 'tracking batches'),
    )
  }

  /** Starts following a new batch; resolves once its schedule is stored. Following it twice is one follow. */
  async follow(batch: BatchRecord): Promise<void> {
    if (await this.store.getRecord<TrackingState>('tracking', batch.id)) return
    const key = await this.queue.schedule(batch.id, Date.now() + this.options.initialIntervalMs)
    await this.store.putRecord('tracking', batch.id, { polls: 0, key } satisfies TrackingState)
  }

  /** Asks for a batch to be looked at now, say because a client saw it end. */
  async nudge(batchId: string): Promise<void> {
    const state = await this.store.getRecord<TrackingState>('tracking', batchId)
    if (!state) return
    const key = await this.queue.schedule(batchId, Date.now())
    await this.store.putRecord('tracking', batchId, { ...state, key } satisfies TrackingState)
    // The same millisecond gives the same key: removing the old entry would then remove the new one.
    if (key !== state.key) await this.queue.remove(state.key)
    this.poller.poke()
  }

  start(): void {
    this.poller.start()
  }

  stop(): Promise<void> {
    return this.poller.stop()
  }

  private async pollDue(): Promise<void> {
    const due = await this.queue.due(Date.now(), 100)
    await mapConcurrently(due, CONCURRENCY, (entry) => this.pollOne(entry.id, entry.key))
  }

  private async pollOne(id: string, key: string): Promise<void> {
    // Renewed while the poll runs: finishing a big batch (reading its whole output) can outlast any lease.
    const hold = await holdLease(this.leases, `track:${id}`, this.holder, this.options.leaseMs, (error) =>
      this.reportError(error, `renewing the tracking lease of ${id}`),
    )
    if (!hold) return
    try {
      const state = await this.store.getRecord<TrackingState>('tracking', id)
      if (!state) {
        // `follow` stores the entry before the state: only an entry older than that gap is an orphan.
        if (dueAtOf(key) < Date.now() - ORPHAN_AGE_MS) await this.queue.remove(key)
        return
      }
      if (state.key !== key) {
        // Superseded by a reschedule that was cut short before it removed this entry.
        await this.queue.remove(key)
        return
      }
      const stored = await this.store.getBatch(id)
      if (!stored) {
        await this.stopFollowing(id, key)
        return
      }
      let batch: BatchRecord
      try {
        // A part waiting for the provider's queue is submitted again only here, under this batch's lease.
        // Else a reader may have refreshed it within the freshness window: then the stored batch is as new.
        batch = resubmitDue(stored)
          ? await this.batches.refresh(stored, { resubmit: true })
          : await this.batches.refreshIfStale(stored)
      } catch (error) {
        this.reportError(error, `polling ${id}`)
        recordPollError(
          {
            provider: stored.provider,
            providerKind: this.providerKind(stored.provider),
            model: stored.model,
            endpoint: stored.endpoint,
          },
          isApiError(error) ? (error.code ?? error.type) : '_OTHER',
        )
        const notFound = isApiError(error) && error.code === 'upstream_not_found' ? (state.notFound ?? 0) + 1 : 0
        if (notFound < NOT_FOUND_LIMIT) {
          await this.reschedule(id, { ...state, notFound })
          return
        }
        batch = await this.markLost(stored)
      }
      if (!TERMINAL_STATUSES.has(batch.status)) {
        // An answer ends a run of "no such batch" polls: only polls in a row count towards the limit.
        await this.reschedule(id, { ...state, notFound: 0 }, batch.nextSubmitAtMs)
        return
      }
      await this.finish(batch)
      await this.stopFollowing(id, key)
      this.logger.info({ batchId: id, status: batch.status, polls: state.polls + 1 }, 'batchkit batch ended')
    } finally {
      await hold.release()
    }
  }

  /** A batch its provider no longer knows ends as failed, and is billed and reported as such. */
  private async markLost(batch: BatchRecord): Promise<BatchRecord> {
    const now = Math.floor(Date.now() / 1000)
    const lost: BatchRecord = {
      ...batch,
      status: 'failed',
      failedAt: now,
      errors: [
        {
          code: 'upstream_not_found',
          message: 'The provider no longer has this batch; batchkit stopped following it.',
          param: null,
          line: null,
        },
      ],
    }
    await this.store.updateBatch(lost)
    this.logger.warn({ batchId: batch.id }, 'batchkit lost a batch upstream: marked failed')
    return lost
  }

  /**
   * Polls the batch again after the next backoff step, or when a waiting part or a follow-up round is
   * due, if sooner; one due already, after the first poll interval.
   */
  private async reschedule(id: string, state: TrackingState, nextSubmitAtMs?: number | null): Promise<void> {
    const polls = state.polls + 1
    const backoff = Math.min(this.options.initialIntervalMs * this.options.backoff ** polls, this.options.maxIntervalMs)
    const now = Date.now()
    // A part due already (its provider still busy) is tried again after the first poll interval, not at once.
    const due =
      nextSubmitAtMs == null ? backoff : nextSubmitAtMs > now ? nextSubmitAtMs - now : this.options.initialIntervalMs
    const delay = Math.min(backoff, due)
    const key = await this.queue.schedule(id, now + jitter(delay))
    // A nudge while the provider answered stored a poll for now: it stands, and this later one goes.
    const current = await this.store.getRecord<TrackingState>('tracking', id)
    if (current && current.key !== state.key) {
      if (key !== current.key) await this.queue.remove(key)
      return
    }
    await this.store.putRecord('tracking', id, { polls, key, notFound: state.notFound } satisfies TrackingState)
    if (key !== state.key) await this.queue.remove(state.key)
  }

  private async stopFollowing(id: string, key: string): Promise<void> {
    await this.store.deleteRecord('tracking', id)
    await this.queue.remove(key)
  }
}

/** Whether a part of the batch that the provider turned down for a full queue is due to be submitted again. */
function resubmitDue(batch: BatchRecord): boolean {
  return batch.nextSubmitAtMs != null && batch.nextSubmitAtMs <= Date.now()
}
