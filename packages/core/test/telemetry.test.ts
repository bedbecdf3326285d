import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { context, metrics, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'

const spans = new InMemorySpanExporter()
const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
})
let fake: FakeOpenAI

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }))
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
  fake = await startFakeOpenAI()
})
afterAll(async () => {
  await fake?.close()
  trace.disable()
  metrics.disable()
  context.disable()
})

it('reports a span per API call with its provider calls inside, and metrics of batches, tokens and cost', async () => {
  const kit = createBatchKit({
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    tracking: { initialIntervalMs: 10, tickMs: 10 },
    // The tracker polls no more often than the freshness window.
    freshnessMs: 10,
    onError: () => undefined,
  })
  try {
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there, how are you' }] },
    })
    const form = new FormData()
    form.append('purpose', 'batch')
    form.append('file', new Blob([`${line}\n`]), 'a.jsonl')
    const request = new Request('http://localhost/v1/files', { method: 'POST', body: form })
    const result = await kit.http.handle({
      method: 'POST',
      url: '/v1/files',
      basePath: '/v1',
      headers: Object.fromEntries(request.headers),
      body: Readable.fromWeb(request.body as import('node:stream/web').ReadableStream),
    })
    expect(result.status).toBe(200)
    const file = JSON.parse(result.body as string)
    await kit.batches.create(
      { owner: 'default' },
      { inputFileId: file.id, endpoint: '/v1/chat/completions', completionWindow: '24h' },
    )

    const api = spans.getFinishedSpans().find((s) => s.name === 'batchkit files.create')
    const upload = spans.getFinishedSpans().find((s) => s.name === 'batchkit provider uploadFile')
    expect(api?.attributes['http.response.status_code']).toBe(200)
    expect(upload?.attributes['batchkit.provider']).toBe('openai')
    // The GenAI semantic conventions beside batchkit's own names: a CLIENT span of the provider.
    expect(upload?.attributes['gen_ai.provider.name']).toBe('openai')
    expect(upload?.kind).toBe(SpanKind.CLIENT)
    expect(api?.kind).toBe(SpanKind.INTERNAL)
    expect(upload?.parentSpanContext?.spanId).toBe(api?.spanContext().spanId)
    for (const span of spans.getFinishedSpans()) expect(JSON.stringify(span.attributes)).not.toContain(fake.apiKey)

    const names = async () => {
      const { resourceMetrics } = await reader.collect()
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((m) => m.descriptor.name))
    }
    for (let i = 0; i < 200 && !(await names()).includes('batchkit.cost'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(await names()).toEqual(
      expect.arrayContaining([
        'batchkit.batches.created',
        'batchkit.batches.finished',
        'batchkit.tokens',
        'batchkit.tokens.reasoning',
        'batchkit.cost',
      ]),
    )
    const { resourceMetrics } = await reader.collect()
    const tokens = resourceMetrics.scopeMetrics
      .flatMap((scope) => scope.metrics)
      .find((m) => m.descriptor.name === 'batchkit.tokens')
    const points = tokens?.dataPoints ?? []
    const genAi = {
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.operation.name': 'chat',
    }
    expect(points.map((p) => [p.attributes.type, p.attributes['gen_ai.token.type']]).sort()).toEqual([
      ['cached_input', 'input'],
      ['input', 'input'],
      ['output', 'output'],
    ])
    for (const point of points) expect(point.attributes).toMatchObject({ ...genAi, provider: 'openai' })
  } finally {
    await kit.close()
  }
})

/** The batchkit scope's metrics, collected now, by name. */
async function collected() {
  const { resourceMetrics } = await reader.collect()
  const scopes = resourceMetrics.scopeMetrics.filter((scope) => scope.scope.name === 'batchkit')
  return { scopes, metrics: new Map(scopes.flatMap((scope) => scope.metrics).map((m) => [m.descriptor.name, m])) }
}

/** Uploads one chat line and creates its batch, through the services. */
async function createOneBatch(kit: BatchKit): Promise<string> {
  const line = JSON.stringify({
    custom_id: 'a',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
  })
  const principal = { owner: 'default' }
  const file = await kit.files.create(principal, {
    purpose: 'batch',
    filename: 'a.jsonl',
    file: Readable.from([Buffer.from(`${line}\n`)]),
  })
  const batch = await kit.batches.create(principal, {
    inputFileId: file.id,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
  })
  return batch.id
}

it("names the tracer and meter with @batchkit/core's version", async () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const api = spans.getFinishedSpans().find((s) => s.name === 'batchkit files.create')
  expect(api?.instrumentationScope).toMatchObject({ name: 'batchkit', version })
  const { scopes } = await collected()
  expect(scopes.map((scope) => scope.scope.version)).toEqual(scopes.map(() => version))
  expect(scopes.length).toBeGreaterThan(0)
})

it('gauges the open batches and the events waiting for their callbacks, and counts failed polls', async () => {
  const kit = createBatchKit({
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    tracking: { enabled: false },
    callbacks: [
      () => {
        throw new Error('the receiver is down')
      },
    ],
    delivery: { retryDelayMs: 60_000, pollIntervalMs: 10 },
    onError: () => undefined,
  })
  try {
    await createOneBatch(kit)
    await createOneBatch(kit)
    const gauge = async (name: string) => (await collected()).metrics.get(name)?.dataPoints ?? []
    expect((await gauge('batchkit.batches.open')).map((p) => p.value)).toEqual([2])
    expect((await gauge('batchkit.events.backlog')).map((p) => [p.attributes.queue, p.value])).toEqual([
      ['callbacks', 2],
    ])
  } finally {
    await kit.close()
  }

  const polling = createBatchKit({
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    tracking: { initialIntervalMs: 10, tickMs: 10 },
    freshnessMs: 10,
    onError: () => undefined,
  })
  try {
    await createOneBatch(polling)
    fake.failNext({ status: 500, method: 'GET', pathPrefix: '/v1/batches/', times: 2 })
    const errors = async () => (await collected()).metrics.get('batchkit.poll.errors')?.dataPoints ?? []
    for (let i = 0; i < 200 && (await errors()).length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    const [point] = await errors()
    expect(point?.value).toBeGreaterThanOrEqual(1)
    expect(point?.attributes).toMatchObject({
      provider: 'openai',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'error.type': 'upstream_error',
    })
  } finally {
    await polling.close()
  }
})
