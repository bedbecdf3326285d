import type { Pricing } from '../../src/pricing/cost.js'
import {
  type AggregateOptions,
  normalizeUsage,
  UNKNOWN_MODEL,
  type UsageSummary,
} from '../../src/tracking/aggregate.js'
import type { ModelUsage } from '../../src/types.js'

/**
 * The obvious implementation of `aggregateUsage`, for tests and the throughput script to compare against:
 * split the bytes into lines, `JSON.parse` each whole line, read the fields. Same rules, none of the scanner's
 * tricks; it holds a whole line in memory.
 */
export async function aggregateUsageByParsing(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  pricing: Pick<Pricing, 'costOf'>,
  options: AggregateOptions = {},
): Promise<UsageSummary> {
  const sums = new Map<string, ModelUsage>()
  let lines = 0
  let malformedLines = 0
  const defaultModel = options.defaultModel || UNKNOWN_MODEL

  const onLine = (text: string): void => {
    if (/^[ \t\r]*$/.test(text)) return
    lines++
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      malformedLines++
      return
    }
    if (!isRecord(value)) {
      malformedLines++
      return
    }
    const response = isRecord(value.response) ? value.response : undefined
    const error = value.error !== undefined && value.error !== null
    if ((!response && !error) || (response && typeof response.status_code !== 'number')) {
      malformedLines++
      return
    }
    const status = response?.status_code as number | undefined
    const succeeded = response !== undefined && !error && status !== undefined && status >= 200 && status < 300
    const body = response && isRecord(response.body) ? response.body : undefined
    const model =
      (typeof body?.model === 'string' && body.model) ||
      (typeof body?.modelVersion === 'string' && body.modelVersion) ||
      defaultModel
    const usage = normalizeUsage(body?.usage) ?? normalizeUsage(body?.usageMetadata)
    let sum = sums.get(model)
    if (!sum) {
      sum = {
        requests: { succeeded: 0, failed: 0 },
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        reasoningTokens: 0,
        totalTokens: 0,
        cost: 0,
      }
      sums.set(model, sum)
    }
    if (succeeded) sum.requests.succeeded++
    else sum.requests.failed++
    if (usage) {
      sum.inputTokens += usage.inputTokens
      sum.cachedTokens += usage.cachedTokens
      sum.outputTokens += usage.outputTokens
      sum.reasoningTokens += usage.reasoningTokens
      sum.totalTokens += usage.inputTokens + usage.outputTokens
    }
  }

  let pending: Buffer[] = []
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk
    let pos = 0
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, pos)) {
      pending.push(buf.subarray(pos, nl))
      onLine(Buffer.concat(pending).toString('utf8'))
      pending = []
      pos = nl + 1
    }
    if (pos < buf.length) pending.push(buf.subarray(pos))
  }
  onLine(Buffer.concat(pending).toString('utf8'))

  const models = [...sums.keys()].sort()
  const totals: ModelUsage = {
    requests: { succeeded: 0, failed: 0 },
    inputTokens: 0,
    cachedTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    cost: 0,
  }
  const unpricedModels: string[] = []
  for (const model of models) {
    const sum = sums.get(model)!
    sum.cost = sum.totalTokens === 0 ? 0 : pricing.costOf(model, sum)
    if (sum.cost === null) unpricedModels.push(model)
    totals.requests.succeeded += sum.requests.succeeded
    totals.requests.failed += sum.requests.failed
    totals.inputTokens += sum.inputTokens
    totals.cachedTokens += sum.cachedTokens
    totals.outputTokens += sum.outputTokens
    totals.reasoningTokens += sum.reasoningTokens
    totals.totalTokens += sum.totalTokens
    totals.cost = totals.cost === null || sum.cost === null ? null : Math.round((totals.cost + sum.cost) * 1e10) / 1e10
  }
  return {
    byModel: Object.fromEntries(models.map((model) => [model, sums.get(model)!])),
    totals,
    unpricedModels,
    lines,
    malformedLines,
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
