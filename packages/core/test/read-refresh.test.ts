import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { Provider, ProviderBatch } from '../src/providers/types.js'
import type { BatchRecord } from '../src/types.js'

/** The background refresh behind a read: its order against a cancel, and its pace when it fails. */

const alice = { owner: 'alice' }
const WINDOW_MS = 1000
const line = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } })}\n`

let fake: FakeOpenAI
beforeAll(async () => {
  // Held still: only what a test does upstream changes a batch.
  fake = await startFakeOpenAI({ progress: 3_600_000 })
})
afterAll(() => fake?.close())

/** OpenAI's provider whose batch reads can be held back until the test lets them go. */
function withHeldReads(inner: Provider) {
  const held: Array<() => void> = []
  let holding = false
  const provider: Provider = Object.create(inner, {
    retrieveBatch: {
      value: async (id: string): Promise<ProviderBatch> => {
        const answer = await inner.retrieveBatch(id)
        if (holding) await new Promise<void>((resolve) => held.push(resolve))
        return answer
      },
    },
  })
  return {
    provider,
    hold: () => {
      holding = true
    },
    release: () => {
      holding = false
      for (const resolve of held.splice(0)) resolve()
    },
    waiting: () => held.length,
  }
}

async function submit(kit: BatchKit): Promise<BatchRecord> {
  const file = await kit.files.create(alice, { file: Readable.from([line]), purpose: 'batch' })
  return kit.batches.create(alice, { inputFileId: file.id, endpoint: '/v1/chat/completions', completionWindow: '24h' })
}

const upstreamReads = (batch: BatchRecord) =>
  fake.requests.filter((r) => r.method === 'GET' && r.path === `/v1/batches/${batch.providerBatchId}`).length

describe('a read’s background refresh', () => {
  it('never moves a batch back: a refresh overtaken by a cancel leaves it cancelling', async () => {
    const upstream = withHeldReads(openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }))
    const kit = createBatchKit({
      providers: { openai: upstream.provider },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    })
    try {
      const batch = await submit(kit)
      upstream.hold()
      // The read starts a refresh that has the provider's answer (validating) but is held before storing it.
      expect((await kit.batches.retrieve(alice, batch.id)).status).toBe('validating')
      await expect.poll(() => upstream.waiting()).toBe(1)
      const cancelled = await kit.batches.cancel(alice, batch.id)
      expect(cancelled.status).toBe('cancelling')
      upstream.release()
      await kit.batches.idle()
      expect((await kit.batches.retrieve(alice, batch.id)).status).toBe('cancelling')
    } finally {
      upstream.release()
      await kit.close()
    }
  })

  it('is tried once per window when the provider fails, not once per read', async () => {
    const errors: string[] = []
    const kit = createBatchKit({
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      freshnessMs: WINDOW_MS,
      onError: (_error, context) => void errors.push(context),
    })
    // The clock moves only when the test moves it, so "within one window" holds however slow the machine is.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() })
    try {
      const batch = await submit(kit)
      vi.setSystemTime(Date.now() + WINDOW_MS) // now one window old
      fake.failNext({ status: 500, pathPrefix: `/v1/batches/${batch.providerBatchId}`, method: 'GET', times: 10 })
      const readTwenty = async () => {
        for (let i = 0; i < 20; i++) {
          expect((await kit.batches.retrieve(alice, batch.id)).status).toBe('validating')
          await kit.batches.idle()
        }
      }
      // Twenty reads within one window: one provider call, one reported failure.
      await readTwenty()
      expect(upstreamReads(batch)).toBe(1)
      expect(errors).toEqual([`refreshing ${batch.id}`])
      // A window later, one more try, however many reads.
      vi.setSystemTime(Date.now() + WINDOW_MS)
      await readTwenty()
      expect(upstreamReads(batch)).toBe(2)
      expect(errors).toEqual([`refreshing ${batch.id}`, `refreshing ${batch.id}`])
    } finally {
      vi.useRealTimers()
      await kit.close()
    }
  })
})
