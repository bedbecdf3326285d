import { Readable } from 'node:stream'
import { type FakeOpenAI, fakeUsage, startFakeOpenAI } from '@batchkit/testkit'
import { Keyv } from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchEndedEvent, BatchEvent } from '../src/events/types.js'
import { toBatchObject } from '../src/http/wire.js'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { DEFAULT_PRICES } from '../src/pricing/price-table.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord } from '../src/types.js'
import { testBackends, useBackend } from './support/backends.js'

const alice = { owner: 'alice' }
/** Fast enough for tests; the fake advances a batch one step per poll. */
const FAST = {
  tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
  delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
  // The tracker polls no more often than the freshness window; reads refresh in the background.
  freshnessMs: 0,
}

let fake: FakeOpenAI
beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

function lines(n: number, options: { model?: string; prefix?: string } = {}) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `${options.prefix ?? 'r'}-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: options.model ?? 'gpt-4o-mini',
      messages: [{ role: 'user', content: `question ${i}: ${'ünï'.repeat(i)}` }],
      max_tokens: 10 + i,
    },
  }))
}
const jsonl = (rows: unknown[]) => `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`

function kitWith(options: Partial<BatchKitOptions> & { events?: BatchEvent[] }): BatchKit {
  const events = options.events ?? []
  return createBatchKit({
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    onError: () => undefined,
    callbacks: [(event) => void events.push(event)],
    ...FAST,
    ...options,
  })
}

async function submit(kit: BatchKit, rows: unknown[]): Promise<BatchRecord> {
  const file = await kit.files.create(alice, { file: Readable.from([jsonl(rows)]), purpose: 'batch' })
  return kit.batches.create(alice, { inputFileId: file.id, endpoint: '/v1/chat/completions', completionWindow: '24h' })
}

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const started = Date.now()
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const ended = (events: BatchEvent[], batchId: string) =>
  events.filter((e): e is BatchEndedEvent => e.type !== 'acreate_batch' && e.batchId === batchId)

describe('following a batch to its end', () => {
  it('bills a completed batch exactly as the price table implies, in the event and in the Batch usage', async () => {
    const events: BatchEvent[] = []
    const kit = kitWith({ events })
    try {
      const rows = [...lines(4), ...lines(1, { prefix: 'fail' })]
      const batch = await submit(kit, rows)
      const created = await until('acreate_batch', () => events.find((e) => e.type === 'acreate_batch'))
      expect(created).toMatchObject({
        type: 'acreate_batch',
        batchId: batch.id,
        owner: 'alice',
        provider: 'openai',
        model: 'gpt-4o-mini',
        endpoint: '/v1/chat/completions',
        requestCount: 5,
        responseCost: 0,
      })
      const [success] = await until('batch_success', () =>
        ended(events, batch.id).length ? ended(events, batch.id) : undefined,
      )

      // The expected figures, from the fake's published usage formula and the table's prices.
      const usages = lines(4).map(fakeUsage)
      const input = usages.reduce((s, u) => s + u.prompt_tokens, 0)
      const cached = usages.reduce((s, u) => s + u.prompt_tokens_details.cached_tokens, 0)
      const output = usages.reduce((s, u) => s + u.completion_tokens, 0)
      const price = DEFAULT_PRICES['gpt-4o-mini']
      if (!price) throw new Error('gpt-4o-mini must be priced')
      const cost =
        ((input - cached) * price.inputPerMTok + cached * price.cachedInputPerMTok + output * price.outputPerMTok) / 1e6

      expect(success?.type).toBe('batch_success')
      expect(success?.status).toBe('completed')
      expect(success?.requestCounts).toEqual({ total: 5, completed: 4, failed: 1 })
      expect(success?.usage).toMatchObject({
        requests: { succeeded: 4, failed: 1 },
        inputTokens: input,
        cachedTokens: cached,
        outputTokens: output,
        totalTokens: input + output,
      })
      expect(success?.responseCost).toBeCloseTo(cost, 9)
      expect(success?.byModel['gpt-4o-mini']?.cost).toBeCloseTo(cost, 9)
      expect(success?.unpricedModels).toEqual([])
      expect(success?.timings.durationSeconds).toBe(success!.timings.endedAt! - success!.timings.createdAt)

      const shown = toBatchObject(await kit.batches.retrieve(alice, batch.id))
      expect(shown.usage).toEqual({
        input_tokens: input,
        input_tokens_details: { cached_tokens: cached },
        output_tokens: output,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: input + output,
      })
    } finally {
      await kit.close()
    }
  })

  it('bills what a cancelled batch completed, and an unknown model as null cost with a warning', async () => {
    const events: BatchEvent[] = []
    const warnings: unknown[] = []
    const logger = { debug() {}, info() {}, error() {}, warn: (fields: unknown) => void warnings.push(fields) }
    const kit = kitWith({ events, logger, tracking: { ...FAST.tracking, initialIntervalMs: 60_000 } })
    try {
      const batch = await submit(kit, lines(4, { model: 'my-private-model' }))
      // A read refreshes it, so the fake starts the batch; cancelled in progress, it keeps the first half.
      await kit.batches.retrieve(alice, batch.id)
      await kit.batches.idle()
      await kit.batches.cancel(alice, batch.id)
      await kit.batches.retrieve(alice, batch.id)
      const [event] = await until('batch_cancelled', () =>
        ended(events, batch.id).length ? ended(events, batch.id) : undefined,
      )
      expect(event?.type).toBe('batch_cancelled')
      expect(event?.usage.requests.succeeded).toBe(2)
      expect(event?.usage.inputTokens).toBe(lines(2).reduce((s, row) => s + fakeUsage(row).prompt_tokens, 0))
      expect(event?.responseCost).toBeNull()
      expect(event?.unpricedModels).toEqual(['my-private-model'])
      expect(warnings).toContainEqual({ model: 'my-private-model' })
    } finally {
      await kit.close()
    }
  })

  it('reports how long a batch took: from its creation to its end, as its Batch object shows them', async () => {
    // A provider that takes its time: one step every 600 ms, so validating → completed spans 1.8 s.
    const slow = await startFakeOpenAI({ progress: 600 })
    const events: BatchEvent[] = []
    const kit = kitWith({ events, providers: { openai: openai({ apiKey: slow.apiKey, baseURL: slow.baseURL }) } })
    try {
      const started = Date.now()
      const batch = await submit(kit, lines(2))
      const [success] = await until('batch_success', () =>
        ended(events, batch.id).length ? ended(events, batch.id) : undefined,
      )
      const elapsedSeconds = (Date.now() - started) / 1000
      const shown = toBatchObject(await kit.batches.retrieve(alice, batch.id))
      expect(shown.status).toBe('completed')
      expect(success?.timings).toMatchObject({ createdAt: shown.created_at, endedAt: shown.completed_at })
      const duration = success?.timings.durationSeconds
      expect(duration).toBe((shown.completed_at as number) - shown.created_at)
      // Whole seconds of a run of at least 1.8 s: at least 1, and no more than the time the test waited.
      expect(duration).toBeGreaterThanOrEqual(1)
      expect(duration).toBeLessThanOrEqual(Math.ceil(elapsedSeconds))
    } finally {
      await kit.close()
      await slow.close()
    }
  })

  it('finishes a batch that was open when its server stopped, once, after a restart', async () => {
    const store = new Keyv()
    const before: BatchEvent[] = []
    // The first server serves the API but runs no tracker, so the batch is still open when it stops.
    const first = kitWith({ store, events: before, tracking: { ...FAST.tracking, enabled: false } })
    const batch = await submit(first, lines(2))
    await first.batches.retrieve(alice, batch.id)
    await first.batches.idle()
    expect((await first.batches.retrieve(alice, batch.id)).status).toBe('in_progress')
    await until('acreate_batch', () => before.find((e) => e.type === 'acreate_batch'))
    await first.close()

    const after: BatchEvent[] = []
    const second = kitWith({ store, events: after })
    try {
      await until('batch_success', () => (ended(after, batch.id).length ? true : undefined))
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(ended(after, batch.id).map((e) => e.type)).toEqual(['batch_success'])
      expect(ended(before, batch.id)).toEqual([])
      // The created event was already delivered before the restart: not again.
      expect(after.filter((e) => e.type === 'acreate_batch')).toEqual([])
    } finally {
      await second.close()
    }
  })
})

describe('a finish cut short after its event was delivered', () => {
  /** A store in which an instance "dies" each time it tries to drop a finished batch from its schedule. */
  class DyingAtScheduleDrop extends Keyv {
    dying = true
    scheduleDropped = false
    override async delete(key: string | string[]): Promise<boolean> {
      if ([key].flat().some((k) => k.startsWith('batchkit:tracking:'))) {
        if (this.dying) throw new Error('the instance died before it dropped the batch from its schedule')
        this.scheduleDropped = true
      }
      return super.delete(key)
    }
  }

  it('runs the finish again after a restart, and does not deliver batch_success a second time', async () => {
    const store = new DyingAtScheduleDrop()
    const before: BatchEvent[] = []
    const first = kitWith({ store, events: before })
    const batch = await submit(first, lines(2))
    await until('batch_success', () => (ended(before, batch.id).length ? true : undefined))
    // The event is delivered, the batch still on the schedule: the instance keeps retrying the finish, then dies.
    await new Promise((resolve) => setTimeout(resolve, 200))
    await first.close()

    store.dying = false
    const after: BatchEvent[] = []
    const second = kitWith({ store, events: after })
    try {
      await until('the finish to run again', () => (store.scheduleDropped ? true : undefined))
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(ended(before, batch.id).map((e) => e.type)).toEqual(['batch_success'])
      expect(ended(after, batch.id)).toEqual([])
    } finally {
      await second.close()
    }
  })
})

describe('callbacks that fail', () => {
  it('never change an API response or stop other events; they are retried, then reported', async () => {
    const delivered: BatchEvent[] = []
    const reported: string[] = []
    let throwingCalls = 0
    const kit = kitWith({
      callbacks: [
        () => {
          throwingCalls++
          throw new Error('callback bug')
        },
        () => new Promise(() => undefined),
        (event) => void delivered.push(event),
      ],
      delivery: { pollIntervalMs: 10, retryDelayMs: 5, maxAttempts: 3, callbackTimeoutMs: 50 },
      onError: (_error, context) => void reported.push(context),
    })
    try {
      const batch = await submit(kit, lines(2))
      expect(batch.status).toBe('validating')
      await until('batch_success', () => (ended(delivered, batch.id).length ? true : undefined))
      await until('reports', () => (reported.filter((r) => r.includes('given up')).length >= 4 ? true : undefined))
      expect(throwingCalls).toBe(6)
      expect(delivered.map((e) => e.type)).toEqual(['acreate_batch', 'batch_success'])
    } finally {
      await kit.close()
    }
  })
})

describe('nothing silent without a logger or an onError', () => {
  it('warns of an unpriced model through the process when no logger is given', async () => {
    const warnings: Error[] = []
    const onWarning = (warning: Error) => void warnings.push(warning)
    process.on('warning', onWarning)
    const events: BatchEvent[] = []
    const kit = kitWith({ events })
    try {
      const batch = await submit(kit, lines(1, { model: 'my-unlisted-model' }))
      await until('batch_success', () => (ended(events, batch.id).length ? true : undefined))
      await until('the warning', () => warnings.find((w) => w.message.includes('my-unlisted-model')))
      const warning = warnings.find((w) => w.message.includes('my-unlisted-model')) as Error & { code?: string }
      expect(warning.code).toBe('BATCHKIT_UNPRICED_MODEL')
    } finally {
      process.off('warning', onWarning)
      await kit.close()
    }
  })

  it("reports failures to the logger's error when no onError is given", async () => {
    const logged: Array<{ fields: Record<string, unknown>; message?: string }> = []
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (fields: Record<string, unknown>, message?: string) => void logged.push({ fields, message }),
    }
    const kit = kitWith({
      logger,
      onError: undefined,
      callbacks: [
        () => {
          throw new Error('callback bug')
        },
      ],
      delivery: { pollIntervalMs: 10, retryDelayMs: 5, maxAttempts: 1 },
    })
    try {
      await submit(kit, lines(1))
      const entry = await until('a logged failure', () =>
        logged.find((l) => String(l.fields.context).includes('given up')),
      )
      expect((entry.fields.err as Error).message).toBe('callback bug')
      expect(entry.message).toBe(`batchkit error while ${entry.fields.context}`)
    } finally {
      await kit.close()
    }
  })
})

const [redis] = await testBackends(['redis'])

describe.each([redis])('three instances sharing $label', (backend) => {
  if (!backend || !useBackend(backend)) return

  it('emit exactly one batch_success per batch, none lost', async () => {
    const events: BatchEvent[] = []
    const kits = [0, 1, 2].map(() => kitWith({ store: backend.connect(), events }))
    try {
      const batches = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(kits[i % 3] as BatchKit, lines(2))))
      await until(
        'every batch_success',
        () => (batches.every((b) => ended(events, b.id).length > 0) ? true : undefined),
        30_000,
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      for (const batch of batches) {
        expect(ended(events, batch.id).map((e) => e.type)).toEqual(['batch_success'])
        expect(events.filter((e) => e.type === 'acreate_batch' && e.batchId === batch.id)).toHaveLength(1)
      }
    } finally {
      await Promise.all(kits.map((kit) => kit.close()))
    }
  })

  it('resume after a restart on a new connection, and take over a batch whose instance died holding it', async () => {
    const events: BatchEvent[] = []
    const first = kitWith({ store: backend.connect(), events, tracking: { ...FAST.tracking, enabled: false } })
    const batch = await submit(first, lines(2))
    await first.close()

    // An instance that died while it held the batch: its lease runs out, then another instance finishes it.
    const { coordinationFor } = await import('../src/store/create-index.js')
    const { leases } = coordinationFor(backend.connect())
    expect(await leases.acquire(`track:${batch.id}`, 'dead-instance', 400)).toBe(true)
    const heldUntil = Date.now() + 400

    const restarted = kitWith({ store: backend.connect(), events, tracking: { ...FAST.tracking, leaseMs: 1000 } })
    try {
      await until('batch_success', () => (ended(events, batch.id).length ? true : undefined))
      expect(Date.now()).toBeGreaterThanOrEqual(heldUntil)
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(ended(events, batch.id).map((e) => e.type)).toEqual(['batch_success'])
    } finally {
      await restarted.close()
    }
  })
})
