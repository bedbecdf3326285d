import type { Readable } from 'node:stream'

/** What a cost/usage pass returns: requests and tokens summed over a batch output file's successful lines. */
export interface UsageTotals {
  requests: number
  inputTokens: number
  outputTokens: number
}

/** A pass over a batch output file. */
export type UsagePass = (file: Readable) => Promise<UsageTotals>

/** A cost/usage pass the bench times; one without `load` is shown as "not built yet". */
export interface Aggregator {
  label: string
  /** Imports what the pass needs (before the process's memory is read) and returns the pass. */
  load?: () => Promise<UsagePass>
}

/**
 * The passes, by name, in table order. `batchkit` is the pass its tracker bills every finished batch
 * with (`aggregateUsage` with the default price table). `reference` is the bench's own plain pass
 * (split lines, `JSON.parse` each, add up `usage`): a yardstick for what this machine does, not batchkit.
 */
export const AGGREGATORS: Record<string, Aggregator> = {
  batchkit: { label: 'batchkit `aggregateUsage` (usage and cost per model)', load: loadBatchkitPass },
  reference: { label: 'reference: JSON.parse per line (not batchkit)', load: async () => referencePass },
}

async function loadBatchkitPass(): Promise<UsagePass> {
  const { aggregateUsage, createPricing } = await import('@batchkit/core')
  const pricing = createPricing()
  return async (file) => {
    const summary = await aggregateUsage(file, pricing)
    if (summary.malformedLines > 0 || summary.totals.cost === null) {
      throw new Error(`aggregateUsage: ${summary.malformedLines} malformed lines, cost ${summary.totals.cost}`)
    }
    return {
      requests: summary.totals.requests.succeeded,
      inputTokens: summary.totals.inputTokens,
      outputTokens: summary.totals.outputTokens,
    }
  }
}

async function referencePass(file: Readable): Promise<UsageTotals> {
  const totals: UsageTotals = { requests: 0, inputTokens: 0, outputTokens: 0 }
  let rest: Buffer | undefined
  const line = (bytes: Buffer) => {
    if (bytes.length === 0) return
    const usage = JSON.parse(bytes.toString('utf8'))?.response?.body?.usage
    totals.requests++
    totals.inputTokens += usage?.prompt_tokens ?? usage?.input_tokens ?? 0
    totals.outputTokens += usage?.completion_tokens ?? usage?.output_tokens ?? 0
  }
  for await (const chunk of file as AsyncIterable<Buffer>) {
    let start = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      line(rest ? Buffer.concat([rest, chunk.subarray(start, nl)]) : chunk.subarray(start, nl))
      rest = undefined
      start = nl + 1
    }
    if (start < chunk.length) rest = rest ? Buffer.concat([rest, chunk.subarray(start)]) : chunk.subarray(start)
  }
  if (rest) line(rest)
  return totals
}
