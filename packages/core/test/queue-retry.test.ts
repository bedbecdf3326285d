import { type FakeAzure, type FakeOpenAI, fakeUsage, startFakeAzure, startFakeOpenAI } from '@batchkit/testkit'
import Keyv from 'keyv'
import OpenAI, { toFile } from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import type { BatchEndedEvent, BatchEvent } from '../src/events/types.js'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { azure } from '../src/providers/azure/index.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit, untilEnded } from './support/serve-kit.js'

/**
 * OpenAI limits the prompt tokens a model's batches may hold in its queue at once; a batch that would
 * pass the limit is created and then fails validating with `token_limit_exceeded`. batchkit shows such
 * a batch (or a part of a big one) waiting and submits it again as the queue drains. The fake enforces
 * the limit as OpenAI does; another client of the same organisation fills the queue first.
 */

const MODEL = 'gpt-4o-mini'

function line(customId: string, content: string): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: MODEL, messages: [{ role: 'user', content }] },
  })
}

const promptTokens = (lines: string[]) => lines.reduce((sum, l) => sum + fakeUsage(JSON.parse(l)).prompt_tokens, 0)

/** The other client's batch: it fills the queue alone. */
const OUTSIDER = [0, 1, 2].map((i) => line(`outsider-${i}`, 'x'.repeat(200)))
const LIMIT = promptTokens(OUTSIDER)

/** Nine requests, the fifth failing at the fake; in parts of three, one part fits the queue, two do not. */
const NINE = Array.from({ length: 9 }, (_, i) => line(i === 4 ? `fail-${i}` : `ok-${i}`, `${i} ${'y'.repeat(100)}`))

interface Setup {
  fake: FakeOpenAI
  kit: BatchKit
  served: ServedKit
  client: OpenAI
  events: BatchEvent[]
  /** The other client's batch, in progress: the queue is full until {@link drain}. */
  outsider: OpenAI.Batches.Batch
  drain(): Promise<void>
}

let setup: Setup | undefined
afterEach(async () => {
  await setup?.served.close()
  await setup?.kit.close()
  await setup?.fake.close()
  setup = undefined
})

async function start(options: Partial<BatchKitOptions> = {}): Promise<Setup> {
  const fake = await startFakeOpenAI({ enqueuedTokenLimit: LIMIT })
  const { outsider, drain } = await fillQueue(new OpenAI({ baseURL: fake.baseURL, apiKey: fake.apiKey }), fake)

  const events: BatchEvent[] = []
  const kit = createBatchKit({
    store: new Keyv(),
    providers: {
      openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL, limits: { maxBatchRequests: 3 } }),
    },
    limits: { maxBatchRequests: 100 },
    queueRetry: { initialDelayMs: 20, maxDelayMs: 20, attempts: 100 },
    tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
    freshnessMs: 0,
    callbacks: [(event) => void events.push(event)],
    onError: () => undefined,
    ...options,
  })
  const served = await serveKit(kit)
  setup = {
    fake,
    kit,
    served,
    client: served.client,
    events,
    outsider,
    drain,
  }
  return setup
}

/**
 * Another client of the same organisation (or Azure resource) runs the outsider's batch, which fills the
 * queue alone until `drain` runs it to its end.
 */
async function fillQueue(
  direct: OpenAI,
  fake: { batches: ReadonlyMap<string, { status: string }> },
): Promise<{ outsider: OpenAI.Batches.Batch; drain(): Promise<void> }> {
  const file = await direct.files.create({
    file: await toFile(Buffer.from(`${OUTSIDER.join('\n')}\n`), 'other.jsonl'),
    purpose: 'batch',
  })
  const created = await direct.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  })
  // The fake advances a batch one step per read: this read takes the outsider into the queue.
  const outsider = await direct.batches.retrieve(created.id)
  expect(outsider.status).toBe('in_progress')
  return {
    outsider,
    async drain() {
      for (let i = 0; i < 2; i++) await direct.batches.retrieve(created.id)
      expect(fake.batches.get(created.id)?.status).toBe('completed')
    },
  }
}

async function submit(client: OpenAI, lines: string[]): Promise<OpenAI.Batches.Batch> {
  const input = await client.files.create({
    file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'in.jsonl'),
    purpose: 'batch',
  })
  return client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
}

