import { Readable, Writable } from 'node:stream'
import { type FakeGcp, fakeGeminiText, fakeGeminiUsage, startFakeGcp } from '@batchkit/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { batchStatusOf, jobTimestamps, requestCountsOf } from '../src/providers/vertex/job-state.js'
import { routeVertexOutput, usageOf } from '../src/providers/vertex/output-transform.js'
import { predictionFiles } from '../src/providers/vertex/outputs.js'
import { toGeminiRequest, VertexRequestTransform } from '../src/providers/vertex/request-transform.js'
import type { VertexBatchJob } from '../src/providers/vertex/types.js'
import { concatJsonlSources } from '../src/util/lines.js'

// The transforms against the fake GCS + Vertex: OpenAI JSONL → Gemini JSONL streamed into a resumable upload,
// a job run to its end, and its shuffled, split predictions turned back into OpenAI output by custom_id.

let fake: FakeGcp

interface ChatBody {
  model: string
  choices: Array<{ message: { content: string | null }; finish_reason: string }>
  usage: unknown
  error?: unknown
}

beforeEach(async () => {
  fake = await startFakeGcp({ resumableChunkBytes: 1024 })
})

afterEach(async () => {
  await fake.close()
})

const MODEL = 'publishers/google/models/gemini-2.5-flash'
const PARENT = '/v1/projects/p/locations/global'
const auth = () => ({ authorization: `Bearer ${fake.token}` })

/**
 * Streams `source` into a GCS resumable upload: sends whole granules with `bytes S-E/*`, keeps what the 308
 * `Range` says was not persisted, and closes with the total. Holds at most one chunk.
 */
async function resumableUpload(source: AsyncIterable<Buffer>, name: string, chunkBytes = 4096): Promise<void> {
  const init = await fetch(
    `${fake.gcsBaseURL}/upload/storage/v1/b/bkt/o?uploadType=resumable&name=${encodeURIComponent(name)}`,
    {
      method: 'POST',
      headers: { ...auth(), 'x-upload-content-type': 'application/jsonl' },
    },
  )
  const session = init.headers.get('location')!
  let offset = 0
  let pending = Buffer.alloc(0)
  const send = async (final: boolean): Promise<void> => {
    const total = final ? String(offset + pending.length) : '*'
    const range = pending.length === 0 ? `bytes */${total}` : `bytes ${offset}-${offset + pending.length - 1}/${total}`
    const res = await fetch(session, { method: 'PUT', body: pending, headers: { 'content-range': range } })
    if (final) {
      expect(res.status).toBe(200)
      return
    }
    expect(res.status).toBe(308)
    const persisted = Number(/bytes=0-(\d+)/.exec(res.headers.get('range') ?? '')?.[1] ?? -1) + 1
    pending = pending.subarray(persisted - offset)
    offset = persisted
  }
  for await (const chunk of source) {
    pending = Buffer.concat([pending, chunk])
    if (pending.length >= chunkBytes) await send(false)
  }
  await send(true)
}

function openAILine(customId: string, content: string, extra: Record<string, unknown> = {}) {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'gemini-2.5-flash',
      messages: [
        { role: 'system', content: 'Sois bref.' },
        { role: 'user', content },
      ],
      ...extra,
    },
  }
}

async function runJob(input: string, extra: Record<string, unknown> = {}): Promise<VertexBatchJob> {
  const create = await fetch(`${fake.vertexBaseURL}${PARENT}/batchPredictionJobs`, {
    method: 'POST',
    headers: auth(),
    body: JSON.stringify({
      displayName: 'roundtrip',
      model: MODEL,
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: [input] } },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt/out/batch_1/' } },
      ...extra,
    }),
  })
  let job = (await create.json()) as VertexBatchJob
  expect(batchStatusOf(job.state)).toBe('validating')
  for (let i = 0; i < 5 && !['completed', 'failed', 'cancelled', 'expired'].includes(batchStatusOf(job.state)); i++) {
    job = (await (await fetch(`${fake.vertexBaseURL}/v1/${job.name}`, { headers: auth() })).json()) as VertexBatchJob
  }
  return job
}

