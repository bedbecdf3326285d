import { ApiError } from '../errors.js'
import type { DueEntry, DueQueue } from '../store/due-queue.js'
import { holdLease, type LeaseHold } from '../store/lease-hold.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import type { BatchDraft } from '../types.js'

interface IntentBase {
  /**
   * batchkit's id of the object being created (the provider's object is tagged with it), or
   * `delete:<file id>` for a file being deleted.
   */
  id: string
  owner: string
  /** The provider instance asked to create it. */
  provider: string
  createdAtMs: number
  /** The queue key of the reconciler's next look at it. */
  key: string
  /** How many times the reconciler has tried to settle it. */
  attempts: number
}

/** An upload under way: after a crash, an upstream file nobody can reach is deleted. */
export interface FileIntent extends IntentBase {
  kind: 'file'
  /** How many parts a file kept upstream in parts may have started; absent for one. */
  parts?: number
}

/** A batch create under way: after a crash, an upstream batch is adopted (recorded, announced and tracked). */
export interface BatchIntent extends IntentBase {
  kind: 'batch'
  batch: BatchDraft
}

/** A file delete under way: after a crash, the provider's copy is deleted, then the record. */
export interface FileDeleteIntent extends IntentBase {
  kind: 'file-delete'
  fileId: string
  providerFileId: string
}

/** A create or delete written down before the provider is asked for it. */
export type Intent = FileIntent | BatchIntent | FileDeleteIntent

/** An intent as its creator writes it; the log adds its bookkeeping. */
export type NewIntent =
  | Omit<FileIntent, 'key' | 'attempts'>
  | Omit<BatchIntent, 'key' | 'attempts'>
  | Omit<FileDeleteIntent, 'key' | 'attempts'>

/** The creator's hold on an intent it began: its lease, and the key of its entry in the reconciler's queue. */
export interface IntentHold extends LeaseHold {
  readonly key: string
}

/** How far before an intent's start the provider's objects are searched, for clock skew between hosts and provider. */
const SEARCH_MARGIN_SECONDS = 300

/** The `since` (unix seconds) of the provider search for an intent's object. */
export function searchSince(intent: Intent): number {
  return Math.floor(intent.createdAtMs / 1000) - SEARCH_MARGIN_SECONDS
}

/** Finishes or undoes what an intent started, whatever state a crash left it in; safe to run twice. */
export type SettleIntent = (intent: Intent) => Promise<void>

/**
 * The write-ahead log of creates: an intent is stored under batchkit's own id before a provider is
 * asked to create anything, and ended once the object's record is stored (or the create is known
 * not to have happened). Its creator holds the intent's lease while it works, renewing it, so the
 * {@link IntentReconciler} only ever settles intents whose creator has died or given up.
 */
export class IntentLog {
  constructor(
    private readonly store: RecordStore,
    private readonly queue: DueQueue,
    private readonly leases: LeaseStore,
    private readonly holder: string,
    /** How long after its start an intent is looked at by the reconciler; also the lease's length. */
    readonly graceMs: number,
    private readonly reportError: (error: unknown, context: string) => void,
  ) {}

  /** Writes the intent down and holds it for this instance until {@link end}. */
  async begin(intent: NewIntent): Promise<IntentHold> {
    const hold = await this.hold(intent.id)
    if (!hold) throw inProgress()
    try {
      // The queue entry goes first, so a crash between the two leaves an entry without a record (dropped), never a record nobody looks at.
      const key = await this.queue.schedule(intent.id, intent.createdAtMs + this.graceMs)
      await this.store.putRecord('intent', intent.id, { ...intent, key, attempts: 0 } as Intent)
      return { key, release: () => hold.release() }
    } catch (error) {
      await hold.release()
      throw error
    }
  }

  /**
   * Forgets an intent whose create has been recorded or undone, and lets its lease go. Its creator
   * knows its queue entry (only the reconciler moves it, and only once the creator's lease has lapsed).
   */
  async end(id: string, hold?: IntentHold): Promise<void> {
    try {
      const key = hold ? hold.key : (await this.get(id))?.key
      await this.store.deleteRecord('intent', id)
      if (key !== undefined) await this.queue.remove(key)
    } finally {
      await hold?.release()
    }
  }

  /** Writes down more of what a create under way has done, such as the parts an upload has started. */
  async note(id: string, change: Partial<Pick<FileIntent, 'parts'>>): Promise<void> {
    const intent = await this.get(id)
    if (!intent) throw new Error(`no intent ${id} to note`)
    await this.store.putRecord('intent', id, { ...intent, ...change })
  }

  get(id: string): Promise<Intent | undefined> {
    return this.store.getRecord<Intent>('intent', id)
  }

  /** Settles a leftover intent at once, as an idempotent retry must before it goes on; 409 while its creator still works. */
  async settleNow(id: string, settle: SettleIntent): Promise<void> {
    if (!(await this.get(id))) return
    const hold = await this.hold(id)
    if (!hold) throw inProgress()
    try {
      const intent = await this.get(id)
      if (!intent) return
      await settle(intent)
      await this.end(id)
    } finally {
      await hold.release()
    }
  }

  /** Intents the reconciler should look at by `nowMs`. */
  due(nowMs: number, limit: number): Promise<DueEntry[]> {
    return this.queue.due(nowMs, limit)
  }

  /** Drops a queue entry that no longer belongs to a live intent. */
  dropEntry(key: string): Promise<void> {
    return this.queue.remove(key)
  }

  /** Puts off the next look at an intent the reconciler could not settle yet. */
  async retryLater(intent: Intent, delayMs: number): Promise<void> {
    const key = await this.queue.schedule(intent.id, Date.now() + delayMs)
    await this.store.putRecord('intent', intent.id, { ...intent, key, attempts: intent.attempts + 1 })
    await this.queue.remove(intent.key)
  }

  /** Takes an intent's lease, renewed until released; undefined while another instance holds it. */
  hold(id: string): Promise<LeaseHold | undefined> {
    return holdLease(this.leases, `intent:${id}`, this.holder, this.graceMs, (error) =>
      this.reportError(error, `renewing the lease of ${id}`),
    )
  }
}

function inProgress(): ApiError {
  return new ApiError(409, 'Another request for this object is still in progress; retry shortly.', {
    code: 'request_in_progress',
  })
}