/** The upstream batches made for batchkit batch `id` (its parts and their later submissions). */
function upstreamOf(fake: FakeOpenAI, id: string) {
  return [...fake.batches.values()].filter((b) => b.metadata?.batchkit_id?.startsWith(id))
}

const turnedDown = (fake: FakeOpenAI, id: string) =>
  upstreamOf(fake, id).filter((b) => b.errors?.data.some((e) => e.code === 'token_limit_exceeded'))

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function eventsOf(events: BatchEvent[], id: string, count: number): Promise<BatchEvent[]> {
  await until(`${count} events of ${id}`, () => events.filter((e) => e.batchId === id).length >= count)
  return events.filter((e) => e.batchId === id)
}

describe('a batch the provider turns down for a full queue', () => {
  it('runs a big batch part by part as the queue drains: one batch, exact counts, usage and events', async () => {
    const { fake, kit, client, events, drain } = await start()
    const parts = [NINE.slice(0, 3), NINE.slice(3, 6), NINE.slice(6)]
    // The queue takes one part at a time, and none beside the outsider.
    expect(Math.max(...parts.map(promptTokens))).toBeLessThanOrEqual(LIMIT)
    expect(Math.min(...parts.map(promptTokens)) * 2).toBeGreaterThan(LIMIT)

    const batch = await submit(client, NINE)
    await until('every part turned down', () => turnedDown(fake, batch.id).length >= 3)
    await kit.batches.idle()
    const waiting = await client.batches.retrieve(batch.id)
    expect(waiting).toMatchObject({ status: 'validating', failed_at: null, errors: null })

    await drain()
    const seen = new Set<string>()
    let done = waiting
    for (let i = 0; i < 1000 && !['completed', 'failed', 'cancelled', 'expired'].includes(done.status); i++) {
      await kit.batches.idle()
      await new Promise((resolve) => setTimeout(resolve, 10))
      done = await client.batches.retrieve(batch.id)
      seen.add(done.status)
    }
    expect(seen).not.toContain('failed')
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 9, completed: 8, failed: 1 })
    expect(done.errors).toBeNull()

    // Every part ran exactly once; the other submissions were turned down.
    const upstream = upstreamOf(fake, batch.id)
    const ran = upstream.filter((b) => b.status === 'completed')
    expect(ran).toHaveLength(3)
    expect(ran.map((b) => b.request_counts.total)).toEqual([3, 3, 3])
    expect(upstream.length - ran.length).toBe(turnedDown(fake, batch.id).length)
    expect(turnedDown(fake, batch.id).length).toBeGreaterThan(3)

    const output = (await (await client.files.content(done.output_file_id as string)).text()).trim().split('\n')
    const errors = (await (await client.files.content(done.error_file_id as string)).text()).trim().split('\n')
    expect(output).toHaveLength(8)
    expect(errors.map((l) => JSON.parse(l).custom_id)).toEqual(['fail-4'])
    expect(new Set([...output, ...errors].map((l) => JSON.parse(l).custom_id)).size).toBe(9)

    // Billed once, for the requests that ran: the fake's published usage formula.
    const completed = NINE.filter((l) => !l.includes('"fail-'))
    expect(done.usage?.input_tokens).toBe(promptTokens(completed))
    const mine = await eventsOf(events, batch.id, 2)
    expect(mine.map((e) => e.type)).toEqual(['acreate_batch', 'batch_success'])
    const end = mine[1] as BatchEndedEvent
    expect(end.requestCounts).toEqual({ total: 9, completed: 8, failed: 1 })
    expect(end.usage.inputTokens).toBe(promptTokens(completed))
  })

  it('shows a single batch waiting, and submits it again once the queue drains', async () => {
    const { fake, kit, client, drain } = await start()
    const batch = await submit(client, NINE.slice(0, 3))
    await until('turned down', () => turnedDown(fake, batch.id).length > 0)
    await kit.batches.idle()
    expect(await client.batches.retrieve(batch.id)).toMatchObject({
      status: 'validating',
      failed_at: null,
      errors: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    })

    await drain()
    const ran = await untilEnded(client, kit, batch.id, { polls: 1000, pauseMs: 10 })
    expect(ran.status).toBe('completed')
    expect(ran.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect(ran.usage?.input_tokens).toBe(promptTokens(NINE.slice(0, 3)))
    expect(upstreamOf(fake, batch.id).filter((b) => b.status === 'completed')).toHaveLength(1)
  })

  it('cancels a batch that waits: it is never submitted again, and ends cancelled with nothing billed', async () => {
    // Long enough that the batch is still waiting, not submitted again, when it is cancelled.
    const { fake, kit, client, events, drain } = await start({ queueRetry: { initialDelayMs: 60_000 } })
    const batch = await submit(client, NINE.slice(0, 3))
    await until('turned down', () => turnedDown(fake, batch.id).length > 0)
    await kit.batches.idle()
    expect(await client.batches.retrieve(batch.id)).toMatchObject({ status: 'validating' })

    const cancelling = await client.batches.cancel(batch.id)
    expect(cancelling.status).toMatch(/^cancell(ing|ed)$/)
    await drain()
    const stopped = await untilEnded(client, kit, batch.id, { polls: 1000, pauseMs: 10 })
    expect(stopped).toMatchObject({ status: 'cancelled', failed_at: null, errors: null, output_file_id: null })
    expect(stopped.cancelled_at).toBeGreaterThanOrEqual(batch.created_at)
    expect(stopped.request_counts).toEqual({ total: 0, completed: 0, failed: 0 })
    expect(stopped.usage?.total_tokens).toBe(0)
    expect(upstreamOf(fake, batch.id).map((b) => b.status)).toEqual(['failed'])
    expect((await eventsOf(events, batch.id, 2)).map((e) => e.type)).toEqual(['acreate_batch', 'batch_cancelled'])
  })

  it('fails it as the provider says with queueRetry: false', async () => {
    const { kit, client } = await start({ queueRetry: false })
    const batch = await submit(client, NINE.slice(0, 3))
    const failed = await untilEnded(client, kit, batch.id, { polls: 1000, pauseMs: 10 })
    expect(failed.status).toBe('failed')
    expect(failed.errors?.data).toEqual([
      expect.objectContaining({
        code: 'token_limit_exceeded',
        message: expect.stringContaining('Enqueued token limit'),
      }),
    ])
  })
})

