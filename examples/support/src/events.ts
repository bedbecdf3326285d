import type { BatchKitOptions } from '@batchkit/core'
import type { ExampleConfig } from './config.js'

/**
 * The kit options every example shares for events and pace: each event printed as one JSON line,
 * the tracker's pace from `BATCHKIT_POLL_INTERVAL_MS` (first poll after that long, each next 1.5 times
 * longer, up to a minute or that value if longer; unset, batchkit's 5 s growing to 5 minutes), the reads' freshness window from `BATCHKIT_FRESHNESS_MS`, and with
 * `BATCHKIT_WEBHOOK_URL` one webhook endpoint for every owner, which may be on loopback.
 */
export function exampleEventOptions(
  config: ExampleConfig,
  print: (line: string) => void,
): Pick<BatchKitOptions, 'callbacks' | 'tracking' | 'freshnessMs' | 'webhooks'> {
  const interval = config.pollIntervalMs
  const webhook = config.webhook
  return {
    callbacks: [(event) => print(JSON.stringify(event))],
    tracking: interval === undefined ? {} : { initialIntervalMs: interval, maxIntervalMs: Math.max(interval, 60_000) },
    freshnessMs: config.freshnessMs,
    webhooks: webhook && { endpoints: () => [webhook], allowAddresses: ['loopback'] },
  }
}
