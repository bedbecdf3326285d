import type { BatchKitOptions } from '@batchkit/core'
import type { ExampleConfig } from './config.js'

/**
 * The kit options every example shares for events and pace: each event printed as one JSON line,
 * the tracker's pace from `BATCHKIT_POLL_INTERVAL_MS` (first poll after that long, then slower, up
 * to a minute), and the reads' freshness window from `BATCHKIT_FRESHNESS_MS`.
 */
export function exampleEventOptions(
  config: ExampleConfig,
  print: (line: string) => void,
): Pick<BatchKitOptions, 'callbacks' | 'tracking' | 'freshnessMs'> {
  const interval = config.pollIntervalMs
  return {
    callbacks: [(event) => print(JSON.stringify(event))],
    tracking: interval === undefined ? {} : { initialIntervalMs: interval, maxIntervalMs: Math.max(interval, 60_000) },
    freshnessMs: config.freshnessMs,
  }
}
