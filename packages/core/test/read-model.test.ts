import { setTimeout as sleep } from 'node:timers/promises'
import { type DelayProxy, type FakeOpenAI, startDelayProxy, startFakeOpenAI } from '@batchkit/testkit'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import type { Batch } from 'openai/resources/batches'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { testBackends, useBackend } from './support/backends.js'
import { type ServedKit, serveKit } from './support/serve-kit.js'

/**
 * Reads answer from the store: a provider 200 ms away is never waited on by a retrieve or a list,
 * and however many clients poll, through however many instances, an unfinished batch costs at most
 * one provider call per freshness window.
 */

const backends = await testBackends(['memory', 'redis', 'postgres'])

const LATENCY_MS = 200
const WINDOW_MS = 1500
const BATCHES = 100
const READERS = 50

const chat = (id: string) =>
  `${JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${id}` }] } })}\n`

interface Instance {
  kit: BatchKit
  served: ServedKit
  client: OpenAI
}

/** Runs `task` over `items`, `limit` at a time. */
async function inParallel<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await task(items[i] as T)
      }
    }),
  )
  return results
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

async function timed<T>(read: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now()
  const value = await read()
  return { value, ms: performance.now() - start }
}

describe.each(backends)('reads from the store, 200 ms from the provider ($label)', (backend) => {
  if (!useBackend(backend)) return
  // Memory stores are one per process; Redis and PostgreSQL are shared by two instances, as two servers would share them.
  const instanceCount = backend.multiInstanceSafe ? 2 : 1
  let fake: FakeOpenAI
  let proxy: DelayProxy
  const instances: Instance[] = []
  let batches: Batch[] = []

  /** Upstream reads of single batches so far, by provider batch path. */
  const upstreamReads = () => {
    const counts = new Map<string, number>()
    for (const r of fake.requests) {
      if (r.method === 'GET' && /^\/v1\/batches\/[^/]+$/.test(r.path)) counts.set(r.path, (counts.get(r.path) ?? 0) + 1)
    }
    return counts
  }
  const total = (counts: Map<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0)

  beforeAll(async () => {
    // Batches held still for an hour: only what a test does upstream changes them.
    fake = await startFakeOpenAI({ progress: 3_600_000 })
    const { hostname, port } = new URL(fake.baseURL)
    proxy = await startDelayProxy({ target: { host: hostname, port: Number(port) }, responseDelayMs: LATENCY_MS })
    for (let i = 0; i < instanceCount; i++) {
      const kit = createBatchKit({
        store: backend.connect(),
        providers: { openai: openai({ apiKey: fake.apiKey, baseURL: proxy.url(fake.baseURL) }) },
        freshnessMs: WINDOW_MS,
        // Only readers refresh here, so every provider call counted is one a read caused.
        tracking: { enabled: false },
        onError: () => undefined,
      })
      const served = await serveKit(kit)
      instances.push({ kit, served, client: served.client })
    }
    const client = (instances[0] as Instance).client
    const file = await client.files.create({
      file: await toFile(Buffer.from(chat('a') + chat('b')), 'in.jsonl'),
      purpose: 'batch',
    })
    batches = await inParallel(
      Array.from({ length: BATCHES }, (_, i) => i),
      25,
      (i) =>
        (instances[i % instanceCount] as Instance).client.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        }),
    )
  }, 60_000)

  afterAll(async () => {
    for (const { kit, served } of instances) {
      await served.close()
      await kit.close()
    }
    await proxy?.close()
    await fake?.close()
  })

  it('answers a page of 100 unfinished batches, and one batch, without waiting on the provider', async () => {
    await sleep(WINDOW_MS) // every batch is now older than the window: each read finds them stale
    const client = (instances[0] as Instance).client
    const lists = []
    const retrieves = []
    for (let i = 0; i < 10; i++) {
      lists.push(await timed(() => client.batches.list({ limit: 100 })))
      retrieves.push(await timed(() => client.batches.retrieve((batches[i] as Batch).id)))
    }
    const page = (lists[0] as { value: { data: Batch[] } }).value.data
    expect(page.map((b) => b.id).sort()).toEqual(batches.map((b) => b.id).sort())
    expect(page.every((b) => b.status === 'validating')).toBe(true)
    console.info(
      `[read model, ${backend.label}] 100 unfinished, provider ${LATENCY_MS} ms away: list p50 ${median(lists.map((l) => l.ms)).toFixed(1)} ms, retrieve p50 ${median(retrieves.map((r) => r.ms)).toFixed(1)} ms`,
    )
    // One provider call takes 200 ms: a read that answers sooner cannot have waited on one.
    expect(median(lists.map((l) => l.ms))).toBeLessThan(LATENCY_MS)
    expect(median(retrieves.map((r) => r.ms))).toBeLessThan(LATENCY_MS)
  })

  it(`lets ${READERS} readers poll one page through every instance with one provider call per batch per window`, async () => {
    await sleep(WINDOW_MS)
    const before = upstreamReads()
    const durationMs = 2 * WINDOW_MS
    const start = Date.now()
    let reads = 0
    await Promise.all(
      Array.from({ length: READERS }, async (_, r) => {
        const client = (instances[r % instanceCount] as Instance).client
        while (Date.now() - start < durationMs) {
          const page = await client.batches.list({ limit: 100 })
          expect(page.data).toHaveLength(BATCHES)
          reads++
          await sleep(50)
        }
      }),
    )
    await Promise.all(instances.map(({ kit }) => kit.batches.idle()))
    const after = upstreamReads()
    const perBatch = [...after].map(([path, count]) => count - (before.get(path) ?? 0))
    expect(perBatch).toHaveLength(BATCHES)
    const windows = Math.floor((Date.now() - start) / WINDOW_MS) + 1
    console.info(
      `[read model, ${backend.label}] ${READERS} readers on ${instanceCount} instance(s), ${reads} lists of ${BATCHES} in ${windows} window(s): ${total(after) - total(before)} provider calls, at most ${Math.max(...perBatch)} per batch`,
    )
    // Every batch was refreshed, and none more than once per window, whatever the number of reads.
    expect(Math.min(...perBatch)).toBeGreaterThanOrEqual(1)
    expect(Math.max(...perBatch)).toBeLessThanOrEqual(windows)
    expect(reads).toBeGreaterThanOrEqual(READERS * 2)
    expect(total(after) - total(before)).toBeLessThanOrEqual(BATCHES * windows)
    expect(total(after) - total(before)).toBeLessThan(reads * BATCHES)
  })

  it('shows an upstream end, with its usage, within about one window of the change, to a client that only polls', async () => {
    const batch = batches[0] as Batch
    const record = await (instances[0] as Instance).kit.batches.retrieve({ owner: 'default' }, batch.id)
    await fake.expire(record.providerBatchId)
    const changedAt = Date.now()
    const seen: Batch[] = []
    for (let i = 0; ; i++) {
      const current = await (instances[i % instanceCount] as Instance).client.batches.retrieve(batch.id)
      seen.push(current)
      if (current.status === 'expired' || Date.now() - changedAt > 5 * WINDOW_MS) break
      await sleep(100)
    }
    const ended = seen.at(-1) as Batch
    expect(ended.status).toBe('expired')
    // One window, one poll, the provider's answer, and the billing of a two-line file.
    expect(Date.now() - changedAt).toBeLessThan(WINDOW_MS + 100 + LATENCY_MS + 1000)
    // Expired before it ran: its bill is settled, and it is zero.
    expect(ended.usage).toMatchObject({ input_tokens: 0, output_tokens: 0, total_tokens: 0 })
    expect(seen.filter((b) => b.status === 'expired' && !b.usage)).toEqual([])
  })

  it('shows a cancel as cancelling at once, to every reader', async () => {
    const batch = batches[1] as Batch
    const cancelled = await (instances[0] as Instance).client.batches.cancel(batch.id)
    expect(cancelled.status).toBe('cancelling')
    expect(cancelled.cancelling_at).toBeGreaterThan(0)
    for (const { client } of instances) {
      expect((await client.batches.retrieve(batch.id)).status).toBe('cancelling')
      const page = await client.batches.list({ limit: 100 })
      expect(page.data.find((b) => b.id === batch.id)?.status).toBe('cancelling')
    }
  })
})
