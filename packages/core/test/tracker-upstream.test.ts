import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { Keyv } from 'keyv'
import { afterEach, describe, expect, it } from 'vitest'
import { isApiError } from '../src/errors.js'
import type { BatchEndedEvent, BatchEvent } from '../src/events/types.js'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'
import type { BatchRecord } from '../src/types.js'
import { readStored } from './support/stored.js'

/**
 * The tracker against OpenAI's fake, which moves a batch one step per poll (validating, in progress,
 * finalizing, completed): exactly how often it asks the provider, what it does with the provider's
 * failures, and what a user then sees (the batch, its events, the log).
 */

const alice = { owner: 'alice' }

interface Setup {
  fake: FakeOpenAI
  kit: BatchKit
  store: Keyv
  events: BatchEvent[]
  errors: Array<{ error: unknown; context: string }>
  logs: Array<{ level: string; fields: Record<string, unknown>; message?: string }>
}

const open: Setup[] = []
afterEach(async () => {
  for (const s of open.splice(0)) {
    await s.kit.close()
    await s.fake.close()
  }
})

async function start(options: Partial<BatchKitOptions> = {}): Promise<Setup> {
  const fake = await startFakeOpenAI()
  const store = new Keyv()
  const events: BatchEvent[] = []
  const errors: Setup['errors'] = []
  const logs: Setup['logs'] = []
  const log = (level: string) => (fields: Record<string, unknown>, message?: string) =>
    void logs.push({ level, fields, message })
  const kit = createBatchKit({
    store,
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 5 },
    delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
    freshnessMs: 0,
    callbacks: [(event) => void events.push(event)],
    onError: (error, context) => void errors.push({ error, context }),
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    ...options,
  })
  const setup = { fake, kit, store, events, errors, logs }
  open.push(setup)
  return setup
}

async function submit(s: Setup, requests = 2): Promise<BatchRecord> {
  const rows = Array.from({ length: requests }, (_, i) => ({
    custom_id: `r-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i}` }] },
  }))
  const text = `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`
  const file = await s.kit.files.create(alice, { file: Readable.from([text]), purpose: 'batch' })
  return s.kit.batches.create(alice, {
    inputFileId: file.id,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
  })
}

/** The polls of an upstream batch the fake received (failed ones included). */
const polls = (s: Setup, batch: BatchRecord) =>
  s.fake.requests.filter((r) => r.method === 'GET' && r.path === `/v1/batches/${batch.providerBatchId}`).length

const endLogs = (s: Setup) => s.logs.filter((l) => l.message === 'batchkit batch ended')

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Waits for the tracker to end `batch`, then stops the kit so that nothing more happens. */
async function untilEnded(s: Setup, batch: BatchRecord): Promise<void> {
  await until(`${batch.id} ended`, () => endLogs(s).some((l) => l.fields.batchId === batch.id))
  await until(`${batch.id}'s end event`, () =>
    s.events.some((e) => e.batchId === batch.id && e.type !== 'acreate_batch'),
  )
  await s.kit.close()
}

/** Whether the tracker still follows `batch` (its schedule or a queued poll remains). */
async function followed(s: Setup, batch: BatchRecord): Promise<boolean> {
  const queue = new DueQueue(coordinationFor(s.store).index, 'tracking')
  const entries = (await queue.due(Number.MAX_SAFE_INTEGER, 1000)).filter((e) => e.id === batch.id)
  return entries.length > 0 || (await readStored(s.store, `batchkit:tracking:${batch.id}`)) !== undefined
}

const endEvents = (s: Setup, batch: BatchRecord) =>
  s.events.filter((e): e is BatchEndedEvent => e.type !== 'acreate_batch' && e.batchId === batch.id)

const pollFailures = (s: Setup, batch: BatchRecord) =>
  s.errors.filter((e) => e.context === `polling ${batch.id}`).map((e) => (isApiError(e.error) ? e.error.code : e.error))

