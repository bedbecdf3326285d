import { readFileSync } from 'node:fs'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import Keyv from 'keyv'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchEndedEvent, BatchEvent } from '../src/events/types.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit, untilEnded } from './support/serve-kit.js'

/**
 * One batch above the provider's limits (OpenAI: 50,000 requests a batch), through OpenAI's own client:
 * batchkit keeps the file upstream in parts and runs one provider batch per part, and the client sees
 * one batch. The testkit fake fails every request whose `custom_id` starts with `fail-`.
 */

const REQUESTS = 120_000

function line(i: number): string {
  const id = i % 8 === 3 ? `fail-${i}` : `ok-${i}`
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i} ${'é'.repeat(i % 5)}` }] },
  })
}

describe('a batch above the provider’s limits', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  let served: ServedKit
  let client: OpenAI
  const events: BatchEvent[] = []
  const text = `${Array.from({ length: REQUESTS }, (_, i) => line(i)).join('\n')}\n`

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      store: new Keyv(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      limits: { maxBatchRequests: 1_000_000, maxBatchFileBytes: 2_000_000_000 },
      callbacks: [(event) => void events.push(event)],
      tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
    client = served.client
  })
  afterAll(async () => {
    await served?.close()
    await kit?.close()
    await fake?.close()
  })

  const finished = (id: string) => untilEnded(client, kit, id, { polls: 1000 })

  it('runs 120,000 requests as one batch over provider batches of at most 50,000', {
    timeout: 120_000,
  }, async () => {
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'big.jsonl'), purpose: 'batch' })
    expect(input.bytes).toBe(Buffer.byteLength(text))
    // The file is one file to the client, whatever it is upstream: its bytes come back exactly.
    expect(await (await client.files.content(input.id)).text()).toBe(text)
    const uploads = [...fake.files.values()].filter((f) => f.purpose === 'batch')
    expect(uploads.length).toBeGreaterThanOrEqual(3)

    const batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(batch.request_counts?.total ?? 0).toBeLessThanOrEqual(REQUESTS)
    const upstream = [...fake.batches.values()]
    expect(upstream.length).toBeGreaterThanOrEqual(3)
    const upstreamLines = upstream.map((b) => lineCount(fake, b.input_file_id))
    expect(Math.max(...upstreamLines)).toBeLessThanOrEqual(50_000)
    expect(upstreamLines.reduce((a, b) => a + b, 0)).toBe(REQUESTS)

    const done = await finished(batch.id)
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: REQUESTS, completed: 105_000, failed: 15_000 })
    const output = (await (await client.files.content(done.output_file_id as string)).text()).trim().split('\n')
    const errors = (await (await client.files.content(done.error_file_id as string)).text()).trim().split('\n')
    expect(output).toHaveLength(105_000)
    expect(errors).toHaveLength(15_000)
    const ids = [...output, ...errors].map((l) => JSON.parse(l).custom_id as string)
    expect(new Set(ids).size).toBe(REQUESTS)
    // Billed once, from every part's output.
    expect(done.usage?.input_tokens).toBeGreaterThan(0)
    expect(done.usage?.total_tokens).toBe((done.usage?.input_tokens ?? 0) + (done.usage?.output_tokens ?? 0))
    expect((await client.batches.list()).data.map((b) => b.id)).toEqual([batch.id])
    // One event each way for the whole batch, the end with the summed usage and its cost.
    // Delivered from the outbox soon after the end is stored.
    for (let i = 0; i < 250 && events.filter((e) => e.batchId === batch.id).length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const mine = events.filter((e) => e.batchId === batch.id)
    expect(mine.map((e) => e.type)).toEqual(['acreate_batch', 'batch_success'])
    const end = mine[1] as BatchEndedEvent
    expect(end.requestCounts).toEqual({ total: REQUESTS, completed: 105_000, failed: 15_000 })
    expect(end.usage.inputTokens).toBe(done.usage?.input_tokens)
    expect(end.usage.outputTokens).toBe(done.usage?.output_tokens)
    expect(end.responseCost).toBeGreaterThan(0)

    // The failures run again from the error file: exactly the 15,000 failed lines, byte for byte.
    const rerun = await client.batches.create({
      input_file_id: done.error_file_id as string,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const failedLines = text
      .trimEnd()
      .split('\n')
      .filter((_, i) => i % 8 === 3)
    expect(await (await client.files.content(rerun.input_file_id)).text()).toBe(`${failedLines.join('\n')}\n`)
    const again = await finished(rerun.id)
    expect(again.request_counts).toEqual({ total: 15_000, completed: 0, failed: 15_000 })
  })
})

/** Lines of a file the fake holds. */
function lineCount(fake: FakeOpenAI, fileId: string): number {
  const file = fake.files.get(fileId)
  if (!file) throw new Error(`the fake has no file ${fileId}`)
  return readFileSync(file.path, 'utf8').trimEnd().split('\n').length
}

describe('a batch in parts, as its parts end', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  let served: ServedKit
  let client: OpenAI
  // The provider takes 10 requests a batch: 25 requests run as 3 parts.
  const text = `${Array.from({ length: 25 }, (_, i) => line(i * 8)).join('\n')}\n`

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      store: new Keyv(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL, limits: { maxBatchRequests: 10 } }) },
      limits: { maxBatchRequests: 1000 },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
    client = served.client
  })
  afterAll(async () => {
    await served?.close()
    await kit?.close()
    await fake?.close()
  })

  async function create(): Promise<{ batch: OpenAI.Batches.Batch; parts: string[] }> {
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
    const before = new Set(fake.batches.keys())
    const batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const parts = [...fake.batches.values()].filter((b) => !before.has(b.id))
    expect(parts.map((b) => b.metadata?.batchkit_id)).toEqual([batch.id, `${batch.id}_p1`, `${batch.id}_p2`])
    return { batch, parts: parts.map((b) => b.id) }
  }

  /** Retrieves until the batch runs: each retrieve moves each part one step on. */
  async function running(id: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      if ((await client.batches.retrieve(id)).status === 'in_progress') return
      await kit.batches.idle()
    }
    throw new Error(`${id} did not start`)
  }

  /** Every retrieve moves each part one step on: no pause is needed between them. */
  const ended = (id: string) => untilEnded(client, kit, id, { polls: 100, pauseMs: 0 })

  it('cancels every part, and ends cancelled with what the parts had done', async () => {
    const { batch, parts } = await create()
    await running(batch.id)
    const cancelling = await client.batches.cancel(batch.id)
    expect(cancelling.status).toBe('cancelling')
    expect(parts.map((id) => fake.batches.get(id)?.status)).toEqual(['cancelling', 'cancelling', 'cancelling'])
    const done = await ended(batch.id)
    expect(done.status).toBe('cancelled')
    expect(done.request_counts?.total).toBe(25)
    expect(done.cancelled_at).toBeGreaterThan(0)
  })

  it('ends expired when one part expires, with the other parts’ results in its files', async () => {
    const { batch, parts } = await create()
    await running(batch.id)
    await fake.expire(parts[1] as string)
    const done = await ended(batch.id)
    expect(done.status).toBe('expired')
    expect(done.expired_at).toBeGreaterThan(0)
    const output = (await (await client.files.content(done.output_file_id as string)).text()).trim().split('\n')
    const errors = (await (await client.files.content(done.error_file_id as string)).text()).trim().split('\n')
    const ids = [...output, ...errors].map((l) => JSON.parse(l).custom_id as string).sort()
    // Every request is accounted for once: run, failed, or (the expired part's unrun half) in the error file.
    expect(ids).toEqual(
      text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id as string)
        .sort(),
    )
    expect(done.request_counts).toEqual({
      total: 25,
      completed: output.length,
      failed: errors.length,
    })
  })

  it('deletes every part of the file upstream when the client deletes it', async () => {
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
    const upstream = () => [...fake.files.values()].filter((f) => f.filename.startsWith(input.id)).length
    expect(upstream()).toBe(3)
    await client.files.delete(input.id)
    expect(upstream()).toBe(0)
  })
})
