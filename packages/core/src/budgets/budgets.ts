import { ApiError } from '../errors.js'
import type { BudgetHold, FileEstimate } from '../types.js'
import type { BudgetLedger, LedgerTotals } from './ledger.js'
import { microsDown, microsUp, usdOf } from './money.js'

/** Per-owner spending limits, one per calendar month (UTC). */
export interface BudgetOptions {
  /**
   * The most `owner` may spend in `period` (`YYYY-MM`, a calendar month in UTC), in USD; undefined
   * for no limit. Asked at every batch create, so a limit can change at any time.
   */
  limitFor(owner: string, period: string): number | undefined | Promise<number | undefined>
}

/** An owner's budget for one month, as {@link Budgets.status} reports it. */
export interface BudgetStatus {
  owner: string
  period: string
  /** The limit in USD, or null for none. */
  limit: number | null
  /** What batches settled in the period cost, in USD. */
  spent: number
  /** What unfinished batches may still cost at most, in USD. */
  reserved: number
  /** `limit − spent − reserved` (at least 0), or null with no limit. */
  remaining: number | null
}

/**
 * Spending limits per owner and month. A batch create holds its estimate's upper bound in the
 * ledger before the provider is asked, atomically against the limit, so instances racing for the
 * last dollars cannot all pass; its billing settles the hold to what it cost, and a create that
 * never happened lets the hold go.
 */
export class Budgets {
  constructor(
    private readonly ledger: BudgetLedger,
    /** The limits; without them no batch takes a hold, and only holds taken earlier are settled. */
    private readonly options: BudgetOptions | undefined,
  ) {}

  /** The hold a new batch created at `createdAtMs` takes, from its input file's estimate; null when budgets are off. */
  holdFor(estimate: FileEstimate | null | undefined, createdAtMs: number): BudgetHold | null {
    if (!this.options) return null
    const max = estimate?.maxCost
    return { period: periodOf(createdAtMs), micros: max === null || max === undefined ? 0 : microsUp(max) }
  }

  /**
   * Takes a batch's hold, or refuses the batch: 429 `insufficient_quota` when it would take the
   * owner past the month's limit, 400 when the limit cannot be checked (no estimate, or no price).
   */
  async reserve(owner: string, batchId: string, hold: BudgetHold, estimate: FileEstimate | null | undefined) {
    const limit = await this.options?.limitFor(owner, hold.period)
    const limitMicros = limit === undefined ? null : microsDown(checkedLimit(limit))
    if (limitMicros !== null && (estimate?.maxCost === null || estimate?.maxCost === undefined)) {
      throw new ApiError(
        400,
        estimate
          ? `Budget: the cost of this batch cannot be checked against your spending budget, because model '${estimate.model}' has no price.`
          : 'Budget: the cost of this batch cannot be checked against your spending budget, because its input file has no estimate; upload it again.',
        { param: 'input_file_id', code: 'budget_unverifiable' },
      )
    }
    const taken = await this.ledger.reserve(ledgerKey(owner, hold.period), batchId, hold.micros, limitMicros)
    if (!taken.held) throw overBudget(hold, limitMicros ?? 0, taken)
  }

  /** Lets a hold go unspent: the create it was for never happened. Safe to repeat. */
  release(owner: string, batchId: string, hold: BudgetHold): Promise<void> {
    return this.ledger.settle(ledgerKey(owner, hold.period), batchId, 0)
  }

  /**
   * Settles a billed batch's hold to what it cost (rounded up to the micro-dollar); with no cost
   * (a model with no price) the whole hold counts as spent. Safe to repeat: only the first counts.
   */
  settle(owner: string, batchId: string, hold: BudgetHold, cost: number | null): Promise<void> {
    return this.ledger.settle(ledgerKey(owner, hold.period), batchId, cost === null ? hold.micros : microsUp(cost))
  }

  /** An owner's budget for a month (this one, UTC, by default). */
  async status(owner: string, period = periodOf(Date.now())): Promise<BudgetStatus> {
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) throw new TypeError(`period must be YYYY-MM, not ${period}`)
    const [limit, totals] = await Promise.all([
      this.options?.limitFor(owner, period),
      this.ledger.read(ledgerKey(owner, period)),
    ])
    const limitMicros = limit === undefined ? null : microsDown(checkedLimit(limit))
    return {
      owner,
      period,
      limit: limitMicros === null ? null : usdOf(limitMicros),
      spent: usdOf(totals.spentMicros),
      reserved: usdOf(totals.reservedMicros),
      remaining:
        limitMicros === null ? null : usdOf(Math.max(0, limitMicros - totals.spentMicros - totals.reservedMicros)),
    }
  }
}

/** The calendar month (UTC) of a time, `YYYY-MM`. */
export function periodOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7)
}

function ledgerKey(owner: string, period: string): string {
  return `${encodeURIComponent(owner)}:${period}`
}

function checkedLimit(limit: number): number {
  if (typeof limit !== 'number' || !Number.isFinite(limit) || limit < 0) {
    throw new TypeError(`budgets.limitFor must answer a finite number of USD ≥ 0 or undefined, not ${String(limit)}`)
  }
  return limit
}

/**
 * The refusal of a batch over budget, as OpenAI refuses a request over quota: 429 `insufficient_quota`,
 * with `x-should-retry: false` so OpenAI's clients do not retry what only a new month or a higher
 * limit can change.
 */
function overBudget(hold: BudgetHold, limitMicros: number, totals: LedgerTotals): ApiError {
  const remaining = Math.max(0, limitMicros - totals.spentMicros - totals.reservedMicros)
  return new ApiError(
    429,
    `Budget exceeded: this batch may cost up to ${usd(hold.micros)}, and your spending budget for ${hold.period} ` +
      `has ${usd(remaining)} left of ${usd(limitMicros)} (${usd(totals.spentMicros)} spent, ` +
      `${usd(totals.reservedMicros)} held by unfinished batches). Set max_completion_tokens lower, or send fewer requests.`,
    { type: 'insufficient_quota', code: 'insufficient_quota', headers: { 'x-should-retry': 'false' } },
  )
}

function usd(micros: number): string {
  return `$${usdOf(micros)
    .toFixed(6)
    .replace(/0{1,4}$/, '')}`
}
