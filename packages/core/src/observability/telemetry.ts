import { type BatchObservableCallback, metrics, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { BatchBilling } from '../types.js'
import { VERSION } from '../version.js'

/** The OpenTelemetry GenAI conventions' `gen_ai.provider.name` of each provider kind. */
const GEN_AI_PROVIDER_NAMES: Record<string, string> = {
  openai: 'openai',
  azure: 'azure.ai.openai',
  vertex: 'gcp.vertex_ai',
}

/** The GenAI conventions' `gen_ai.operation.name` of each batch endpoint. */
const GEN_AI_OPERATIONS: Record<string, string> = {
  '/v1/chat/completions': 'chat',
  '/v1/responses': 'chat',
  '/v1/embeddings': 'embeddings',
  '/v1/completions': 'text_completion',
}

/** A provider kind as the GenAI conventions name it (`azure` is `azure.ai.openai`). */
export function genAiProviderName(kind: string): string {
  return GEN_AI_PROVIDER_NAMES[kind] ?? kind
}

/** What a batch's metrics are recorded under: batchkit's own names, and the GenAI conventions' beside them. */
export interface BatchMetricAttributes {
  /** The provider's configured name. */
  provider: string
  /** The provider's kind: `openai`, `azure` or `vertex`. */
  providerKind: string
  model: string
  endpoint: string
}

function metricAttributes(batch: BatchMetricAttributes): Record<string, string> {
  return {
    provider: batch.provider,
    model: batch.model,
    'gen_ai.provider.name': genAiProviderName(batch.providerKind),
    'gen_ai.request.model': batch.model,
    'gen_ai.operation.name': GEN_AI_OPERATIONS[batch.endpoint] ?? batch.endpoint,
  }
}

// A no-op until the application registers an OpenTelemetry SDK (the tracer proxies to it then).
const tracer = trace.getTracer('batchkit', VERSION)

/**
 * Runs `work` in a span named `name`, marking it failed when `work` throws. Attributes name
 * operations, providers and models, never credentials or request bodies.
 */
export async function inSpan<T>(
  name: string,
  attributes: Record<string, string | number>,
  work: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes, kind }, async (span) => {
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
const meter = () => metrics.getMeter('batchkit', VERSION)

/** Counts a created batch. */
export function recordBatchCreated(batch: BatchMetricAttributes): void {
  meter().createCounter('batchkit.batches.created', { description: 'Batches created' }).add(1, metricAttributes(batch))
}

/** Counts a finished batch, its tokens (reasoning tokens apart, as part of output) and its cost. */
export function recordBatchFinished(batch: BatchMetricAttributes & { status: string }, billing: BatchBilling): void {
  const m = meter()
  const attributes = { ...metricAttributes(batch), status: batch.status }
  m.createCounter('batchkit.batches.finished', { description: 'Batches that ended, by status' }).add(1, attributes)
  const tokens = m.createCounter('batchkit.tokens', { description: 'Tokens of finished batches', unit: '{token}' })
  const { totals } = billing
  const input = { ...attributes, 'gen_ai.token.type': 'input' }
  tokens.add(totals.inputTokens - totals.cachedTokens, { ...input, type: 'input' })
  tokens.add(totals.cachedTokens, { ...input, type: 'cached_input' })
  tokens.add(totals.outputTokens, { ...attributes, 'gen_ai.token.type': 'output', type: 'output' })
  m.createCounter('batchkit.tokens.reasoning', {
    description: 'Reasoning tokens of finished batches, part of their output tokens',
    unit: '{token}',
  }).add(totals.reasoningTokens, attributes)
  if (totals.cost !== null) {
    m.createCounter('batchkit.cost', { description: 'Cost of finished batches at batch prices', unit: 'USD' }).add(
      totals.cost,
      attributes,
    )
  }
}

/** Counts a poll of a batch that failed (its provider or the store); the batch is polled again later. */
export function recordPollError(batch: BatchMetricAttributes, errorType: string): void {
  meter()
    .createCounter('batchkit.poll.errors', { description: 'Polls of a batch that failed; it is polled again later' })
    .add(1, { ...metricAttributes(batch), 'error.type': errorType })
}

/** What the gauges read, from the store: the same counts from every instance that shares it. */
export interface GaugeSources {
  /** Batches being followed to their end. */
  openBatches(): Promise<number>
  /** Event deliveries waiting, by queue (`callbacks`, `webhooks`). */
  eventsBacklog(): Promise<Record<string, number>>
}

/**
 * Observable gauges `batchkit.batches.open` and `batchkit.events.backlog`, read from `sources` at each
 * collection; resolves nothing and observes nothing when the store fails then. Registered on the meter
 * of the SDK registered at the time: register the SDK before creating the kit. Returns how to remove them.
 */
export function observeGauges(sources: GaugeSources): () => void {
  const m = meter()
  const open = m.createObservableGauge('batchkit.batches.open', {
    description: 'Open batches: batches being followed to their end, in the store',
    unit: '{batch}',
  })
  const backlog = m.createObservableGauge('batchkit.events.backlog', {
    description: 'Event deliveries waiting in the store, by queue',
    unit: '{event}',
  })
  const observe: BatchObservableCallback = async (result) => {
    const [batches, events] = await Promise.all([
      sources.openBatches().catch(() => undefined),
      sources.eventsBacklog().catch(() => undefined),
    ])
    if (batches !== undefined) result.observe(open, batches)
    for (const [queue, count] of Object.entries(events ?? {})) result.observe(backlog, count, { queue })
  }
  m.addBatchObservableCallback(observe, [open, backlog])
  return () => m.removeBatchObservableCallback(observe, [open, backlog])
}
