import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import Keyv from 'keyv'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit, untilEnded } from './support/serve-kit.js'

/** A batch in parts whose provider failed one part: the client reads batchkit's ids in the reasons, never a part's. */
describe('the errors of a batch in parts', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  let served: ServedKit
  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      store: new Keyv(),
      providers: {
        openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL, limits: { maxBatchRequests: 3 } }),
      },
      limits: { maxBatchRequests: 100 },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
  })
  afterAll(async () => {
    await served?.close()
    await kit?.close()
    await fake?.close()
  })

  it('names the client’s file where the provider named the part it lost', async () => {
    const client = served.client
    const lines = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({
        custom_id: `r-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `q${i}` }] },
      }),
    )
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'in.jsonl'),
      purpose: 'batch',
    })
    const parts = [...fake.files.values()].filter((f) => f.purpose === 'batch').map((f) => f.id)
    expect(parts).toHaveLength(2)
    // The provider loses the second part: OpenAI creates its batch and fails it while validating.
    const lost = parts[1] as string
    const deleted = await fetch(`${fake.baseURL}/files/${lost}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${fake.apiKey}` },
    })
    expect(deleted.status).toBe(200)

    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const done = await untilEnded(client, kit, created.id, { polls: 100 })
    expect(done.status).toBe('completed')
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    const [error] = done.errors?.data ?? []
    expect(error?.message).toBe(`Cannot find file ${input.id}, or organization [account] does not have access to it.`)
    expect(JSON.stringify(done)).not.toMatch(new RegExp(parts.join('|')))
  })
})
