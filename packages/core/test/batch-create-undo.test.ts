import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { BudgetLedger } from '../src/budgets/ledger.js'
import { ApiError } from '../src/errors.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { coordinationFor } from '../src/store/create-index.js'
import type { Principal } from '../src/types.js'
import { keyvOverAdapter } from './support/backends.js'
import { BreakableMap } from './support/breakable-map.js'
import { chatRequests, rejection } from './support/chat-requests.js'

/**
 * A batch create that fails part way undoes what it did, and tells the operator what it could not
 * undo: a budget refusal or a provider's refusal leaves no intent behind; a failure that may have
 * left something (a store error, a provider that cannot be reached) keeps the intent for the
 * reconciler, with the budget still held; every cleanup step that fails is reported.
 */

/** A budget ledger whose releases (settles) fail while `failing` is set. */
function breakableLedger(ledger: BudgetLedger): BudgetLedger & { failing: boolean } {
  return {
    failing: false,
    shared: ledger.shared,
    reserve: (...args) => ledger.reserve(...args),
    read: (...args) => ledger.read(...args),
    async settle(...args) {
      if (this.failing) throw new Error('ledger down')
      return ledger.settle(...args)
    },
  }
}

describe('a batch create that fails part way', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  const records = new BreakableMap()
  const reported: { error: unknown; context: string }[] = []
  const limits: Record<string, number | Error> = {}
  let ledger: ReturnType<typeof breakableLedger>
  let n = 0
  /** A caller of this test's own, with a budget of `limit` USD (or a limit hook that throws it). */
  const owner = (limit: number | Error = 10): Principal => {
    const who = `owner-${++n}`
    limits[who] = limit
    return { owner: who }
  }

  beforeAll(async () => {
    fake = await startFakeOpenAI({ progress: 3_600_000 })
    const store = keyvOverAdapter(records)
    const coordination = coordinationFor(store)
    ledger = breakableLedger(coordination.ledger as BudgetLedger)
    kit = createBatchKit({
      store,
      coordination: { ...coordination, ledger },
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      budgets: {
        limitFor: (who) => {
          const limit = limits[who]
          if (limit instanceof Error) throw limit
          return limit
        },
      },
      onError: (error, context) => void reported.push({ error, context }),
    })
  })
  afterEach(() => {
    records.failing = undefined
    ledger.failing = false
    reported.length = 0
  })
  afterAll(async () => {
    await kit?.close()
    await fake?.close()
  })

  async function upload(who: Principal) {
    return kit.files.create(who, { file: Readable.from([chatRequests(3, { maxTokens: 100 })]), purpose: 'batch' })
  }

  async function create(who: Principal, inputFileId: string) {
    return rejection(
      kit.batches.create(who, { inputFileId, endpoint: '/v1/chat/completions', completionWindow: '24h' }),
    )
  }

  /** The intents left in the store, by batch id. */
  const intents = () => [...records.keys()].filter((key) => key.includes(':intent:batch_'))
  const upstreamCreates = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/batches').length
  const contexts = () => reported.map((r) => r.context)

  it('refused by the budget: nothing held, no intent left, no provider call', async () => {
    const who = owner(0.000001)
    const file = await upload(who)
    const creates = upstreamCreates()
    expect(await create(who, file.id)).toMatchObject({ status: 429, code: 'insufficient_quota' })
    expect(upstreamCreates()).toBe(creates)
    expect(intents()).toEqual([])
    expect(await kit.budgets.status(who.owner)).toMatchObject({ reserved: 0, spent: 0 })
  })

  it('refused by the budget while the store cannot forget the intent: the refusal stands, the failure is reported', async () => {
    const who = owner(0.000001)
    const file = await upload(who)
    records.failing = { op: 'delete', key: /:intent:batch_/ }
    expect(await create(who, file.id)).toMatchObject({ status: 429, code: 'insufficient_quota' })
    records.failing = undefined
    expect(intents()).toHaveLength(1)
    expect(contexts()).toContainEqual(expect.stringMatching(/^ending the intent of batch_/))
  })

  for (const failure of [new Error('limits service down'), new ApiError(500, 'limits service down')]) {
    it(`keeps the intent for the reconciler when the budget check fails (${failure.constructor.name} ${failure instanceof ApiError ? failure.status : ''})`, async () => {
      const before = intents().length
      const who = owner(failure)
      const file = await upload(who)
      const creates = upstreamCreates()
      const error = await create(who, file.id)
      expect(error).toBe(failure)
      expect(upstreamCreates()).toBe(creates)
      // A store failure may have held the budget all the same: only the reconciler can tell, so it must find the intent.
      expect(intents()).toHaveLength(before + 1)
    })
  }

  it('refused by the provider: the budget is let go and no intent is left', async () => {
    const who = owner()
    const file = await upload(who)
    fake.failNext({ status: 400, method: 'POST', pathPrefix: '/v1/batches' })
    const before = intents().length
    expect(await create(who, file.id)).toMatchObject({ status: 502 })
    expect(intents()).toHaveLength(before)
    expect(await kit.budgets.status(who.owner)).toMatchObject({ reserved: 0, spent: 0 })
    expect(reported).toEqual([])
  })

  it('refused by the provider while the budget cannot be let go: the intent stays, the failure is reported', async () => {
    const who = owner()
    const file = await upload(who)
    fake.failNext({ status: 400, method: 'POST', pathPrefix: '/v1/batches' })
    ledger.failing = true
    const before = intents().length
    expect(await create(who, file.id)).toMatchObject({ status: 502 })
    ledger.failing = false
    expect(intents()).toHaveLength(before + 1)
    expect((await kit.budgets.status(who.owner)).reserved).toBeGreaterThan(0)
    expect(contexts()).toContainEqual(expect.stringMatching(/^releasing the budget of batch_/))
  })

  it('refused by the provider while the store cannot forget the intent: the failure is reported', async () => {
    const who = owner()
    const file = await upload(who)
    fake.failNext({ status: 400, method: 'POST', pathPrefix: '/v1/batches' })
    records.failing = { op: 'delete', key: /:intent:batch_/ }
    expect(await create(who, file.id)).toMatchObject({ status: 502 })
    records.failing = undefined
    expect(contexts()).toContainEqual(expect.stringMatching(/^ending the intent of batch_/))
    expect(await kit.budgets.status(who.owner)).toMatchObject({ reserved: 0 })
  })

  it('succeeds when only forgetting its intent fails: the batch exists, the failure is reported', async () => {
    const who = owner()
    const file = await upload(who)
    records.failing = { op: 'delete', key: /:intent:batch_/ }
    const batch = await kit.batches.create(who, {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
    records.failing = undefined
    expect((await kit.batches.retrieve(who, batch.id)).status).toBe('validating')
    expect(contexts()).toContain(`ending the intent of ${batch.id}`)
  })

  describe('made upstream, but its record cannot be stored', () => {
    const failRecord = () => {
      records.failing = { op: 'set', key: /:batch:batch_/ }
    }

    it('is cancelled upstream, its budget let go, and its intent ended', async () => {
      const who = owner()
      const file = await upload(who)
      const before = intents().length
      const known = new Set(fake.batches.keys())
      failRecord()
      expect(await create(who, file.id)).toMatchObject({ status: 503, code: 'store_unavailable' })
      records.failing = undefined
      const made = [...fake.batches.values()].filter((batch) => !known.has(batch.id))
      expect(made.map((batch) => batch.status)).toEqual(['cancelling'])
      expect(intents()).toHaveLength(before)
      expect(await kit.budgets.status(who.owner)).toMatchObject({ reserved: 0 })
      expect(contexts()).not.toContainEqual(expect.stringMatching(/failed create|releasing|ending/))
    })

    it('keeps its intent and budget when the provider cannot cancel it, and reports why', async () => {
      const who = owner()
      const file = await upload(who)
      const before = intents().length
      failRecord()
      fake.failNext({ status: 500, method: 'POST', pathPrefix: '/v1/batches/' })
      expect(await create(who, file.id)).toMatchObject({ status: 503 })
      records.failing = undefined
      expect(intents()).toHaveLength(before + 1)
      expect((await kit.budgets.status(who.owner)).reserved).toBeGreaterThan(0)
      expect(contexts()).toContain('cancelling an upstream batch after a failed create')
    })

    it('keeps its intent when its budget cannot be let go, and reports why', async () => {
      const who = owner()
      const file = await upload(who)
      const before = intents().length
      failRecord()
      ledger.failing = true
      expect(await create(who, file.id)).toMatchObject({ status: 503 })
      records.failing = undefined
      ledger.failing = false
      expect(intents()).toHaveLength(before + 1)
      expect(contexts()).toContainEqual(expect.stringMatching(/^releasing the budget of batch_/))
    })

    it('reports a record it could not delete again', async () => {
      const who = owner()
      const file = await upload(who)
      let batchKey: string | undefined
      // The record write fails, and so does the delete that tries to undo it.
      records.failing = { op: 'set', key: /:batch:batch_/ }
      const original = records.delete.bind(records)
      records.delete = (key: string) => {
        if (/:batch:batch_/.test(key)) {
          batchKey = key
          throw new Error('store down (delete)')
        }
        return original(key)
      }
      try {
        expect(await create(who, file.id)).toMatchObject({ status: 503 })
      } finally {
        records.delete = original
      }
      expect(batchKey).toMatch(/:batch:batch_/)
      expect(contexts()).toContain('deleting a batch record after a failed create')
    })
  })
})
