import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  type FakeOpenAI,
  type RedisCommandClient,
  removePostgresTestData,
  removeRedisTestData,
  startFakeOpenAI,
} from '@batchkit/testkit'
import KeyvPostgres from '@keyv/postgres'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchEvent } from '../src/events/types.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { POSTGRES_URL, REDIS_URL, testBackends, useBackend } from './support/backends.js'

/**
 * Keyv leaves a key that already starts with its namespace unprefixed in `get` and `set` but
 * prefixes it in `getMany`; batchkit's keys start with `batchkit:`, so with the namespace the
 * examples use (and some others) every list and billing lookup once came back empty. Whatever the
 * namespace, what was created is listed and billed.
 */

const backends = (await testBackends(['redis', 'postgres'])).filter((b) => b.name !== 'memory')
const NAMESPACES = ['batchkit', 'batchkit:file', 'batchkit:batch:x']
const POSTGRES_TABLE = 'batchkit_test_keyv'
const run = randomBytes(4).toString('hex')

let fake: FakeOpenAI
beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

const REQUESTS = `${['a', 'b']
  .map((id) =>
    JSON.stringify({
      custom_id: id,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${id}` }] },
    }),
  )
  .join('\n')}\n`

describe.each(backends)('namespaces on $label', (backend) => {
  if (!useBackend(backend)) return

  describe.each(NAMESPACES)('namespace %j', (namespace) => {
    const owner = { owner: `ns-test-${run}` }
    const marks: string[] = [owner.owner]
    let keyv: Keyv
    let kit: BatchKit
    const events: BatchEvent[] = []

    beforeAll(() => {
      keyv =
        backend.name === 'redis'
          ? new Keyv(new KeyvRedis(REDIS_URL), { namespace })
          : new Keyv(new KeyvPostgres({ uri: POSTGRES_URL, table: POSTGRES_TABLE }), { namespace })
      kit = createBatchKit({
        store: keyv,
        providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
        onError: () => undefined,
        callbacks: [(event) => void events.push(event)],
        tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
        // The tracker polls no more often than the freshness window.
        freshnessMs: 10,
        delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
      })
    })

    afterAll(async () => {
      // Output files and events are named by ids the test never sees otherwise.
      const files = await kit?.files.list(owner).catch(() => undefined)
      marks.push(...(files?.data.map((f) => f.id) ?? []), ...events.map((e) => e.id))
      await kit?.close()
      if (backend.name === 'redis') {
        const client = (await (keyv.store as KeyvRedis<unknown>).getClient()) as unknown as RedisCommandClient
        await removeRedisTestData(client, namespace, marks)
        await keyv.disconnect()
      } else {
        // The pool is the process's, shared with the other namespaces and closed by the backend's clean-up.
        const query = (sql: string, values?: unknown[]) => (keyv.store as KeyvPostgres).query(sql, values)
        await removePostgresTestData(query, { keyvTable: POSTGRES_TABLE, namespace, marks })
      }
    })

    it('lists the files and batches it created, and shows the usage of a finished batch', async () => {
      const file = await kit.files.create(owner, { file: Readable.from([REQUESTS]), purpose: 'batch' })
      const batch = await kit.batches.create(owner, {
        inputFileId: file.id,
        endpoint: '/v1/chat/completions',
        completionWindow: '24h',
      })
      marks.push(file.id, batch.id)

      expect((await kit.files.list(owner)).data.map((f) => f.id)).toEqual([file.id])
      expect((await kit.files.list(owner, { purpose: 'batch' })).data.map((f) => f.id)).toEqual([file.id])
      expect((await kit.batches.list(owner)).data.map((b) => b.id)).toEqual([batch.id])

      const deadline = Date.now() + 10_000
      while (!events.some((e) => e.type === 'batch_success' && e.batchId === batch.id)) {
        if (Date.now() > deadline) throw new Error('the batch did not finish within 10 s')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const finished = await kit.batches.retrieve(owner, batch.id)
      expect(finished.status).toBe('completed')
      expect(finished.usage?.totalTokens).toBeGreaterThan(0)
      const [listed] = (await kit.batches.list(owner)).data
      expect(listed?.id).toBe(batch.id)
      expect(listed?.usage).toEqual(finished.usage)
    })
  })

  describe('two apps sharing the server under different namespaces', () => {
    const owner = { owner: `ns-apart-${run}` }
    const namespaces = [`app_a_${run}`, `app_b_${run}`]
    const marks: string[] = [owner.owner]
    const apps: Array<{ namespace: string; keyv: Keyv; kit: BatchKit }> = []

    beforeAll(() => {
      for (const namespace of namespaces) {
        const keyv =
          backend.name === 'redis'
            ? new Keyv(new KeyvRedis(REDIS_URL), { namespace })
            : new Keyv(new KeyvPostgres({ uri: POSTGRES_URL, table: POSTGRES_TABLE }), { namespace })
        const kit = createBatchKit({
          store: keyv,
          providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
          onError: () => undefined,
          tracking: { enabled: false },
        })
        apps.push({ namespace, keyv, kit })
      }
    })

    afterAll(async () => {
      for (const { namespace, keyv, kit } of apps) {
        await kit.close()
        if (backend.name === 'redis') {
          const client = (await (keyv.store as KeyvRedis<unknown>).getClient()) as unknown as RedisCommandClient
          await removeRedisTestData(client, namespace, marks)
          await keyv.disconnect()
        } else {
          const query = (sql: string, values?: unknown[]) => (keyv.store as KeyvPostgres).query(sql, values)
          await removePostgresTestData(query, { keyvTable: POSTGRES_TABLE, namespace, marks })
        }
      }
    })

    it("never lists one app's files or batches in the other, for the same owner", async () => {
      const [a, b] = apps as [(typeof apps)[0], (typeof apps)[0]]
      const file = await a.kit.files.create(owner, { file: Readable.from([REQUESTS]), purpose: 'batch' })
      const batch = await a.kit.batches.create(owner, {
        inputFileId: file.id,
        endpoint: '/v1/chat/completions',
        completionWindow: '24h',
      })
      marks.push(file.id, batch.id)
      expect((await a.kit.files.list(owner)).data.map((f) => f.id)).toEqual([file.id])
      expect((await a.kit.batches.list(owner)).data.map((x) => x.id)).toEqual([batch.id])
      expect((await b.kit.files.list(owner)).data).toEqual([])
      expect((await b.kit.batches.list(owner)).data).toEqual([])

      // The other app's newer files take no place in this one's pages either.
      const own = await b.kit.files.create(owner, { file: Readable.from([REQUESTS]), purpose: 'batch' })
      marks.push(own.id)
      for (let i = 0; i < 3; i++) {
        marks.push((await a.kit.files.create(owner, { file: Readable.from([REQUESTS]), purpose: 'batch' })).id)
      }
      const page = await b.kit.files.list(owner, { limit: 1 })
      expect(page.data.map((f) => f.id)).toEqual([own.id])
      expect(page.hasMore).toBe(false)
    })
  })
})
