import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createSchemaValidator,
  type FakeAzure,
  type FakeGcp,
  type FakeOpenAI,
  fakeGeminiText,
  fakeGeminiUsage,
  startFakeAzure,
  startFakeGcp,
  startFakeOpenAI,
} from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveNodeRequest } from '../src/http/node.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { azure } from '../src/providers/azure/index.js'
import { openai } from '../src/providers/openai/index.js'
import { vertex } from '../src/providers/vertex/index.js'
import { toGeminiRequest } from '../src/providers/vertex/request-transform.js'

/** One model list decides where each batch runs; clients only ever see OpenAI's API. */

let openaiFake: FakeOpenAI
let azureFake: FakeAzure
let gcpFake: FakeGcp
let kit: BatchKit
let server: Server
let client: OpenAI
let baseURL: string
const schemas = createSchemaValidator()

beforeAll(async () => {
  openaiFake = await startFakeOpenAI()
  azureFake = await startFakeAzure({ deployments: ['mini-global-batch'] })
  gcpFake = await startFakeGcp({ project: 'demo-project', location: 'us-central1', buckets: ['demo-batches'] })
  kit = createBatchKit({
    providers: {
      openai: openai({ apiKey: openaiFake.apiKey, baseURL: openaiFake.baseURL }),
      azure: azure({ endpoint: azureFake.endpoint, apiKey: azureFake.apiKey, fileProcessing: { initialDelayMs: 5 } }),
      vertex: vertex({
        project: 'demo-project',
        location: 'us-central1',
        bucket: 'demo-batches',
        accessToken: gcpFake.token,
        vertexEndpoint: gcpFake.vertexBaseURL,
        gcsEndpoint: gcpFake.gcsBaseURL,
      }),
    },
    models: [
      { model: 'gpt-4o-mini', provider: 'azure', providerModel: 'mini-global-batch' },
      { model: 'gpt-4*', provider: 'openai' },
      { model: 'gemini-*', provider: 'vertex' },
    ],
    tracking: { enabled: false },
    // Every read of an unfinished batch refreshes it in the background; `idle()` waits for that.
    freshnessMs: 0,
    onError: () => undefined,
  })
  server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
})
afterAll(async () => {
  server?.closeAllConnections()
  server?.close()
  await kit?.close()
  await Promise.all([openaiFake?.close(), azureFake?.close(), gcpFake?.close()])
})

const line = (id: string, model: string, spacing = '') =>
  `{"custom_id":"${id}",${spacing}"method":"POST","url":"/v1/chat/completions","body":{"model":${spacing}"${model}","messages":[{"role":"user","content":"héllo ${id} ✓"}]}}\n`

async function runToEnd(id: string) {
  let batch = await client.batches.retrieve(id)
  for (let i = 0; i < 10 && batch.status !== 'completed'; i++) {
    await kit.batches.idle()
    batch = await client.batches.retrieve(id)
  }
  return batch
}