describe('the tracker and its provider', () => {
  it('asks once per step: three polls take a batch to completed, then it stops following it', async () => {
    const s = await start()
    const batch = await submit(s)
    await untilEnded(s, batch)

    expect(polls(s, batch)).toBe(3)
    expect(endLogs(s)).toEqual([
      { level: 'info', fields: { batchId: batch.id, status: 'completed', polls: 3 }, message: 'batchkit batch ended' },
    ])
    expect(endEvents(s, batch).map((e) => e.type)).toEqual(['batch_success'])
    expect(await followed(s, batch)).toBe(false)
    expect((await s.kit.batches.retrieve(alice, batch.id)).status).toBe('completed')
    expect(s.errors).toEqual([])
  })

  it('fails a batch the provider answers 404 for three polls in a row: exactly three polls, one batch_failed', async () => {
    const s = await start()
    const startedAt = Math.floor(Date.now() / 1000)
    const batch = await submit(s)
    s.fake.failNext({ status: 404, times: 3, pathPrefix: `/v1/batches/${batch.providerBatchId}`, method: 'GET' })
    await untilEnded(s, batch)

    expect(polls(s, batch)).toBe(3)
    expect(pollFailures(s, batch)).toEqual(['upstream_not_found', 'upstream_not_found', 'upstream_not_found'])
    expect(s.logs.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', fields: { batchId: batch.id }, message: 'batchkit lost a batch upstream: marked failed' },
    ])
    expect(endLogs(s)).toEqual([
      { level: 'info', fields: { batchId: batch.id, status: 'failed', polls: 3 }, message: 'batchkit batch ended' },
    ])
    expect(endEvents(s, batch).map((e) => [e.type, e.status])).toEqual([['batch_failed', 'failed']])

    const shown = await s.kit.batches.retrieve(alice, batch.id)
    expect(shown.status).toBe('failed')
    expect(shown.failedAt).toBeGreaterThanOrEqual(startedAt)
    expect(shown.failedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000))
    expect(shown.errors).toEqual([
      {
        code: 'upstream_not_found',
        message: 'The provider no longer has this batch; batchkit stopped following it.',
        param: null,
        line: null,
      },
    ])
    expect(await followed(s, batch)).toBe(false)
    // Nothing asked the provider after the third 404.
    expect(polls(s, batch)).toBe(3)
  })

  it('does not count 404s that a good poll separates: 404, 404, ok, 404, 404 still runs to completed', async () => {
    // Polls 60 ms apart, so the test adds the second pair of 404s between the good poll and the next.
    const s = await start({ tracking: { initialIntervalMs: 60, maxIntervalMs: 60, backoff: 1, tickMs: 5 } })
    const batch = await submit(s)
    const prefix = `/v1/batches/${batch.providerBatchId}`
    s.fake.failNext({ status: 404, times: 2, pathPrefix: prefix, method: 'GET' })
    await until('the good poll', () => polls(s, batch) === 3)
    s.fake.failNext({ status: 404, times: 2, pathPrefix: prefix, method: 'GET' })
    await untilEnded(s, batch)

    expect(polls(s, batch)).toBe(7)
    expect(pollFailures(s, batch)).toEqual(Array(4).fill('upstream_not_found'))
    expect(s.logs.filter((l) => l.level === 'warn')).toEqual([])
    expect(endEvents(s, batch).map((e) => e.type)).toEqual(['batch_success'])
    expect((await s.kit.batches.retrieve(alice, batch.id)).status).toBe('completed')
  })

  it('polls again after other failures, however many: three 500s, then the batch runs to completed', async () => {
    const s = await start()
    const batch = await submit(s)
    s.fake.failNext({ status: 500, times: 3, pathPrefix: `/v1/batches/${batch.providerBatchId}`, method: 'GET' })
    await untilEnded(s, batch)

    expect(polls(s, batch)).toBe(6)
    expect(pollFailures(s, batch)).toEqual(['upstream_error', 'upstream_error', 'upstream_error'])
    expect(endLogs(s)).toEqual([
      { level: 'info', fields: { batchId: batch.id, status: 'completed', polls: 6 }, message: 'batchkit batch ended' },
    ])
    expect(endEvents(s, batch).map((e) => e.type)).toEqual(['batch_success'])
  })

  it('never asks the provider within the freshness window: polls inside it read the stored batch', async () => {
    const s = await start({ freshnessMs: 60_000 })
    const batch = await submit(s)
    await until(
      'three polls by the tracker',
      async () => ((await readStored<{ polls: number }>(s.store, `batchkit:tracking:${batch.id}`))?.polls ?? 0) >= 3,
    )
    expect(polls(s, batch)).toBe(0)
    expect((await s.kit.batches.retrieve(alice, batch.id)).status).toBe('validating')
  })
})
