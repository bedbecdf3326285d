import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import KeyvValkey from '@keyv/valkey'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { REDIS_URL, testBackends, useBackend } from './support/backends.js'

/**
 * `@keyv/valkey` (on iovalkey, an ioredis fork) is Redis to batchkit: its lists and leases are Redis
 * sorted sets and keys, shared by every instance, never this process's memory.
 */

const [redis] = await testBackends(['redis'])
const owner = { owner: 'valkey-team' }
const line = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } })}\n`

describe('a store on @keyv/valkey, two instances', () => {
  if (!redis || !useBackend(redis)) return
  let fake: FakeOpenAI
  const adapters: KeyvValkey[] = []
  const kits: BatchKit[] = []
  const warnings: Array<Error & { code?: string }> = []
  const onWarning = (warning: Error) => void warnings.push(warning)

  beforeAll(async () => {
    process.on('warning', onWarning)
    fake = await startFakeOpenAI()
    for (let i = 0; i < 2; i++) {
      const adapter = new KeyvValkey(REDIS_URL)
      adapters.push(adapter)
      kits.push(
        createBatchKit({
          store: new Keyv(adapter, { namespace: redis.namespace }),
          providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
          tracking: { enabled: false },
          onError: () => undefined,
        }),
      )
    }
  })
  afterAll(async () => {
    process.off('warning', onWarning)
    await Promise.all(kits.map((kit) => kit.close()))
    await Promise.all(adapters.map((adapter) => adapter.disconnect()))
    await fake?.close()
  })

  it('is recognised as Redis: safe for several instances, with no warning', async () => {
    await new Promise((resolve) => setImmediate(resolve))
    expect(kits.map((kit) => kit.multiInstanceSafe)).toEqual([true, true])
    expect(warnings.filter((w) => w.code === 'BATCHKIT_SINGLE_INSTANCE_STORE')).toEqual([])
  })

  it('lists on one instance what the other created, in Redis sorted sets', async () => {
    const [first, second] = kits as [BatchKit, BatchKit]
    const files = []
    for (let i = 0; i < 3; i++) {
      files.push(await first.files.create(owner, { file: Readable.from([line]), purpose: 'batch' }))
    }
    const batch = await second.batches.create(owner, {
      inputFileId: files[0]?.id as string,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
    expect((await second.files.list(owner)).data.map((f) => f.id)).toEqual(files.map((f) => f.id).reverse())
    expect((await first.batches.list(owner)).data.map((b) => b.id)).toEqual([batch.id])
    const keys = (await adapters[0]?.redis.keys(`${redis.namespace}:batchkit:index:*`)) ?? []
    expect(keys.length).toBeGreaterThan(0)
    for (const key of keys) expect(await adapters[0]?.redis.type(key)).toBe('zset')
  })
})
