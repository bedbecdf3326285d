import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import type { Keyv } from 'keyv'
import { Keyv as Keyv6 } from 'keyv6'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit } from './support/serve-kit.js'

/**
 * Keyv 6 (the current major) as the store, on its in-memory adapter: the only Keyv 6 store Node 20
 * runs here (`@keyv/redis` 5 and `@keyv/postgres` 2 still peer Keyv 5). The whole path a user takes.
 */

const chat = (id: string) =>
  `${JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${id}` }] } })}\n`

describe('batchkit on a Keyv 6 in-memory store', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  let served: ServedKit
  let client: OpenAI
  const warnings: Array<Error & { code?: string }> = []
  const onWarning = (warning: Error) => void warnings.push(warning)

  beforeAll(async () => {
    process.on('warning', onWarning)
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      // Keyv 6's types are its own; batchkit uses only the API both majors share.
      store: new Keyv6() as unknown as Keyv,
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
    client = served.client
  })
  afterAll(async () => {
    process.off('warning', onWarning)
    await served?.close()
    await kit?.close()
    await fake?.close()
  })

  it('is recognised as this process’s memory: one instance, with no warning', async () => {
    await new Promise((resolve) => setImmediate(resolve))
    expect(kit.multiInstanceSafe).toBe(false)
    expect(warnings.filter((w) => w.code === 'BATCHKIT_SINGLE_INSTANCE_STORE')).toEqual([])
  })

  it('uploads, lists, runs a batch to completion with its usage, and serves its output', async () => {
    const text = chat('a') + chat('b')
    const file = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
    expect(await (await client.files.content(file.id)).text()).toBe(text)
    expect((await client.files.list()).data.map((f) => f.id)).toEqual([file.id])

    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    let current = batch
    for (let i = 0; i < 200 && current.status !== 'completed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      current = await client.batches.retrieve(batch.id)
    }
    expect(current.status).toBe('completed')
    expect(current.request_counts).toEqual({ total: 2, completed: 2, failed: 0 })
    expect(current.usage?.total_tokens).toBe((current.usage?.input_tokens ?? 0) + (current.usage?.output_tokens ?? 0))
    expect(current.usage?.input_tokens).toBeGreaterThan(0)
    expect((await client.batches.list()).data.map((b) => [b.id, b.status])).toEqual([[batch.id, 'completed']])

    const lines = (await (await client.files.content(current.output_file_id as string)).text()).trim().split('\n')
    expect(lines.map((line) => JSON.parse(line).custom_id).sort()).toEqual(['a', 'b'])
  })
})
