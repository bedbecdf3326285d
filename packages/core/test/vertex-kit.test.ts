import { createSchemaValidator, type FakeGcp, fakeGeminiUsage, startFakeGcp } from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import type { Batch } from 'openai/resources/batches'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { usageOf } from '../src/providers/vertex/output-transform.js'
import { vertex } from '../src/providers/vertex/provider.js'
import { toGeminiRequest } from '../src/providers/vertex/request-transform.js'
import { type ServedKit, serveKit } from './support/serve-kit.js'

/**
 * OpenAI's own client, through batchkit, to the fake Vertex AI, which behaves like the real service where
 * batchkit was seen to fall short: prediction files repeated in incremental chunks, Gemini 3's thought
 * signatures, penalties refused by Gemini 2.5+, MODEL_ARMOR, requests refused row by row, model names.
 */

const PROJECT = 'kit-project'
const BUCKET = 'kit-batches'
const schemas = createSchemaValidator()

let fake: FakeGcp
let kit: BatchKit
let served: ServedKit
let client: OpenAI

beforeAll(async () => {
  fake = await startFakeGcp({ project: PROJECT, location: 'us-central1', buckets: [BUCKET] })
  kit = createBatchKit({
    providers: {
      vertex: vertex({
        project: PROJECT,
        location: 'us-central1',
        bucket: BUCKET,
        accessToken: fake.token,
        vertexEndpoint: fake.vertexBaseURL,
        gcsEndpoint: fake.gcsBaseURL,
      }),
    },
    models: [
      { model: 'gemini-*', provider: 'vertex' },
      { model: 'google/*', provider: 'vertex' },
    ],
    tracking: { enabled: false },
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

type Body = Record<string, unknown>
const request = (customId: string, body: Body) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/chat/completions',
  body,
})
const ask = (text: string, extra: Body = {}, model = 'gemini-2.5-flash'): Body => ({
  model,
  messages: [{ role: 'user', content: text }],
  ...extra,
})

/** A chat completion or an error, as far as these tests read them. */
interface OutputBody {
  model: string
  choices: Array<{
    finish_reason: string
    message: {
      role: string
      content: string | null
      tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>
    }
  }>
  error?: { code: string; message: string }
}

interface OutputLine {
  custom_id: string
  response: { status_code: number; body: OutputBody }
}

async function upload(lines: unknown[]) {
  const content = lines.map((line) => `${JSON.stringify(line)}\n`).join('')
  return client.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' })
}

async function rejected(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(OpenAI.APIError)
  return error as InstanceType<typeof OpenAI.APIError>
}

async function untilEnded(id: string): Promise<Batch> {
  let batch = await client.batches.retrieve(id)
  for (let i = 0; i < 10 && !['completed', 'failed', 'cancelled', 'expired'].includes(batch.status); i++) {
    await kit.batches.idle()
    batch = await client.batches.retrieve(id)
  }
  return batch
}

async function run(lines: unknown[]): Promise<{ batch: Batch; output: OutputLine[]; errors: OutputLine[] }> {
  const file = await upload(lines)
  const created = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  })
  const batch = await untilEnded(created.id)
  schemas.assert('Batch', batch)
  const read = async (id: string | null | undefined): Promise<OutputLine[]> =>
    id
      ? (await (await client.files.content(id)).text())
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as OutputLine)
      : []
  const output = await read(batch.output_file_id)
  const errors = await read(batch.error_file_id)
  for (const line of [...output, ...errors]) schemas.assert('BatchRequestOutput', line)
  return { batch, output, errors }
}

