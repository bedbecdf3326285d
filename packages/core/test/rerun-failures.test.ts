import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import Keyv from 'keyv'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { type ServedKit, serveKit, untilEnded } from './support/serve-kit.js'

/**
 * Re-running what failed with the stock client: `POST /v1/batches` with the `error_file_id` of a finished
 * batch as `input_file_id`. The testkit fake fails every request whose `custom_id` starts with `fail-`.
 */

/** Lines written as a client might: keys in any order, spacing, non-ASCII text, a CRLF-free JSONL. */
function line(i: number): string {
  const id = i % 4 === 1 ? `fail-${i}` : `ok-${i}`
  const body = {
    messages: [{ content: `question ${i}: données 日本 ${'x'.repeat(i)}`, role: 'user' }],
    model: 'gpt-4o-mini',
  }
  return i % 2 === 0
    ? JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body })
    : `{"url": "/v1/chat/completions",  "custom_id": "${id}", "body": ${JSON.stringify(body, null, 1).replaceAll('\n', '')}, "method": "POST"}`
}

describe('re-running the failed requests of a batch from its error file', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  let served: ServedKit
  let client: OpenAI
  const lines = Array.from({ length: 40 }, (_, i) => line(i))

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      store: new Keyv(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
      freshnessMs: 0,
      onError: () => undefined,
    })
    served = await serveKit(kit)
    client = served.client
  })
  afterAll(async () => {
    await served?.close()
    await kit?.close()
    await fake?.close()
  })

  const finished = (id: string) => untilEnded(client, kit, id)

  async function run(inputFileId: string): Promise<OpenAI.Batches.Batch> {
    const batch = await client.batches.create({
      input_file_id: inputFileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    return finished(batch.id)
  }

  it('runs exactly the failed requests, byte for byte as first written, from a new file of the owner', async () => {
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'questions.jsonl'),
      purpose: 'batch',
    })
    const first = await run(input.id)
    expect(first.request_counts).toEqual({ total: 40, completed: 30, failed: 10 })
    const errorFileId = first.error_file_id as string

    const rerun = await client.batches.create({
      input_file_id: errorFileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(rerun.input_file_id).not.toBe(errorFileId)
    const failedLines = lines.filter((_, i) => i % 4 === 1)
    // The new input is a real file of the owner: listed, and its content is exactly the failed lines.
    const newInput = await client.files.retrieve(rerun.input_file_id)
    expect(newInput).toMatchObject({ purpose: 'batch', filename: `${first.id}_failed_requests.jsonl` })
    expect((await client.files.list()).data.map((f) => f.id)).toContain(newInput.id)
    expect(await (await client.files.content(newInput.id)).text()).toBe(`${failedLines.join('\n')}\n`)
    expect(newInput.bytes).toBe(Buffer.byteLength(`${failedLines.join('\n')}\n`))

    const done = await finished(rerun.id)
    expect(done.request_counts).toEqual({ total: 10, completed: 0, failed: 10 })
    const errors = (await (await client.files.content(done.error_file_id as string)).text()).trim().split('\n')
    expect(errors.map((e) => JSON.parse(e).custom_id).sort()).toEqual(
      failedLines.map((l) => JSON.parse(l).custom_id).sort(),
    )
  })

  it('refuses an endpoint other than the first batch’s, and leaves no new file behind', async () => {
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${lines.slice(0, 8).join('\n')}\n`), 'in.jsonl'),
      purpose: 'batch',
    })
    const first = await run(input.id)
    const before = (await client.files.list()).data.length
    const refused = await client.batches
      .create({ input_file_id: first.error_file_id as string, endpoint: '/v1/embeddings', completion_window: '24h' })
      .catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({
      param: 'endpoint',
      code: 'invalid_value',
    })
    expect((await client.files.list()).data).toHaveLength(before)
  })

  it('deletes the new file again when the provider refuses the batch', async () => {
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${lines.slice(0, 8).join('\n')}\n`), 'in.jsonl'),
      purpose: 'batch',
    })
    const first = await run(input.id)
    const before = (await client.files.list()).data.map((f) => f.id)
    const upstreamFiles = fake.files.size
    fake.failNext({ status: 400, method: 'POST', pathPrefix: '/v1/batches' })
    const refused = await client.batches
      .create({
        input_file_id: first.error_file_id as string,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      .catch((error: unknown) => error)
    // A provider's refusal of a request batchkit made reaches the client as a 502.
    expect(refused).toMatchObject({ status: 502 })
    expect((await client.files.list()).data.map((f) => f.id)).toEqual(before)
    expect(fake.files.size).toBe(upstreamFiles)
  })

  it('treats an output file as any other file: not a batch input', async () => {
    const input = await client.files.create({
      file: await toFile(Buffer.from(`${lines.slice(0, 4).join('\n')}\n`), 'in.jsonl'),
      purpose: 'batch',
    })
    const first = await run(input.id)
    const refused = await client.batches
      .create({
        input_file_id: first.output_file_id as string,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      .catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError)
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ param: 'input_file_id' })
  })
})
