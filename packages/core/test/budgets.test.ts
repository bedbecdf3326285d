import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import type Keyv from 'keyv'
import { APIError, toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { microsUp } from '../src/budgets/money.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord, Principal } from '../src/types.js'
import { testBackends, useBackend } from './support/backends.js'
import { serveKit } from './support/serve-kit.js'

/**
 * Budgets: a batch holds its estimate's upper bound against its owner's monthly limit before the
 * provider is asked, atomically in the store, and its billing settles the hold to what it cost.
 */

const backends = await testBackends(['memory', 'redis', 'postgres'])

const lines = (count: number, prefix = 'r') =>
  Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      custom_id: `${prefix}${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Write one sentence about the number ${i}.` }],
        max_tokens: 1000,
      },
    }),
  ).join('\n')

describe.each(backends)('budgets on $label', (backend) => {
  if (!useBackend(backend)) return
  let fake: FakeOpenAI
  const limits: Record<string, number> = {}
  const kits: BatchKit[] = []
  let shared: Keyv

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    shared = backend.connect()
  })
  afterAll(async () => {
    await Promise.all(kits.map((kit) => kit.close()))
    await fake?.close()
  })

  /** A kit on this backend, as one server instance; two on the same `store` share its budgets. */
  function instance(store: Keyv = shared): BatchKit {
    const kit = createBatchKit({
      store,
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      authenticate: ({ headers }) => ({ owner: String(headers.authorization ?? '').replace(/^Bearer /, '') }),
      tracking: { enabled: false },
      freshnessMs: 0,
      // Intents a create leaves are due to a reconciler (the one test that starts one) half a second on.
      reconcile: { graceMs: 500 },
      budgets: { limitFor: (owner) => limits[owner] },
      onError: () => undefined,
    })
    kits.push(kit)
    return kit
  }

  async function upload(kit: BatchKit, who: Principal, body = lines(4)) {
    return kit.files.create(who, { file: Readable.from([body]), purpose: 'batch' })
  }

  function create(kit: BatchKit, who: Principal, inputFileId: string) {
    return kit.batches.create(who, { inputFileId, endpoint: '/v1/chat/completions', completionWindow: '24h' })
  }

  /** Reads the batch until it has ended and is billed, as a polling client would. */
  async function billed(kit: BatchKit, who: Principal, id: string): Promise<BatchRecord> {
    for (let i = 0; i < 50; i++) {
      const batch = await kit.batches.retrieve(who, id)
      await kit.batches.idle()
      if (batch.billing) return batch
    }
    throw new Error(`${id} was never billed`)
  }

  it('refuses a batch over its owner’s budget with 429 insufficient_quota, before any provider call', async () => {
    const kit = instance()
    limits.poor = 0.0005
    const served = await serveKit(kit, 'poor')
    try {
      const file = await served.client.files.create({
        file: await toFile(Buffer.from(lines(4)), 'in.jsonl'),
        purpose: 'batch',
      })
      const estimate = await kit.files.estimate({ owner: 'poor' }, file.id)
      expect(estimate?.maxCost).toBeGreaterThan(0.0005)
      const before = fake.batches.size
      const refusal = await served.client.batches
        .create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
        .then(
          () => undefined,
          (error: unknown) => error,
        )
      expect(refusal).toBeInstanceOf(APIError)
      expect(refusal).toMatchObject({ status: 429, code: 'insufficient_quota', type: 'insufficient_quota' })
      expect((refusal as APIError).message).toMatch(
        /Budget exceeded: this batch may cost up to \$0\.00\d+.*budget for \d{4}-\d{2} has \$0\.0005 left of \$0\.0005/,
      )
      expect((refusal as APIError).headers?.get('x-should-retry')).toBe('false')
      expect(fake.batches.size).toBe(before)
      expect(await kit.batches.list({ owner: 'poor' })).toMatchObject({ data: [] })
      expect(await kit.budgets.status('poor')).toMatchObject({
        limit: 0.0005,
        spent: 0,
        reserved: 0,
        remaining: 0.0005,
      })
    } finally {
      await served.close()
    }
  })

  it('holds the estimate’s upper bound while a batch runs, and settles it to the billed cost', async () => {
    const kit = instance()
    const ann = { owner: 'ann' }
    limits.ann = 1
    const file = await upload(kit, ann)
    const hold = microsUp(file.estimate?.maxCost as number)
    const batch = await create(kit, ann, file.id)
    expect(batch.budget).toMatchObject({ micros: hold })
    expect(await kit.budgets.status('ann')).toMatchObject({
      spent: 0,
      reserved: hold / 1e6,
      remaining: (1e6 - hold) / 1e6,
    })

    const done = await billed(kit, ann, batch.id)
    expect(done.status).toBe('completed')
    const cost = done.billing?.totals.cost as number
    expect(cost).toBeGreaterThan(0)
    expect(await kit.budgets.status('ann')).toMatchObject({ spent: microsUp(cost) / 1e6, reserved: 0 })
    // Settling again (the tracker after a crash) counts nothing twice.
    await kit.batches.retrieve(ann, batch.id)
    await kit.batches.idle()
    expect(await kit.budgets.status('ann')).toMatchObject({ spent: microsUp(cost) / 1e6, reserved: 0 })
  })

  it('settles a cancelled batch to what ran, and a batch whose requests all failed to nothing', async () => {
    const kit = instance()
    const cat = { owner: 'cat' }
    limits.cat = 1
    const batch = await create(kit, cat, (await upload(kit, cat)).id)
    await kit.batches.retrieve(cat, batch.id) // the read's refresh moves it to in_progress at the fake
    await kit.batches.idle()
    await kit.batches.cancel(cat, batch.id)
    const cancelled = await billed(kit, cat, batch.id)
    expect(cancelled.status).toBe('cancelled')
    const ran = cancelled.billing?.totals.cost as number
    expect(ran).toBeGreaterThan(0)
    expect(await kit.budgets.status('cat')).toMatchObject({ spent: microsUp(ran) / 1e6, reserved: 0 })

    const dan = { owner: 'dan' }
    limits.dan = 1
    const failing = await create(kit, dan, (await upload(kit, dan, lines(3, 'fail-'))).id)
    const failed = await billed(kit, dan, failing.id)
    expect(failed.billing?.totals.requests).toEqual({ succeeded: 0, failed: 3 })
    expect(await kit.budgets.status('dan')).toMatchObject({ spent: 0, reserved: 0, remaining: 1 })
  })

  it('lets the hold go when the provider refuses the batch, at once or through the reconciler', async () => {
    const kit = instance()
    const eve = { owner: 'eve' }
    limits.eve = 1
    const file = await upload(kit, eve)
    // A rate limit proves nothing was made: the hold goes with the intent.
    fake.failNext({ status: 429, method: 'POST', pathPrefix: '/v1/batches' })
    await expect(create(kit, eve, file.id)).rejects.toMatchObject({ status: 503, code: 'upstream_rate_limited' })
    expect(await kit.budgets.status('eve')).toMatchObject({ spent: 0, reserved: 0 })

    // An answer that proves nothing (batchkit cannot tell a made batch from none) leaves the intent and
    // its hold to the reconciler, which finds no batch upstream and lets the hold go.
    fake.failNext({ status: 500, method: 'POST', pathPrefix: '/v1/batches' })
    await expect(create(kit, eve, file.id)).rejects.toMatchObject({ status: 502 })
    const held = (await kit.budgets.status('eve')).reserved
    expect(held).toBeGreaterThan(0)
    const reconciler = createBatchKit({
      store: shared,
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { initialIntervalMs: 50, tickMs: 50 },
      reconcile: { graceMs: 500, intervalMs: 50 },
      budgets: { limitFor: (owner) => limits[owner] },
      onError: () => undefined,
    })
    kits.push(reconciler)
    await expect.poll(async () => (await kit.budgets.status('eve')).reserved, { timeout: 10_000 }).toBe(0)
    expect((await kit.budgets.status('eve')).spent).toBe(0)
    // The budget is whole again: the same file goes through.
    expect((await create(kit, eve, file.id)).status).toBe('validating')
  })

  it('lets two instances racing for the last dollars pass no more batches than the budget holds', async () => {
    // Two instances as two servers would run them: on Redis and PostgreSQL each has its own
    // connection; in memory they share the one store (and so its ledger).
    const [one, two] = backend.multiInstanceSafe
      ? [instance(backend.connect()), instance(backend.connect())]
      : [instance(), instance()]
    const fay = { owner: 'fay' }
    const files = await Promise.all(Array.from({ length: 8 }, (_, i) => upload(i % 2 ? one : two, fay)))
    const hold = microsUp(files[0]?.estimate?.maxCost as number)
    expect(files.every((file) => microsUp(file.estimate?.maxCost as number) === hold)).toBe(true)
    limits.fay = (2.5 * hold) / 1e6 // room for two holds, not three
    const before = fake.batches.size
    const results = await Promise.allSettled(files.map((file, i) => create(i % 2 ? two : one, fay, file.id)))
    const passed = results.filter((r) => r.status === 'fulfilled')
    const refused = results.filter((r) => r.status === 'rejected')
    expect(passed).toHaveLength(2)
    for (const r of refused)
      expect((r as PromiseRejectedResult).reason).toMatchObject({ status: 429, code: 'insufficient_quota' })
    expect(fake.batches.size - before).toBe(2)
    expect(await one.budgets.status('fay')).toMatchObject({ reserved: (2 * hold) / 1e6, spent: 0 })
  })
})
