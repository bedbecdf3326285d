import { type FakeAzure, type FakeGcp, startFakeAzure, startFakeGcp } from '@batchkit/testkit'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { azure } from '../src/providers/azure/index.js'
import type { Provider } from '../src/providers/types.js'
import { vertex } from '../src/providers/vertex/provider.js'
import { type ServedKit, serveKit } from './support/serve-kit.js'

/**
 * A batch in parts on Azure OpenAI and on Vertex AI, whose objects and formats differ from OpenAI's:
 * 8 requests where a batch takes 3 run as 3 provider batches, and the client sees one.
 */

const REQUESTS = 8
const lines = Array.from({ length: REQUESTS }, (_, i) =>
  JSON.stringify({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i}` }] },
  }),
)

interface Case {
  name: string
  start(): Promise<{ provider: Provider; model: string; upstreamBatches(): number; close(): Promise<void> }>
}

const cases: Case[] = [
  {
    name: 'Azure OpenAI',
    async start() {
      const fake: FakeAzure = await startFakeAzure()
      return {
        provider: azure({
          endpoint: fake.endpoint,
          apiKey: fake.apiKey,
          fileProcessing: { initialDelayMs: 5 },
          limits: { maxBatchRequests: 3 },
        }),
        model: 'gpt-4o-mini',
        upstreamBatches: () => fake.batches.size,
        close: () => fake.close(),
      }
    },
  },
  {
    name: 'Vertex AI',
    async start() {
      const fake: FakeGcp = await startFakeGcp({ project: 'p', location: 'us-central1', buckets: ['b'] })
      return {
        provider: vertex({
          project: 'p',
          location: 'us-central1',
          bucket: 'b',
          accessToken: fake.token,
          vertexEndpoint: fake.vertexBaseURL,
          gcsEndpoint: fake.gcsBaseURL,
          limits: { maxBatchRequests: 3 },
        }),
        model: 'gemini-2.5-flash',
        upstreamBatches: () => fake.jobs.size,
        close: () => fake.close(),
      }
    },
  },
]

describe.each(cases)('a batch in parts on $name', ({ start }) => {
  let upstream: Awaited<ReturnType<Case['start']>>
  let kit: BatchKit
  let served: ServedKit
  let client: OpenAI

  afterAll(async () => {
    await served?.close()
    await kit?.close()
    await upstream?.close()
  })

  it('runs as one batch over a provider batch per part, with one output of every request', async () => {
    upstream = await start()
    kit = createBatchKit({
      providers: { upstream: upstream.provider },
      limits: { maxBatchRequests: 100 },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
    client = served.client
    const text = `${lines.map((l) => l.replace('gpt-4o-mini', upstream.model)).join('\n')}\n`
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
    expect(await (await client.files.content(input.id)).text()).toBe(text)

    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(upstream.upstreamBatches()).toBe(3)
    let batch = created
    for (let i = 0; i < 30 && !['completed', 'failed', 'cancelled', 'expired'].includes(batch.status); i++) {
      await kit.batches.idle()
      batch = await client.batches.retrieve(created.id)
    }
    expect(batch.status).toBe('completed')
    expect(batch.request_counts).toEqual({ total: REQUESTS, completed: REQUESTS, failed: 0 })
    const output = (await (await client.files.content(batch.output_file_id as string)).text()).trim().split('\n')
    expect(output.map((l) => JSON.parse(l).custom_id).sort()).toEqual(lines.map((l) => JSON.parse(l).custom_id).sort())
    expect(batch.usage?.input_tokens).toBeGreaterThan(0)
  })
})
