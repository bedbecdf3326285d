import type { BatchKitOptions } from '@batchkit/core'
import type { ExampleConfig } from './config.js'

/**
 * The kit options every example shares for events: each event printed as one JSON line, and the
 * tracker's pace from `BATCHKIT_POLL_INTERVAL_MS` (first poll after that long, then slower, up to
 * a minute).
 */
export function exampleEventOptions(
  config: ExampleConfig,
  print: (line: string) => void,
): Pick<BatchKitOptions, 'callbacks' | 'tracking'> {
  const interval = config.pollIntervalMs
  return {
    callbacks: [(event) => print(JSON.stringify(event))],
    tracking: interval === undefined ? {} : { initialIntervalMs: interval, maxIntervalMs: Math.max(interval, 60_000) },
  }
}
