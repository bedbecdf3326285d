import { type FakeAzure, type FakeOpenAI, fakeUsage, startFakeAzure, startFakeOpenAI } from '@batchkit/testkit'
import Keyv from 'keyv'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import type { BatchEndedEvent, BatchEvent } from '../src/events/types.js'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { azure } from '../src/providers/azure/index.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit } from './support/serve-kit.js'

/**
 * Automatic retries of requests that failed for a transient reason. The fake fails `fail-` requests with
 * a 400 every time, and `flaky-N-` requests with a 500 their first N runs.
 */

function line(customId: string): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${customId}` }] },
  })
}

/** Twelve requests in three parts of four: one wrong, four transient failures of one to three runs. */
const IDS = [
  'ok-0',
  'ok-1',
  'ok-2',
  'fail-3',
  'ok-4',
  'flaky-1-5',
  'ok-6',
  'flaky-2-7',
  'ok-8',
  'flaky-1-9',
  'flaky-3-10',
  'ok-11',
]
const LINES = IDS.map(line)
const TEXT = `${LINES.join('\n')}\n`
const promptTokens = (lines: string[]) => lines.reduce((sum, l) => sum + fakeUsage(JSON.parse(l)).prompt_tokens, 0)

interface Setup {
  fake: FakeOpenAI
  kit: BatchKit
  served: ServedKit
  client: OpenAI
  events: BatchEvent[]
}

let setup: Setup | undefined
afterEach(async () => {
  await setup?.served.close()
  await setup?.kit.close()
  await setup?.fake.close()
  setup = undefined
})

async function start(options: Partial<BatchKitOptions>): Promise<Setup> {
  const fake = await startFakeOpenAI()
  const events: BatchEvent[] = []
  const kit = createBatchKit({
    store: new Keyv(),
    providers: {
      openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL, limits: { maxBatchRequests: 4 } }),
    },
    limits: { maxBatchRequests: 100 },
    tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
    freshnessMs: 0,
    callbacks: [(event) => void events.push(event)],
    onError: () => undefined,
    ...options,
  })
  const served = await serveKit(kit)
  setup = { fake, kit, served, client: served.client, events }
  return setup
}

async function submit(client: OpenAI, text: string): Promise<OpenAI.Batches.Batch> {
  const input = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
  return client.batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
}

/** Reads the batch until it ends, as a polling client would; returns every answer read. */
async function readUntilEnded(kit: BatchKit, client: OpenAI, id: string): Promise<OpenAI.Batches.Batch[]> {
  const seen: OpenAI.Batches.Batch[] = []
  for (let i = 0; i < 2000; i++) {
    const batch = await client.batches.retrieve(id)
    seen.push(batch)
    if (['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) return seen
    await kit.batches.idle()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`${id} did not end`)
}

async function linesOf(client: OpenAI, fileId: string | null | undefined): Promise<{ custom_id: string }[]> {
  if (!fileId) return []
  const text = await (await client.files.content(fileId)).text()
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l))
}

function tagsOf(fake: FakeOpenAI, id: string): string[] {
  return [...fake.batches.values()]
    .map((b) => b.metadata?.batchkit_id ?? '')
    .filter((tag) => tag.startsWith(id))
    .sort()
}

/** The upstream input file of follow-up round `round` of batch `id`, found by its tag on the fake. */
function roundInputId(
  fake: { batches: ReadonlyMap<string, { metadata?: Record<string, string> | null; input_file_id: string }> },
  id: string,
  round: number,
): string {
  const batch = [...fake.batches.values()].find((b) => b.metadata?.batchkit_id === `${id}_r${round}`)
  if (!batch) throw new Error(`no round ${round} of ${id} upstream`)
  return batch.input_file_id
}

/**
 * The rest of what the batch of {@link IDS} shows after two rounds, whatever its provider: each round ran
 * exactly the transient failures of the round before, as the client wrote them (`roundInput` reads a
 * round's upstream input); it is billed once, for every request that ran to a result; one event each way.
 */
async function expectRoundsAndBilling(
  done: OpenAI.Batches.Batch,
  events: BatchEvent[],
  roundInput: (round: number) => Promise<string>,
): Promise<void> {
  const byId = (ids: string[]) => `${ids.map((id) => LINES[IDS.indexOf(id)]).join('\n')}\n`
  expect(await roundInput(1)).toBe(byId(['flaky-1-5', 'flaky-2-7', 'flaky-1-9', 'flaky-3-10']))
  expect(await roundInput(2)).toBe(byId(['flaky-2-7', 'flaky-3-10']))

  const completed = LINES.filter((_, i) => IDS[i] !== 'fail-3' && IDS[i] !== 'flaky-3-10')
  expect(done.usage?.input_tokens).toBe(promptTokens(completed))
  await expect.poll(() => events.filter((e) => e.batchId === done.id).length).toBe(2)
  const mine = events.filter((e) => e.batchId === done.id)
  expect(mine.map((e) => e.type)).toEqual(['acreate_batch', 'batch_success'])
  expect((mine[1] as BatchEndedEvent).requestCounts).toEqual({ total: 12, completed: 10, failed: 2 })
  expect((mine[1] as BatchEndedEvent).usage.inputTokens).toBe(promptTokens(completed))
}

describe('automatic retries of transient failures', () => {
  it('runs transient failures again in follow-up rounds of the same batch, never a 400, up to the attempts', async () => {
    const { fake, kit, client, events } = await start({ requestRetries: { attempts: 2 } })
    const batch = await submit(client, TEXT)
    const seen = await readUntilEnded(kit, client, batch.id)
    const done = seen.at(-1) as OpenAI.Batches.Batch

    // flaky-1 lines succeed in round 1, flaky-2-7 in round 2; flaky-3-10 still fails after the last round.
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 12, completed: 10, failed: 2 })
    expect(seen.slice(0, -1).map((b) => b.status)).not.toContain('completed')
    for (const read of seen) {
      const counts = read.request_counts
      expect((counts?.completed ?? 0) + (counts?.failed ?? 0)).toBeLessThanOrEqual(12)
    }

    const output = await linesOf(client, done.output_file_id)
    const errors = await linesOf(client, done.error_file_id)
    expect(output.map((l) => l.custom_id).sort()).toEqual(
      IDS.filter((id) => id !== 'fail-3' && id !== 'flaky-3-10').sort(),
    )
    expect(errors.map((l) => l.custom_id).sort()).toEqual(['fail-3', 'flaky-3-10'])
    const lastError = errors.find((l) => l.custom_id === 'flaky-3-10') as unknown as {
      response: { status_code: number }
    }
    expect(lastError.response.status_code).toBe(500)

    // The rounds ran exactly the transient failures of the round before, as the client wrote them.
    expect(tagsOf(fake, batch.id)).toEqual([
      batch.id,
      `${batch.id}_p1`,
      `${batch.id}_p2`,
      `${batch.id}_r1`,
      `${batch.id}_r2`,
    ])
    await expectRoundsAndBilling(done, events, async (n) => {
      const response = await fetch(`${fake.baseURL}/files/${roundInputId(fake, batch.id, n)}/content`, {
        headers: { authorization: `Bearer ${fake.apiKey}` },
      })
      return response.text()
    })
  })

  it('leaves a batch whose retries all succeed with no error file, as OpenAI shows one where nothing failed', async () => {
    const { kit, client } = await start({ requestRetries: { attempts: 1 } })
    const ids = ['ok-a', 'flaky-1-b', 'ok-c']
    const batch = await submit(client, `${ids.map(line).join('\n')}\n`)
    const done = (await readUntilEnded(kit, client, batch.id)).at(-1) as OpenAI.Batches.Batch
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect(done.error_file_id).toBeNull()
    expect((await linesOf(client, done.output_file_id)).map((l) => l.custom_id).sort()).toEqual(ids.sort())
  })

  it('runs nothing again by default', async () => {
    const { fake, kit, client } = await start({})
    const batch = await submit(client, TEXT)
    const done = (await readUntilEnded(kit, client, batch.id)).at(-1) as OpenAI.Batches.Batch
    expect(done.request_counts).toEqual({ total: 12, completed: 7, failed: 5 })
    expect((await linesOf(client, done.error_file_id)).map((l) => l.custom_id).sort()).toEqual(
      ['fail-3', 'flaky-1-5', 'flaky-1-9', 'flaky-2-7', 'flaky-3-10'].sort(),
    )
    expect(tagsOf(fake, batch.id)).toEqual([batch.id, `${batch.id}_p1`, `${batch.id}_p2`])
  })

  it('refuses retries that nothing would run', () => {
    const fake = { apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1' }
    expect(() =>
      createBatchKit({
        providers: { openai: openai(fake) },
        requestRetries: { attempts: 1 },
        tracking: { enabled: false },
      }),
    ).toThrow(/requestRetries need tracking/)
    expect(() => createBatchKit({ providers: { openai: openai(fake) }, requestRetries: { attempts: -1 } })).toThrow(
      /requestRetries.attempts/,
    )
  })
})

describe('automatic retries of transient failures on Azure OpenAI', () => {
  let azureFake: FakeAzure | undefined
  afterEach(async () => {
    await azureFake?.close()
    azureFake = undefined
  })

  it('runs the same rounds through the Azure provider: the same counts, files, usage and events as on OpenAI', async () => {
    const fake = await startFakeAzure({ pendingPolls: 0 })
    azureFake = fake
    // `start` also makes the OpenAI fake of the tests above; this kit talks to Azure only.
    const { kit, client, events } = await start({
      providers: {
        azure: azure({
          endpoint: fake.endpoint,
          apiKey: fake.apiKey,
          limits: { maxBatchRequests: 4 },
          fileProcessing: { initialDelayMs: 5 },
        }),
      },
      requestRetries: { attempts: 2 },
    })
    const batch = await submit(client, TEXT)
    const done = (await readUntilEnded(kit, client, batch.id)).at(-1) as OpenAI.Batches.Batch

    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 12, completed: 10, failed: 2 })
    const output = await linesOf(client, done.output_file_id)
    const errors = await linesOf(client, done.error_file_id)
    expect(output.map((l) => l.custom_id).sort()).toEqual(
      IDS.filter((id) => id !== 'fail-3' && id !== 'flaky-3-10').sort(),
    )
    expect(errors.map((l) => l.custom_id).sort()).toEqual(['fail-3', 'flaky-3-10'])

    // Azure's own batches: the three parts, then one batch per round, each round on the failures before it.
    const azureBatches = [...fake.batches.values()]
    const tags = azureBatches.map((b) => b.metadata?.batchkit_id ?? '').filter((tag) => tag.startsWith(batch.id))
    expect(tags.sort()).toEqual([batch.id, `${batch.id}_p1`, `${batch.id}_p2`, `${batch.id}_r1`, `${batch.id}_r2`])
    await expectRoundsAndBilling(done, events, async (n) => {
      const response = await fetch(`${fake.v1BaseURL}/files/${roundInputId(fake, batch.id, n)}/content`, {
        headers: { 'api-key': fake.apiKey },
      })
      return response.text()
    })
  })
})
