import { holdToken, type LeaseStore } from '../store/leases.js'
import { type BatchRecord, TERMINAL_STATUSES } from '../types.js'

/** How long a batch read from the store counts as fresh, by default. */
export const DEFAULT_FRESHNESS_MS = 5000

/**
 * The freshness window of batch reads: reads answer from the store, and a batch last confirmed with
 * its provider longer ago than the window is due one refresh. The right to make it is a lease as
 * long as the window, so across every reader and instance a batch costs at most one provider call
 * per window, however many clients poll it.
 */
export class FreshnessWindow {
  constructor(
    private readonly leases: LeaseStore,
    private readonly holder: string,
    readonly windowMs: number,
  ) {
    if (!Number.isFinite(windowMs) || windowMs < 0) {
      throw new Error(`freshnessMs must be a number of milliseconds, 0 or more, not ${windowMs}`)
    }
  }

  /** Whether an unfinished batch is due a refresh from its provider. */
  stale(batch: BatchRecord, now = Date.now()): boolean {
    return !TERMINAL_STATUSES.has(batch.status) && now - (batch.refreshedAtMs ?? 0) >= this.windowMs
  }

  /**
   * Claims this window's refresh of a batch; false when another reader or instance has it. The
   * claim is never given back: it expires with the window, so a failed refresh is not retried
   * sooner than a successful one would be repeated.
   */
  claim(batchId: string): Promise<boolean> {
    return this.leases.acquire(`refresh:${batchId}`, holdToken(this.holder), this.windowMs)
  }
}
