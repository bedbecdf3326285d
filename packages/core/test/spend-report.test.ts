import { Readable } from 'node:stream'
import { type FakeOpenAI, fakeUsage, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord } from '../src/types.js'
import { testBackends, useBackend } from './support/backends.js'

/**
 * kit.spend: what batches cost, from their billing records, by model, day and owner, exact to the
 * token and to the cent, on every store's list of billed batches.
 */

const backends = await testBackends(['memory', 'redis', 'postgres'])

/** Batch prices as integers of 1e-10 USD per token (USD per 1M tokens × 10^4), so expected sums are exact. */
const UNITS_PER_TOKEN: Record<string, { input: bigint; output: bigint }> = {
  'gpt-4o-mini': { input: 750n, output: 3000n },
  'gpt-4.1-nano': { input: 500n, output: 2000n },
  'text-embedding-3-small': { input: 100n, output: 0n },
}

interface Plan {
  owner: string
  model: string
  url: '/v1/chat/completions' | '/v1/embeddings'
  ids: string[]
}

function linesOf(plan: Plan): Record<string, unknown>[] {
  return plan.ids.map((id, i) => ({
    custom_id: id,
    method: 'POST',
    url: plan.url,
    body:
      plan.url === '/v1/embeddings'
        ? { model: plan.model, input: `Embed sentence ${i} of ${plan.owner}, about invoices and receipts.` }
        : {
            model: plan.model,
            messages: [{ role: 'user', content: `Question ${i} from ${plan.owner}: what is ${i * 7} plus ${i}?` }],
            max_tokens: 10 + i,
          },
  }))
}

/** What the fake upstream publishes for a plan's requests (failing ones use nothing), priced exactly. */
function expected(plans: Plan[]) {
  let units = 0n
  let input = 0
  let output = 0
  let succeeded = 0
  let failed = 0
  for (const plan of plans) {
    const price = UNITS_PER_TOKEN[plan.model] as { input: bigint; output: bigint }
    for (const line of linesOf(plan)) {
      if (String(line.custom_id).startsWith('fail-')) {
        failed++
        continue
      }
      succeeded++
      const usage = fakeUsage(line)
      input += usage.prompt_tokens
      output += usage.completion_tokens
      units += BigInt(usage.prompt_tokens) * price.input + BigInt(usage.completion_tokens) * price.output
    }
  }
  return {
    inputTokens: input,
    outputTokens: output,
    requests: { succeeded, failed },
    cost: Number(units) / 1e10,
    units,
  }
}

const DAY_ONE = new Date('2026-03-30T10:00:00Z')
const DAY_TWO = new Date('2026-03-31T23:59:30Z')
const DAY_THREE = new Date('2026-04-01T00:00:10Z')

const PLANS: Array<Plan & { at: Date }> = [
  { at: DAY_ONE, owner: 'ann', model: 'gpt-4o-mini', url: '/v1/chat/completions', ids: ['a1', 'a2', 'a3'] },
  { at: DAY_ONE, owner: 'bob', model: 'gpt-4.1-nano', url: '/v1/chat/completions', ids: ['b1', 'b2'] },
  { at: DAY_TWO, owner: 'ann', model: 'text-embedding-3-small', url: '/v1/embeddings', ids: ['e1', 'e2'] },
  { at: DAY_TWO, owner: 'bob', model: 'gpt-4o-mini', url: '/v1/chat/completions', ids: ['b3', 'fail-b4', 'b5'] },
  { at: DAY_THREE, owner: 'cy', model: 'gpt-4.1-nano', url: '/v1/chat/completions', ids: ['c1'] },
]

