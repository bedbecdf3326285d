import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type FakeAzure, startFakeAzure } from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveNodeRequest } from '../src/http/node.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { type AzureProviderOptions, azure } from '../src/providers/azure/index.js'

/**
 * OpenAI's own client, through batchkit, to the fake Azure OpenAI: the Azure provider as the only
 * one, on both of Azure's APIs and both credentials. Clients see OpenAI's objects throughout.
 */

const line = (customId: string) =>
  `${JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${customId}` }] },
  })}\n`

let fake: FakeAzure
beforeAll(async () => {
  fake = await startFakeAzure()
})
afterAll(() => fake?.close())

describe.each([
  { api: 'dated', auth: 'apiKey' },
  { api: 'v1', auth: 'token' },
] as const)('OpenAI client → batchkit → Azure ($api API, $auth)', ({ api, auth }) => {
  let kit: BatchKit
  let server: Server
  let client: OpenAI

  beforeAll(async () => {
    kit = createBatchKit({
      providers: {
        azure: azure({
          endpoint: fake.endpoint,
          api,
          ...(auth === 'apiKey' ? { apiKey: fake.apiKey } : { azureADTokenProvider: async () => fake.token }),
          fileProcessing: { initialDelayMs: 5 },
        }),
      },
      onError: () => {},
      // Every read of an unfinished batch refreshes it in the background; `idle()` waits for that.
      freshnessMs: 0,
    })
    server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    client = new OpenAI({
      baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    })
  })
  afterAll(async () => {
    server?.closeAllConnections()
    server?.close()
    await kit?.close()
  })

  it('uploads, runs a batch to completion, and serves its output, with no error file', async () => {
    const content = line('a') + line('b')
    const file = await client.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' })
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', status: 'processed', bytes: content.length })
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(batch.status).toBe('validating')
    let done = batch
    for (let i = 0; i < 10 && done.status !== 'completed'; i++) {
      done = await client.batches.retrieve(batch.id)
      await kit.batches.idle()
    }
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } })
    expect(done.error_file_id).toBeNull()
    const output = await (await client.files.content(done.output_file_id as string)).text()
    expect(
      output
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id),
    ).toEqual(['a', 'b'])
    await client.files.delete(file.id)
  })

  it('cancels a batch', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(line('x')), 'in.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect((await client.batches.cancel(batch.id)).status).toMatch(/^cancell/)
    await client.batches.retrieve(batch.id)
    await kit.batches.idle()
    expect((await client.batches.retrieve(batch.id)).status).toBe('cancelled')
  })

  it('answers an Azure outage in OpenAI’s envelope without Azure’s words', async () => {
    // Only the upload: a kit may be polling batches in the background.
    fake.failNext({ status: 429, method: 'POST', pathPrefix: api === 'dated' ? '/openai/files' : '/openai/v1/files' })
    const error = await client.files
      .create({ file: await toFile(Buffer.from(line('y')), 'in.jsonl'), purpose: 'batch' })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      )
    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect(error).toMatchObject({ status: 503, code: 'upstream_rate_limited', type: 'server_error' })
    expect(error?.message).not.toMatch(/pricing tier/)
  })
})

describe('a busy Azure resource keeps taking uploads: everything batchkit creates there expires', () => {
  let busy: FakeAzure
  const kits: BatchKit[] = []
  const servers: Server[] = []

  beforeAll(async () => {
    // Azure keeps 500 files without an expiry per resource; two make the point.
    busy = await startFakeAzure({ maxFilesWithoutExpiry: 2 })
  })
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections()
      server.close()
    }
    await Promise.all(kits.map((k) => k.close()))
    await busy?.close()
  })

  async function clientFor(options: Partial<AzureProviderOptions> = {}): Promise<{ client: OpenAI; kit: BatchKit }> {
    const k = createBatchKit({
      providers: {
        azure: azure({
          endpoint: busy.endpoint,
          apiKey: busy.apiKey,
          fileProcessing: { initialDelayMs: 5 },
          ...options,
        }),
      },
      onError: () => {},
      freshnessMs: 0,
    })
    kits.push(k)
    const s = createServer((req, res) => void serveNodeRequest(k.http, req, res, { basePath: '/v1' }))
    servers.push(s)
    s.listen(0, '127.0.0.1')
    await once(s, 'listening')
    const c = new OpenAI({
      baseURL: `http://127.0.0.1:${(s.address() as AddressInfo).port}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    })
    return { client: c, kit: k }
  }

  async function runBatch(c: OpenAI, k: BatchKit, customId: string) {
    const file = await c.files.create({ file: await toFile(Buffer.from(line(customId)), 'in.jsonl'), purpose: 'batch' })
    const batch = await c.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    let done = batch
    for (let i = 0; i < 10 && done.status !== 'completed'; i++) {
      done = await c.batches.retrieve(batch.id)
      await k.batches.idle()
    }
    return { file, batch: done }
  }

  it('runs batch after batch on the default API, every file with an expiry', async () => {
    const { client: c, kit: k } = await clientFor()
    for (const id of ['one', 'two', 'three']) {
      const { file, batch } = await runBatch(c, k, id)
      expect(file.expires_at).toBe(file.created_at + 30 * 24 * 60 * 60)
      expect(batch.status).toBe('completed')
    }
    expect([...busy.files.values()].filter((f) => f.expires_at === null)).toEqual([])
  })

  it('on the GA api-version, where Azure drops expiries, the resource fills up: the client sees 429 upstream_quota_exceeded', async () => {
    const { client: c, kit: k } = await clientFor({ apiVersion: '2024-10-21' })
    await runBatch(c, k, 'first')
    const error = await c.files
      .create({ file: await toFile(Buffer.from(line('second')), 'in.jsonl'), purpose: 'batch' })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      )
    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect(error).toMatchObject({ status: 429, code: 'upstream_quota_exceeded', type: 'insufficient_quota' })
    expect(error?.message).not.toContain('Quota exceeded.')
  })
})