describe('routing by model', () => {
  it('runs gpt-4o-mini on the Azure deployment, renaming the model there and back, byte for byte', async () => {
    const content = line('a', 'gpt-4o-mini') + line('b', 'gpt-4o-mini', ' ')
    const file = await client.files.create({ file: await toFile(Buffer.from(content), 'mini.jsonl'), purpose: 'batch' })
    expect(openaiFake.files.size).toBe(0)
    const [upstream] = [...azureFake.files.values()]
    const sent = await readFile((upstream as { path: string }).path, 'utf8')
    expect(sent).toBe(content.replaceAll('"gpt-4o-mini"', '"mini-global-batch"'))
    expect(await (await client.files.content(file.id)).text()).toBe(content)
    expect(file.bytes).toBe(Buffer.byteLength(content))

    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(batch.model).toBe('gpt-4o-mini')
    const done = await runToEnd(batch.id)
    schemas.assert('Batch', done)
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 })
    const lines = (await (await client.files.content(done.output_file_id as string)).text()).trim().split('\n')
    for (const output of lines) schemas.assert('BatchRequestOutput', JSON.parse(output))
    expect(lines.map((l) => JSON.parse(l).custom_id).sort()).toEqual(['a', 'b'])
  })

  it('runs gemini-2.5-flash as a Vertex batch prediction job, served back as OpenAI output lines', async () => {
    const rows = ['v1', 'v2', 'v3'].map((id) => line(id, 'gemini-2.5-flash'))
    const content = rows.join('')
    const file = await client.files.create({
      file: await toFile(Buffer.from(content), 'gemini.jsonl'),
      purpose: 'batch',
    })
    expect(await (await client.files.content(file.id)).text()).toBe(content)
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(batch.model).toBe('gemini-2.5-flash')
    const done = await runToEnd(batch.id)
    schemas.assert('Batch', done)
    expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    const lines = (await (await client.files.content(done.output_file_id as string)).text()).trim().split('\n')
    const outputs = lines.map((l) => JSON.parse(l))
    for (const output of outputs) schemas.assert('BatchRequestOutput', output)
    expect(outputs.map((o) => o.custom_id).sort()).toEqual(['v1', 'v2', 'v3'])
    for (const output of outputs) {
      const request = JSON.parse(rows[['v1', 'v2', 'v3'].indexOf(output.custom_id)] as string).body
      // The fake counts tokens of the Gemini request it received: the same conversion as the upload's.
      const usage = fakeGeminiUsage(toGeminiRequest(request), 'gemini-2.5-flash')
      expect(output.response.body.usage.prompt_tokens).toBe(usage.promptTokenCount)
      expect(output.response.body.usage.total_tokens).toBe(usage.totalTokenCount)
      // The fake answers by quoting the question: the answer is this request's own.
      expect(output.response.body.choices[0].message.content).toBe(fakeGeminiText(toGeminiRequest(request)))
    }
  })

  it('cancels a Vertex batch with a full Batch object, and deletes its file from the bucket', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(line('w1', 'gemini-2.5-flash')), 'w.jsonl'),
      purpose: 'batch',
    })
    const { providerFileId } = await kit.files.retrieve({ owner: 'default' }, file.id)
    const objectsOfFile = () => [...gcpFake.objects.keys()].filter((key) => key.includes(providerFileId))
    expect(objectsOfFile().length).toBeGreaterThan(0)
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const cancelling = await client.batches.cancel(batch.id)
    schemas.assert('Batch', cancelling)
    expect(cancelling).toMatchObject({ id: batch.id, status: expect.stringMatching(/^cancell/) })
    let current = cancelling
    for (let i = 0; i < 5 && current.status !== 'cancelled'; i++) {
      current = await client.batches.retrieve(batch.id)
      await kit.batches.idle()
    }
    expect(current.status).toBe('cancelled')
    expect(await client.files.delete(file.id)).toMatchObject({ deleted: true })
    expect(objectsOfFile()).toEqual([])
    await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 })
  })

  it('runs another gpt-4 model on OpenAI under its own name', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from(line('c', 'gpt-4.1')), 'x.jsonl'),
      purpose: 'batch',
    })
    // Upstream, the file is named by its tag: batchkit's own file id.
    expect([...openaiFake.files.values()].some((f) => f.filename === `${file.id}.jsonl`)).toBe(true)
    expect(file.filename).toBe('x.jsonl')
    expect(await (await client.files.content(file.id)).text()).toBe(line('c', 'gpt-4.1'))
  })

  it('refuses a model no provider runs, leaving nothing anywhere', async () => {
    const before = [openaiFake.files.size, azureFake.files.size]
    const listed = (await client.files.list()).data.length
    const error = await client.files
      .create({ file: await toFile(Buffer.from(line('d', 'claude-3')), 'x.jsonl'), purpose: 'batch' })
      .catch((e) => e)
    expect(error).toMatchObject({ status: 400, code: 'model_not_found', param: 'file' })
    expect(error.message).toContain("No provider is configured for the model 'claude-3'")
    expect([openaiFake.files.size, azureFake.files.size]).toEqual(before)
    expect((await client.files.list()).data.length).toBe(listed)
  })

  it.each([
    ['a form field', (form: FormData) => form.append('custom_llm_provider', 'openai'), ''],
    ['a query parameter', () => undefined, '?custom_llm_provider=openai'],
  ])("takes LiteLLM's custom_llm_provider as %s", async (_how, addField, query) => {
    const form = new FormData()
    form.append('purpose', 'batch')
    addField(form)
    form.append('file', new Blob([line('e', 'gpt-4o-mini')]), 'forced.jsonl')
    const before = openaiFake.files.size
    const response = await fetch(`${baseURL}/files${query}`, { method: 'POST', body: form })
    expect(response.status).toBe(200)
    expect(openaiFake.files.size).toBe(before + 1)
  })

  it('refuses an unknown custom_llm_provider, and one sent after the file', async () => {
    const bad = await fetch(`${baseURL}/files`, {
      method: 'POST',
      headers: { 'custom-llm-provider': 'bedrock' },
      body: (() => {
        const form = new FormData()
        form.append('purpose', 'batch')
        form.append('file', new Blob([line('f', 'gpt-4o-mini')]), 'f.jsonl')
        return form
      })(),
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: object }).error).toMatchObject({
      code: 'invalid_value',
      param: 'custom_llm_provider',
    })

    const late = new FormData()
    late.append('purpose', 'batch')
    late.append('file', new Blob([line('g', 'gpt-4o-mini')]), 'g.jsonl')
    late.append('custom_llm_provider', 'openai')
    const response = await fetch(`${baseURL}/files`, { method: 'POST', body: late })
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('custom_llm_provider')
  })

  it("honours Azure's larger request limit (100,000) for files routed there, OpenAI's (50,000) elsewhere", async () => {
    const lines = (model: string) => Array.from({ length: 50_001 }, (_, i) => line(`n${i}`, model)).join('')
    const toAzure = await client.files.create({
      file: await toFile(Buffer.from(lines('gpt-4o-mini')), 'big.jsonl'),
      purpose: 'batch',
    })
    expect(toAzure.bytes).toBe(Buffer.byteLength(lines('gpt-4o-mini')))
    const toOpenAI = await client.files
      .create({ file: await toFile(Buffer.from(lines('gpt-4.1')), 'big.jsonl'), purpose: 'batch' })
      .catch((e) => e)
    expect(toOpenAI).toMatchObject({ status: 400, code: 'too_many_tasks' })
  })

  it('lets the user set a lower request limit than the provider allows', async () => {
    const many = Array.from({ length: 3 }, (_, i) => line(`m${i}`, 'gpt-4o-mini')).join('')
    const limited = createBatchKit({
      providers: {
        openai: openai({ apiKey: openaiFake.apiKey, baseURL: openaiFake.baseURL }),
        azure: azure({ endpoint: azureFake.endpoint, apiKey: azureFake.apiKey, fileProcessing: { initialDelayMs: 5 } }),
      },
      models: [
        { model: 'gpt-4o-mini', provider: 'azure', providerModel: 'mini-global-batch' },
        { model: '*', provider: 'openai' },
      ],
      limits: { maxBatchRequests: 2 },
      tracking: { enabled: false },
      onError: () => undefined,
    })
    try {
      const { Readable } = await import('node:stream')
      // The user's own limit wins over the provider's.
      await expect(
        limited.files.create({ owner: 'o' }, { file: Readable.from([many]), purpose: 'batch' }),
      ).rejects.toMatchObject({ code: 'too_many_tasks' })
    } finally {
      await limited.close()
    }
  })
})
