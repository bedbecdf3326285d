/** Whole micro-dollars per dollar: budgets count in integers, so sums across instances stay exact. */
export const MICROS_PER_USD = 1_000_000

/**
 * A cost in USD (as billing computes it, to 1e-10) in whole micro-dollars, rounded up: a budget
 * never counts less than was spent. Exact: the cost goes through its integer count of 1e-10 first,
 * so 0.000575 is 575, never 576 from float noise.
 */
export function microsUp(usd: number): number {
  // A quotient of integers that is itself an integer is exact in floating point; any other is above it.
  return Math.ceil(Math.round(usd * 1e10) / 10_000)
}

/** A limit in USD in whole micro-dollars, rounded down: a budget never allows more than its limit. */
export function microsDown(usd: number): number {
  return Math.floor(Math.round(usd * 1e10) / 10_000)
}

/** Micro-dollars as USD. */
export function usdOf(micros: number): number {
  return micros / MICROS_PER_USD
}