async function convertOutput(job: VertexBatchJob) {
  const prefix = `${job.outputInfo!.gcsOutputDirectory!.replace('gs://bkt/', '')}/`
  const list = (await (
    await fetch(`${fake.gcsBaseURL}/storage/v1/b/bkt/o?prefix=${encodeURIComponent(prefix)}`, { headers: auth() })
  ).json()) as { items: Array<{ name: string }> }
  // The final predictions.jsonl, not the incremental chunks that hold the same rows.
  const names = predictionFiles(list.items, prefix).map((item) => item.name)
  expect(names).toEqual([`${prefix}predictions.jsonl`])
  const sources = names.map((name) => async () => {
    const res = await fetch(`${fake.gcsBaseURL}/storage/v1/b/bkt/o/${encodeURIComponent(name)}?alt=media`, {
      headers: auth(),
    })
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)
  })
  const collected = { output: '', error: '' }
  const sink = (key: 'output' | 'error') =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        collected[key] += chunk.toString('utf8')
        callback()
      },
    })
  const counts = await routeVertexOutput(
    concatJsonlSources(sources),
    { output: sink('output'), error: sink('error') },
    {
      idSeed: 'batch_1',
      model: 'gemini-2.5-flash',
    },
  )
  const parse = (text: string) =>
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { custom_id: string; response: { status_code: number; body: ChatBody } })
  return { counts, output: parse(collected.output), errors: parse(collected.error) }
}

describe('Vertex round trip through the fakes', () => {
  const lines = Array.from({ length: 40 }, (_, i) =>
    openAILine(
      `Request-${i}/ÄÖÜ`,
      `Question ${i}: 这是什么？ 🌍 ${'é'.repeat(i * 7)}`,
      i % 3 === 0 ? { max_tokens: 8 } : {},
    ),
  )
  const input = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`

  async function upload(name: string): Promise<string> {
    // One byte at a time into the transform: every multibyte character is split across chunks.
    const bytes = Buffer.from(input)
    const transform = new VertexRequestTransform()
    Readable.from(
      (function* () {
        for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1)
      })(),
    ).pipe(transform)
    await resumableUpload(transform, name)
    expect(transform.requests).toBe(40)
    return `gs://bkt/${name}`
  }

  it('restores every custom_id from the labels alone, whatever the order and file', async () => {
    const job = await runJob(await upload('in/batch_1.jsonl'))
    expect(batchStatusOf(job.state)).toBe('completed')
    expect(requestCountsOf(job.completionStats)).toEqual({ total: 40, completed: 40, failed: 0 })
    const times = jobTimestamps(job)
    expect(Number.isInteger(times.completedAt)).toBe(true)
    expect(times.completedAt).toBeGreaterThanOrEqual(times.createdAt!)

    const { counts, output, errors } = await convertOutput(job)
    expect(counts).toMatchObject({ succeeded: 40, failed: 0, unattributed: 0 })
    expect(errors).toEqual([])
    expect(output.map((line) => line.custom_id)).not.toEqual(lines.map((line) => line.custom_id))
    expect(output.map((line) => line.custom_id).sort()).toEqual(lines.map((line) => line.custom_id).sort())

    for (const line of output) {
      const original = lines.find((candidate) => candidate.custom_id === line.custom_id)!
      const request = toGeminiRequest(original.body)
      const body = line.response.body
      const choice = body.choices[0]!
      expect(line.response.status_code).toBe(200)
      expect(body.model).toBe('gemini-2.5-flash')
      expect(choice.message.content).toBe(fakeGeminiText(request))
      expect(choice.message.content).toContain('这是什么？ 🌍')
      expect(choice.finish_reason).toBe('max_tokens' in original.body ? 'length' : 'stop')
      expect(body.usage).toEqual(usageOf(fakeGeminiUsage(request, MODEL)))
    }
  })

  it('takes the top-level custom_id when a custom model’s job attaches it, and routes failed rows to the error file', async () => {
    fake.nextJob({ state: 'JOB_STATE_PARTIALLY_SUCCEEDED', failLines: [1, 17] })
    const job = await runJob(await upload('in/batch_2.jsonl'), {
      model: 'projects/p/locations/global/models/1234',
      instanceConfig: { excludedFields: ['custom_id'] },
    })
    expect(batchStatusOf(job.state)).toBe('completed')
    expect(requestCountsOf(job.completionStats)).toEqual({ total: 40, completed: 38, failed: 2 })
    const { counts, output, errors } = await convertOutput(job)
    expect(counts).toMatchObject({ succeeded: 38, failed: 2, unattributed: 0 })
    expect(output).toHaveLength(38)
    expect(errors.map((line) => line.custom_id).sort()).toEqual(['Request-0/ÄÖÜ', 'Request-16/ÄÖÜ'])
    for (const line of errors) {
      expect(line.response.status_code).toBe(400)
      expect(line.response.body).toEqual({
        error: {
          message: expect.stringContaining('失败'),
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_argument',
        },
      })
    }
  })
})
