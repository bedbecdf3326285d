import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchEvent } from '../src/events/types.js'
import { type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'

/**
 * How events reach the user's callbacks when a callback fails: retried with doubling delays, each retry
 * logged, delivered once in the end, and reported to `onError` only when given up. Tracking is off, so
 * the one event of each test is the batch create's `acreate_batch`.
 */

const alice = { owner: 'alice' }
const LINE = `${JSON.stringify({
  custom_id: 'r-1',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
})}\n`

let fake: FakeOpenAI
beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

interface Logged {
  fields: Record<string, unknown>
  message?: string
}

/** A kit with one batch created; what its logger's `warn` and its `onError` received. */
async function createBatchWith(options: Partial<BatchKitOptions>) {
  const warnings: Logged[] = []
  const reported: Array<{ error: unknown; context: string }> = []
  const kit = createBatchKit({
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    tracking: { enabled: false },
    logger: {
      debug() {},
      info() {},
      warn: (fields, message) => void warnings.push({ fields, message }),
      error() {},
    },
    onError: (error, context) => void reported.push({ error, context }),
    ...options,
  })
  const file = await kit.files.create(alice, { file: Readable.from([LINE]), purpose: 'batch' })
  const batch = await kit.batches.create(alice, {
    inputFileId: file.id,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
  })
  return { kit, batch, warnings, reported }
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('a callback that fails', () => {
  it('is retried after doubling delays, each retry logged, until it takes the event once; nothing is reported', async () => {
    const delivered: BatchEvent[] = []
    const calls: number[] = []
    const { kit, batch, warnings, reported } = await createBatchWith({
      callbacks: [
        (event) => {
          calls.push(Date.now())
          if (calls.length <= 2) throw new Error('receiver down')
          delivered.push(event)
        },
      ],
      delivery: { pollIntervalMs: 10, retryDelayMs: 200, maxAttempts: 5 },
    })
    try {
      await until('the delivery', () => delivered.length === 1)
      // Long enough for a wrongly scheduled further attempt to have come.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(delivered.map((event) => [event.type, event.batchId])).toEqual([['acreate_batch', batch.id]])
      expect(calls).toHaveLength(3)
      const eventId = delivered[0]?.id
      expect(warnings).toEqual([
        {
          fields: { eventId, attempts: 1, retryInMs: 200 },
          message: 'batchkit event callback failed; will retry',
        },
        {
          fields: { eventId, attempts: 2, retryInMs: 400 },
          message: 'batchkit event callback failed; will retry',
        },
      ])
      // Each retry waits its delay, give or take the 20% jitter: never at once.
      const [first, second, third] = calls as [number, number, number]
      expect(second - first).toBeGreaterThanOrEqual(200 * 0.8 - 5)
      expect(third - second).toBeGreaterThanOrEqual(400 * 0.8 - 5)
      expect(reported).toEqual([])
    } finally {
      await kit.close()
    }
  })

  it('that never settles is given up after its attempts, and reported with the timeout that ended it', async () => {
    const { kit, batch, warnings, reported } = await createBatchWith({
      callbacks: [() => new Promise(() => undefined)],
      delivery: { pollIntervalMs: 10, callbackTimeoutMs: 50, maxAttempts: 1 },
    })
    try {
      await until('the report', () => reported.length > 0)
      expect(reported).toHaveLength(1)
      const [{ error, context }] = reported as [{ error: unknown; context: string }]
      expect((error as Error).message).toBe('callback did not settle within 50 ms')
      expect(context).toMatch(/^delivering event \S+ \(acreate_batch\); given up after 1 attempts$/)
      expect(batch.status).toBe('validating')
      expect(warnings).toEqual([])
    } finally {
      await kit.close()
    }
  })
})
