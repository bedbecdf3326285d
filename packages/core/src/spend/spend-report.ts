import { invalidValue } from '../errors.js'
import type { RecordStore } from '../store/records.js'
import type { BatchBilling, ModelUsage } from '../types.js'

/** How a spend report groups its rows. */
export type SpendGroupBy = 'model' | 'day' | 'owner'

/** What {@link SpendReporter.report} is asked for. */
export interface SpendQuery {
  /** Only this owner's batches. @default every owner's */
  owner?: string
  /** The first moment counted (inclusive): batches billed at or after it. */
  from: Date
  /** The end (exclusive): batches billed before it. */
  to: Date
  /** One row per model, per UTC day (`YYYY-MM-DD`) of billing, or per owner. */
  groupBy: SpendGroupBy
}

/** Token counts and cost of some billed batches. */
export interface SpendTotals extends Omit<ModelUsage, 'cost'> {
  /** Billed batches counted (a batch that used two models counts once in each model's row). */
  batches: number
  /** USD at batch prices, summed exactly (to 1e-10); null when some of the usage has no price, as a batch's own cost is. */
  cost: number | null
  /** USD of the usage that has a price, summed exactly: `cost` whenever that is not null. */
  pricedCost: number
  /** Models whose usage has no price, so is in no cost. */
  unpricedModels: string[]
}

/** One row of a spend report. */
export interface SpendGroup extends SpendTotals {
  /** The model, the UTC day (`YYYY-MM-DD`), or the owner. */
  key: string
}

/** Spending from the billing records, for a period. */
export interface SpendReport {
  owner: string | null
  from: Date
  to: Date
  groupBy: SpendGroupBy
  /** By key, in ascending order. */
  groups: SpendGroup[]
  totals: SpendTotals
}

/** Costs are summed as integers of this many per USD: billing rounds each to 1e-10 USD, so the sums are exact. */
const UNITS_PER_USD = 10_000_000_000n

/**
 * Reports what batches cost from their billing records, found through the list of billed batches
 * by the time of their bill: tokens summed as integers, costs as exact integers of 1e-10 USD, so a
 * report agrees with the sum of its batches' bills to the token and to the cent.
 */
export class SpendReporter {
  constructor(private readonly store: RecordStore) {}

  async report(query: SpendQuery): Promise<SpendReport> {
    const { from, to, groupBy } = checked(query)
    const rows = new Map<string, Sum>()
    const total = new Sum()
    for await (const ids of this.store.billedBetween(query.owner, from.getTime(), to.getTime())) {
      const [billings, batches] = await Promise.all([
        this.store.getRecords<BatchBilling>('billing', ids),
        groupBy === 'owner' ? this.store.getBatches(ids) : Promise.resolve([]),
      ])
      billings.forEach((billing, i) => {
        if (!billing) return
        total.addBatch(billing.byModel)
        if (groupBy === 'model') {
          for (const [model, usage] of Object.entries(billing.byModel)) sumOf(rows, model).addBatch({ [model]: usage })
        } else {
          const key = groupBy === 'day' ? dayOf(billing.computedAt) : (batches[i]?.owner ?? '(unknown)')
          sumOf(rows, key).addBatch(billing.byModel)
        }
      })
    }
    const groups = [...rows.keys()].sort().map((key) => ({ key, ...(rows.get(key) as Sum).totals() }))
    return { owner: query.owner ?? null, from, to, groupBy, groups, totals: total.totals() }
  }
}

/** Running sums of one row: integers only. */
class Sum {
  private batches = 0
  private succeeded = 0
  private failed = 0
  private inputTokens = 0
  private cachedTokens = 0
  private outputTokens = 0
  private reasoningTokens = 0
  private totalTokens = 0
  private units = 0n
  private readonly unpriced = new Set<string>()

  addBatch(byModel: Record<string, ModelUsage>): void {
    this.batches++
    for (const [model, usage] of Object.entries(byModel)) {
      this.succeeded += usage.requests.succeeded
      this.failed += usage.requests.failed
      this.inputTokens += usage.inputTokens
      this.cachedTokens += usage.cachedTokens
      this.outputTokens += usage.outputTokens
      this.reasoningTokens += usage.reasoningTokens
      this.totalTokens += usage.totalTokens
      if (usage.cost === null) this.unpriced.add(model)
      else this.units += BigInt(Math.round(usage.cost * 1e10))
    }
  }

  totals(): SpendTotals {
    // Whole dollars and the rest apart, so a sum past 2^53 units (about $900,000) stays exact to the cent.
    const pricedCost = Number(this.units / UNITS_PER_USD) + Number(this.units % UNITS_PER_USD) / 1e10
    return {
      batches: this.batches,
      requests: { succeeded: this.succeeded, failed: this.failed },
      inputTokens: this.inputTokens,
      cachedTokens: this.cachedTokens,
      outputTokens: this.outputTokens,
      reasoningTokens: this.reasoningTokens,
      totalTokens: this.totalTokens,
      cost: this.unpriced.size > 0 ? null : pricedCost,
      pricedCost,
      unpricedModels: [...this.unpriced].sort(),
    }
  }
}

function sumOf(rows: Map<string, Sum>, key: string): Sum {
  let sum = rows.get(key)
  if (!sum) {
    sum = new Sum()
    rows.set(key, sum)
  }
  return sum
}

/** The UTC day of a unix-seconds time, `YYYY-MM-DD`. */
function dayOf(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(0, 10)
}

function checked(query: SpendQuery): SpendQuery {
  for (const name of ['from', 'to'] as const) {
    const value = query[name]
    if (!(value instanceof Date) || Number.isNaN(value.getTime()))
      throw invalidValue(name, `Invalid value for '${name}': a Date is required.`)
  }
  if (query.to.getTime() < query.from.getTime())
    throw invalidValue('to', "Invalid value for 'to': it is before 'from'.")
  if (!['model', 'day', 'owner'].includes(query.groupBy))
    throw invalidValue(
      'groupBy',
      `Invalid value for 'groupBy': '${query.groupBy}'. Supported values are: 'model', 'day' and 'owner'.`,
    )
  return query
}
