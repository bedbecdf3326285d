/** The value at quantile `q` (0..1) of `values`, by nearest rank; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] as number
}

/** Median, minimum and maximum of one figure over several runs. */
export interface Spread {
  median: number
  min: number
  max: number
  runs: number
}

/** The {@link Spread} of `values`; NaN fields for none. */
export function spread(values: readonly number[]): Spread {
  const finite = values.filter(Number.isFinite)
  return {
    median: quantile(finite, 0.5),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
    runs: finite.length,
  }
}

/** The {@link Spread} of each numeric field over a list of run results with the same fields. */
export function spreadOf<K extends string>(runs: readonly Record<K, number>[], keys: readonly K[]): Record<K, Spread> {
  const out = {} as Record<K, Spread>
  for (const key of keys) out[key] = spread(runs.map((run) => run[key]))
  return out
}