describe('output is read once (item 4)', () => {
  const lines = ['a', 'b', 'c', 'd', 'e'].map((id) => request(id, ask(`question ${id} — 質問`)))
  const expectedInputTokens = lines.reduce(
    (sum, line) => sum + usageOf(fakeGeminiUsage(toGeminiRequest(line.body), 'gemini-2.5-flash')).prompt_tokens,
    0,
  )

  it('reads predictions.jsonl, not the incremental chunks Vertex also leaves: counts and usage are not doubled', async () => {
    const { batch, output } = await run(lines)
    const directory = [...fake.jobs.values()].at(-1)!.outputInfo!.gcsOutputDirectory.replace(`gs://${BUCKET}/`, '')
    const files = [...fake.objects.values()].filter((o) => o.name.startsWith(`${directory}/`)).map((o) => o.name)
    expect(files.filter((name) => name.includes('/incremental_predictions/'))).toHaveLength(2)
    expect(batch.request_counts).toEqual({ total: 5, completed: 5, failed: 0 })
    expect(output.map((line) => line.custom_id).sort()).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(batch.usage?.input_tokens).toBe(expectedInputTokens)
  })

  it('falls back to the incremental chunks when a job left no final file', async () => {
    fake.nextJob({ output: 'incremental' })
    const { batch, output } = await run(lines)
    expect(batch.request_counts).toEqual({ total: 5, completed: 5, failed: 0 })
    expect(output).toHaveLength(5)
    expect(batch.usage?.input_tokens).toBe(expectedInputTokens)
  })
})

describe('Gemini 3 thought signatures (item 5)', () => {
  const weather = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  }
  const MODEL = 'gemini-3-pro-preview'

  it('carries the signature in the tool call id, so a multi-turn tool conversation works', async () => {
    const question = { role: 'user', content: 'Quel temps fait-il à Paris ?' }
    const first = await run([
      request('turn-1', { model: MODEL, messages: [question], tools: [weather], tool_choice: 'required' }),
    ])
    expect(first.errors).toEqual([])
    const choice = first.output[0]!.response.body.choices[0]!
    const assistant = choice.message
    expect(choice.finish_reason).toBe('tool_calls')
    const call = assistant.tool_calls![0]!
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather' } })
    expect(call.id).toMatch(/^call_[0-9a-f]+__thought__.+/)

    // The client sends the turn back as OpenAI's chat format has it: the assistant message, then the result.
    const second = await run([
      request('turn-2', {
        model: MODEL,
        messages: [question, assistant, { role: 'tool', tool_call_id: call.id, content: 'Ensoleillé, 24 °C' }],
        tools: [weather],
      }),
    ])
    expect(second.errors).toEqual([])
    expect(second.output[0]!.response.status_code).toBe(200)
    expect(second.output[0]!.response.body.choices[0]).toMatchObject({
      finish_reason: 'stop',
      message: { content: expect.stringContaining('Quel temps fait-il à Paris ?') },
    })

    // Without the signature, Vertex refuses the row, as Gemini 3 does.
    const bare = { ...call, id: call.id.split('__thought__')[0] }
    const stripped = await run([
      request('turn-2-bare', {
        model: MODEL,
        messages: [
          question,
          { ...assistant, tool_calls: [bare] },
          { role: 'tool', tool_call_id: bare.id, content: 'Ensoleillé' },
        ],
        tools: [weather],
      }),
    ])
    expect(stripped.errors[0]?.response).toMatchObject({
      status_code: 400,
      body: { error: { code: 'invalid_argument', message: expect.stringContaining('thought_signature') } },
    })
  })
})

describe('penalties (item 6)', () => {
  it('does not send a zero penalty to Gemini 2.5', async () => {
    const { batch, errors } = await run([request('z', ask('hi', { presence_penalty: 0, frequency_penalty: 0 }))])
    expect(errors).toEqual([])
    expect(batch.request_counts).toEqual({ total: 1, completed: 1, failed: 0 })
  })

  it('refuses a non-zero penalty for Gemini 2.5+ at upload, naming the line', async () => {
    const error = await rejected(
      upload([
        request('ok', ask('hi', {}, 'gemini-3-flash-preview')),
        request('bad', ask('hi', { frequency_penalty: 0.4 }, 'gemini-3-flash-preview')),
      ]),
    )
    expect(error).toMatchObject({ status: 400, code: 'unsupported_for_provider', param: 'file' })
    expect(error.message).toMatch(/^400 Line 2: 'frequency_penalty' is not supported by gemini-3-flash-preview/)
  })

  it('passes a non-zero penalty to Gemini 2.0, which takes it', async () => {
    const { errors } = await run([request('p', ask('hi', { presence_penalty: 0.5 }, 'gemini-2.0-flash-001'))])
    expect(errors).toEqual([])
  })
})

