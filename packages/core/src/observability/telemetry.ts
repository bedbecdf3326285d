import { metrics, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import type { BatchBilling } from '../types.js'

// A no-op until the application registers an OpenTelemetry SDK (the tracer proxies to it then).
const tracer = trace.getTracer('batchkit')

/**
 * Runs `work` in a span named `name`, marking it failed when `work` throws. Attributes name
 * operations, providers and models, never credentials or request bodies.
 */
export async function inSpan<T>(
  name: string,
  attributes: Record<string, string | number>,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span)
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
      throw error
    } finally {
      span.end()
    }
  })
}

// Looked up at each use: a meter taken before the application registers its SDK would stay a no-op.
const meter = () => metrics.getMeter('batchkit')

/** Counts a created batch. */
export function recordBatchCreated(attributes: { provider: string; model: string }): void {
  meter().createCounter('batchkit.batches.created', { description: 'Batches created' }).add(1, attributes)
}

/** Counts a finished batch, its tokens and its cost. */
export function recordBatchFinished(
  attributes: { provider: string; model: string; status: string },
  billing: BatchBilling,
): void {
  const m = meter()
  m.createCounter('batchkit.batches.finished', { description: 'Batches that ended, by status' }).add(1, attributes)
  const tokens = m.createCounter('batchkit.tokens', { description: 'Tokens of finished batches', unit: '{token}' })
  const { totals } = billing
  tokens.add(totals.inputTokens - totals.cachedTokens, { ...attributes, type: 'input' })
  tokens.add(totals.cachedTokens, { ...attributes, type: 'cached_input' })
  tokens.add(totals.outputTokens, { ...attributes, type: 'output' })
  if (totals.cost !== null) {
    m.createCounter('batchkit.cost', { description: 'Cost of finished batches at batch prices', unit: 'USD' }).add(
      totals.cost,
      attributes,
    )
  }
}
