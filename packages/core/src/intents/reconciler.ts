import type { Logger } from '../observability/logger.js'
import { Poller } from '../tracking/poller.js'
import { jitter } from '../util/jitter.js'
import type { IntentLog, SettleIntent } from './intent-log.js'

/** How the reconciler looks for intents a crash left behind. */
export interface ReconcileOptions {
  /**
   * How long a create may go without its creator renewing its lease before the reconciler settles
   * it: longer than the slowest provider call, since a live creator renews it every third of it. @default 120000
   */
  graceMs?: number
  /** How often the reconciler looks for abandoned intents. @default 10000 */
  intervalMs?: number
}

const MAX_RETRY_MS = 10 * 60_000

/**
 * Settles the intents whose creator died (or gave up) mid-create: it takes the intent's lease, which
 * only an abandoned intent gives, and runs `settle`, which adopts what the provider made or undoes
 * it. Runs at start and then every `intervalMs`; a failure (provider or store down) is retried with
 * backoff, never taken as "nothing there".
 */
export class IntentReconciler {
  private readonly poller: Poller

  constructor(
    private readonly log: IntentLog,
    private readonly settle: SettleIntent,
    intervalMs: number,
    private readonly reportError: (error: unknown, context: string) => void,
    private readonly logger: Logger,
  ) {
    this.poller = new Poller(
      () => this.reconcileDue(),
      intervalMs,
      (error) => reportError(error, 'reconciling intents'),
    )
  }

  start(): void {
    this.poller.start()
  }

  stop(): Promise<void> {
    return this.poller.stop()
  }

  /** Looks at every due intent once; resolves when done (tests and shutdown use it). */
  async reconcileDue(): Promise<void> {
    for (const entry of await this.log.due(Date.now(), 100)) {
      await this.reconcileOne(entry.id, entry.key, entry.dueAtMs)
    }
  }

  private async reconcileOne(id: string, key: string, dueAtMs: number): Promise<void> {
    const hold = await this.log.hold(id)
    if (!hold) return // its creator is alive and still working
    try {
      const intent = await this.log.get(id)
      if (!intent || intent.key !== key) {
        // `begin` queues before it stores: only an entry older than that gap is an orphan.
        if (intent || dueAtMs < Date.now() - this.log.graceMs) await this.log.dropEntry(key)
        return
      }
      try {
        await this.settle(intent)
      } catch (error) {
        this.reportError(error, `settling the ${intent.kind} intent ${id}`)
        await this.log.retryLater(intent, jitter(Math.min(this.log.graceMs * 2 ** intent.attempts, MAX_RETRY_MS)))
        return
      }
      await this.log.end(id)
      this.logger.info({ intentId: id, kind: intent.kind }, 'batchkit settled an abandoned create')
    } finally {
      await hold.release()
    }
  }
}