describe("Azure OpenAI's enqueued-token limit", () => {
  let azureFake: FakeAzure | undefined
  afterEach(async () => {
    await azureFake?.close()
    azureFake = undefined
  })

  it('shows a batch Azure turned down waiting, and submits it again once the deployment drains', async () => {
    const fake = await startFakeAzure({ enqueuedTokenLimit: LIMIT, pendingPolls: 0 })
    azureFake = fake
    const { drain } = await fillQueue(new OpenAI({ baseURL: fake.v1BaseURL, apiKey: fake.apiKey }), fake)

    // `start` also makes the OpenAI fake of the tests above; this kit talks to Azure only.
    const { kit, client } = await start({
      providers: {
        azure: azure({ endpoint: fake.endpoint, apiKey: fake.apiKey, fileProcessing: { initialDelayMs: 5 } }),
      },
    })
    const batch = await submit(client, NINE.slice(0, 3))
    const mine = () => [...fake.batches.values()].filter((b) => b.metadata?.batchkit_id?.startsWith(batch.id))
    await until('turned down', () => mine().some((b) => b.errors?.data.some((e) => e.code === 'token_limit_exceeded')))
    expect(mine()[0]?.errors?.data[0]?.message).toContain('enqueued tokens has surpassed the configured limit')
    await kit.batches.idle()
    expect(await client.batches.retrieve(batch.id)).toMatchObject({
      status: 'validating',
      failed_at: null,
      errors: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    })

    await drain()
    const ran = await untilEnded(client, kit, batch.id, { polls: 1000, pauseMs: 10 })
    expect(ran.status).toBe('completed')
    expect(ran.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect(ran.usage?.input_tokens).toBe(promptTokens(NINE.slice(0, 3)))
    expect(mine().filter((b) => b.status === 'completed')).toHaveLength(1)
  })
})