describe.each(backends)('spend reports on $label', (backend) => {
  if (!useBackend(backend)) return
  let fake: FakeOpenAI
  let kit: BatchKit
  const billed: Array<{ plan: Plan; batch: BatchRecord }> = []

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      store: backend.connect(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    })
    // Batches billed on three days: the clock of this process is set to each day while its batches end.
    for (const plan of PLANS) {
      vi.useFakeTimers({ toFake: ['Date'], now: plan.at })
      const who = { owner: plan.owner }
      const body = linesOf(plan).map((line) => `${JSON.stringify(line)}\n`)
      const file = await kit.files.create(who, { file: Readable.from(body), purpose: 'batch' })
      const created = await kit.batches.create(who, {
        inputFileId: file.id,
        endpoint: plan.url,
        completionWindow: '24h',
      })
      let batch = created
      for (let i = 0; i < 50 && !batch.billing; i++) {
        batch = await kit.batches.retrieve(who, created.id)
        await kit.batches.idle()
      }
      expect(batch.billing?.computedAt).toBe(Math.floor(plan.at.getTime() / 1000))
      billed.push({ plan, batch })
      vi.useRealTimers()
    }
  })
  afterEach(() => vi.useRealTimers())
  afterAll(async () => {
    await kit?.close()
    await fake?.close()
  })

  const all = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-05-01T00:00:00Z') }

  it('sums every model’s tokens and cost exactly as the provider published them', async () => {
    const report = await kit.spend({ ...all, groupBy: 'model' })
    expect(report.groups.map((g) => g.key)).toEqual(['gpt-4.1-nano', 'gpt-4o-mini', 'text-embedding-3-small'])
    for (const group of report.groups) {
      const mine = expected(PLANS.filter((p) => p.model === group.key))
      expect(group).toMatchObject({
        inputTokens: mine.inputTokens,
        outputTokens: mine.outputTokens,
        requests: mine.requests,
        cost: mine.cost,
        pricedCost: mine.cost,
        unpricedModels: [],
      })
    }
    const everything = expected(PLANS)
    expect(report.totals).toMatchObject({
      batches: PLANS.length,
      inputTokens: everything.inputTokens,
      outputTokens: everything.outputTokens,
      totalTokens: everything.inputTokens + everything.outputTokens,
      requests: everything.requests,
      cost: everything.cost,
    })
    // The same as the batches' own bills, to the cent and below.
    const bills = billed.reduce(
      (units, { batch }) => units + BigInt(Math.round((batch.billing?.totals.cost as number) * 1e10)),
      0n,
    )
    expect(bills).toBe(everything.units)
    expect(Math.round((report.totals.cost as number) * 100)).toBe(Math.round(Number(everything.units) / 1e8))
  })

  it('groups by UTC day of billing and by owner, and keeps to one owner and to the period asked', async () => {
    const byDay = await kit.spend({ ...all, groupBy: 'day' })
    expect(byDay.groups.map((g) => [g.key, g.batches, g.cost])).toEqual([
      ['2026-03-30', 2, expected(PLANS.filter((p) => p.at === DAY_ONE)).cost],
      ['2026-03-31', 2, expected(PLANS.filter((p) => p.at === DAY_TWO)).cost],
      ['2026-04-01', 1, expected(PLANS.filter((p) => p.at === DAY_THREE)).cost],
    ])

    const byOwner = await kit.spend({ ...all, groupBy: 'owner' })
    expect(byOwner.groups.map((g) => [g.key, g.batches, g.inputTokens, g.cost])).toEqual(
      ['ann', 'bob', 'cy'].map((owner) => {
        const mine = expected(PLANS.filter((p) => p.owner === owner))
        return [owner, PLANS.filter((p) => p.owner === owner).length, mine.inputTokens, mine.cost]
      }),
    )

    // Bob in March: from the first moment of the 30th to the last of the 31st, nothing of April.
    const bobInMarch = await kit.spend({
      owner: 'bob',
      from: new Date('2026-03-30T00:00:00Z'),
      to: new Date('2026-04-01T00:00:00Z'),
      groupBy: 'model',
    })
    const bobs = PLANS.filter((p) => p.owner === 'bob')
    expect(bobInMarch.totals).toMatchObject({
      batches: 2,
      cost: expected(bobs).cost,
      requests: expected(bobs).requests,
    })
    // `to` is exclusive and `from` inclusive, to the second of the bill.
    const lastSecond = await kit.spend({
      from: new Date(DAY_THREE.getTime()),
      to: new Date(DAY_THREE.getTime() + 1000),
      groupBy: 'owner',
    })
    expect(lastSecond.groups.map((g) => g.key)).toEqual(['cy'])
    const before = await kit.spend({ from: all.from, to: new Date(DAY_THREE.getTime()), groupBy: 'owner' })
    expect(before.totals.batches).toBe(4)
    expect((await kit.spend({ owner: 'nobody', ...all, groupBy: 'day' })).totals).toMatchObject({ batches: 0, cost: 0 })
  })

  it('refuses a period it cannot read', async () => {
    await expect(kit.spend({ from: all.to, to: all.from, groupBy: 'day' })).rejects.toMatchObject({
      status: 400,
      param: 'to',
    })
    await expect(kit.spend({ ...all, groupBy: 'week' as never })).rejects.toMatchObject({
      status: 400,
      param: 'groupBy',
    })
  })
})