describe('finish reasons and errors (item 7)', () => {
  it('reads MODEL_ARMOR as content_filter', async () => {
    fake.nextJob({ finishReasons: { 1: 'MODEL_ARMOR' } })
    const { output } = await run([request('armor', ask('hi'))])
    expect(output[0]!.response.body.choices[0]).toMatchObject({
      finish_reason: 'content_filter',
      message: { content: null },
    })
  })

  it('leaves errors null on a cancelled batch, as OpenAI does', async () => {
    const file = await upload([request('c1', ask('hi')), request('c2', ask('ho'))])
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    await client.batches.cancel(batch.id)
    const done = await untilEnded(batch.id)
    expect(done.status).toBe('cancelled')
    expect([...fake.jobs.values()].at(-1)?.error).toEqual({ code: 1, message: 'CANCELED' })
    expect(done.errors).toBeNull()
  })
})

describe("a failed job's error names the batch, never the Vertex job or its project", () => {
  it("shows batchkit's batch id where Vertex's message names its job", async () => {
    // Vertex job names are `projects/<project>/locations/<location>/batchPredictionJobs/<id>`.
    fake.nextJob({
      state: 'JOB_STATE_FAILED',
      error: (job) => ({ code: 8, message: `Batch prediction job ${job} ran out of quota; retry ${job} later.` }),
    })
    const { batch } = await run([request('q', ask('hi'))])
    expect(batch.status).toBe('failed')
    expect(batch.errors?.data).toEqual([
      {
        code: 'resource_exhausted',
        message: `Batch prediction job ${batch.id} ran out of quota; retry ${batch.id} later.`,
        param: null,
        line: null,
      },
    ])
    expect(JSON.stringify(batch)).not.toContain(PROJECT)
  })
})

describe('what Vertex refuses row by row is refused at upload, naming the line (item 8)', () => {
  it.each([
    [
      'a function name starting with a digit',
      ask('hi', { tools: [{ type: 'function', function: { name: '2fast' } }] }),
      'tools[0].function.name',
    ],
    [
      'a function name longer than 64',
      ask('hi', { tools: [{ type: 'function', function: { name: `f${'x'.repeat(64)}` } }] }),
      'tools[0].function.name',
    ],
    ['a seed outside int32', ask('hi', { seed: 2 ** 31 }), 'seed'],
    [
      'a schema keyword Gemini does not support',
      ask('hi', {
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'r',
            schema: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' } } },
          },
        },
      }),
      'response_format.json_schema.schema.properties.code',
    ],
  ])('%s', async (_label, body, param) => {
    const error = await rejected(upload([request('fine', ask('hi')), request('refused', body)]))
    expect(error).toMatchObject({ status: 400, param: 'file' })
    expect(error.message).toMatch(/^400 Line 2: /)
    expect(error.message).toContain(`'${param}'`)
  })

  it('lets through what Vertex runs: names with dots and dashes, an int32 seed, a supported schema', async () => {
    const { errors, batch } = await run([
      request(
        'ok',
        ask('hi', {
          seed: 2 ** 31 - 1,
          tools: [{ type: 'function', function: { name: 'get.weather-v2' } }],
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'r',
              schema: {
                type: 'object',
                properties: { city: { type: 'string', enum: ['Paris', 'Lyon'] } },
                required: ['city'],
                additionalProperties: false,
              },
            },
          },
        }),
      ),
    ])
    expect(errors).toEqual([])
    expect(batch.request_counts?.completed).toBe(1)
  })
})

describe('model names (item 9)', () => {
  it('runs google/gemini-2.5-flash, as Vertex’s OpenAI-compatible endpoint names it, on publishers/google/models/gemini-2.5-flash', async () => {
    const { batch, output } = await run([request('g', ask('hi', {}, 'google/gemini-2.5-flash'))])
    expect(batch.status).toBe('completed')
    expect([...fake.jobs.values()].at(-1)?.model).toBe('publishers/google/models/gemini-2.5-flash')
    expect(output[0]!.response.body.model).toBe('gemini-2.5-flash')
  })
})
