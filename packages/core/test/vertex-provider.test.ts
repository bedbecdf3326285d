import { createHash, randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createSchemaValidator, type FakeGcp, fakeGeminiText, fakeGeminiUsage, startFakeGcp } from '@batchkit/testkit'
import { MockAgent } from 'undici'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type ApiError, isApiError } from '../src/errors.js'
import type { Provider, ProviderBatch, ProviderUpload } from '../src/providers/types.js'
import { usageOf } from '../src/providers/vertex/output-transform.js'
import { type VertexProviderOptions, vertex } from '../src/providers/vertex/provider.js'
import { toGeminiRequest } from '../src/providers/vertex/request-transform.js'
import type { UploadPurpose } from '../src/types.js'

// The Vertex provider against the GCS + Vertex fake on loopback: uploads stored twice from one stream,
// jobs created, polled, cancelled, their predictions turned into OpenAI output and error files once.

const PROJECT = 'proj-1'
const LOCATION = 'us-central1'
const BUCKET = 'bkt'
const MODEL = 'gemini-2.5-flash'
const MODEL_RESOURCE = `publishers/google/models/${MODEL}`

const validator = createSchemaValidator()
const providers: Provider[] = []
let fake: FakeGcp

beforeEach(async () => {
  fake = await startFakeGcp({ project: PROJECT, location: LOCATION, buckets: [BUCKET], resumableChunkBytes: 1024 })
})

afterEach(async () => {
  await Promise.all(providers.splice(0).map((provider) => provider.close?.()))
  await fake.close()
})

function provider(options: Partial<VertexProviderOptions> = {}): Provider {
  const created = vertex({
    project: PROJECT,
    location: LOCATION,
    bucket: BUCKET,
    accessToken: fake.token,
    vertexEndpoint: fake.vertexBaseURL,
    gcsEndpoint: fake.gcsBaseURL,
    uploadChunkBytes: 256 * 1024,
    ...options,
  })
  providers.push(created)
  return created
}

interface Line {
  custom_id: string
  method: 'POST'
  url: string
  body: Record<string, unknown>
}

function line(customId: string, content: string, extra: Record<string, unknown> = {}): Line {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: MODEL,
      messages: [
        { role: 'system', content: 'Sois bref.' },
        { role: 'user', content },
      ],
      ...extra,
    },
  }
}

const LINES = Array.from({ length: 12 }, (_, i) =>
  line(`Req-${i}/ÄÖ 请求`, `Question ${i}: 这是什么？ 🌍 ${'é'.repeat(i * 5)}`, i % 4 === 0 ? { max_tokens: 8 } : {}),
)
const JSONL = `${LINES.map((item) => JSON.stringify(item)).join('\n')}\n`

/** The bytes in small odd-sized pieces, so multibyte characters are split across chunks. */
function pieces(text: string | Buffer, size = 7): Readable {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text)
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
    })(),
  )
}

/** A batch tag as batchkit makes them: `batch_<32 hex>`. */
const batchTag = () => `batch_${randomUUID().replaceAll('-', '')}`

function uploadOf(
  body: Readable,
  purpose: UploadPurpose | Promise<UploadPurpose> = 'batch',
  signal = new AbortController().signal,
): ProviderUpload {
  return {
    body,
    filename: 'requêtes.jsonl',
    tag: `file-${randomUUID()}`,
    purpose: Promise.resolve(purpose),
    expiresAfter: Promise.resolve(null),
    signal,
  }
}

/** Object names under `files/{id}/` and `batches/…` in the fake. */
function objectNames(): string[] {
  return [...fake.objects.values()].map((object) => object.name).sort()
}

async function download(p: Provider, id: string): Promise<Buffer> {
  const { body } = await p.downloadFile(id)
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** An OpenAI batch output or error line, as far as these tests read it. */
interface OutputRow {
  id: string
  custom_id: string
  error: null
  response: {
    status_code: number
    body: {
      object?: string
      model?: string
      choices: Array<{ message: { content: string | null }; finish_reason: string }>
      usage: { prompt_tokens: number }
      error: { code: string; message: string }
    }
  }
}

/** A converted Vertex input line. */
interface VertexRow {
  custom_id: string
  request: { contents: Array<{ parts: Array<{ text: string }> }> }
}

function jsonLines<T = OutputRow>(bytes: Buffer): T[] {
  return bytes
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((text) => JSON.parse(text) as T)
}

/** What a promise rejected with (an ApiError, unless the test says otherwise). */
async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise
  } catch (error) {
    return error as ApiError
  }
  throw new Error('expected a rejection')
}

/** Polls until the batch has ended (the fake advances one step per GET). */
async function untilEnded(p: Provider, id: string): Promise<ProviderBatch[]> {
  const seen: ProviderBatch[] = []
  for (let i = 0; i < 6; i++) {
    const batch = await p.retrieveBatch(id)
    seen.push(batch)
    if (['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) return seen
  }
  throw new Error('the batch did not end')
}

async function uploadAndCreate(p: Provider, jsonl = JSONL): Promise<{ fileId: string; batch: ProviderBatch }> {
  const file = await p.uploadFile(uploadOf(pieces(jsonl, 4096)))
  const batch = await p.createBatch({
    inputFileId: file.id,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
    metadata: null,
    outputExpiresAfter: null,
    tag: batchTag(),
  })
  return { fileId: file.id, batch }
}

function expectFullBatch(batch: ProviderBatch): void {
  expect(Object.keys(batch).sort()).toEqual(
    [
      'id',
      'status',
      'inProgressAt',
      'expiresAt',
      'finalizingAt',
      'completedAt',
      'failedAt',
      'expiredAt',
      'cancellingAt',
      'cancelledAt',
      'requestCounts',
      'errors',
      'usage',
      'outputFileId',
      'errorFileId',
    ].sort(),
  )
  expect(batch.id).toMatch(/^projects\/proj-1\/locations\/us-central1\/batchPredictionJobs\/\d+$/)
  for (const key of ['total', 'completed', 'failed'] as const)
    expect(Number.isInteger(batch.requestCounts[key])).toBe(true)
  for (const key of ['inProgressAt', 'completedAt', 'failedAt', 'cancelledAt', 'cancellingAt', 'expiredAt'] as const) {
    const value = batch[key]
    if (value !== null) expect(value).toBeLessThan(10_000_000_000) // seconds, not milliseconds
  }
}

describe('uploadFile', () => {
  it('stores the original byte for byte and the converted requests beside it', async () => {
    const p = provider()
    const file = await p.uploadFile(uploadOf(pieces(JSONL)))
    expect(file.id).toMatch(/^input-[0-9a-f]{32}$/)
    expect(file.bytes).toBe(Buffer.byteLength(JSONL))
    expect(file.filename).toBe('requêtes.jsonl')
    expect(Number.isInteger(file.createdAt)).toBe(true)

    expect(await fake.readObject(BUCKET, `batchkit/files/${file.id}/original`)).toEqual(Buffer.from(JSONL))
    const converted = fake.objects.get(`${BUCKET}/batchkit/files/${file.id}/vertex.jsonl`)!
    expect(converted.metadata).toEqual({ batchkit_model: MODEL, batchkit_tag: expect.stringMatching(/^file-/) })
    const rows = jsonLines<VertexRow>(await fake.readObject(BUCKET, converted.name))
    expect(rows.map((row) => row.custom_id)).toEqual(LINES.map((item) => item.custom_id))
    expect(rows[1]!.request.contents[0]!.parts[0]!.text).toBe(
      (LINES[1]!.body.messages as Array<{ content: string }>)[1]!.content,
    )

    expect(await download(p, file.id)).toEqual(Buffer.from(JSONL))
    expect(await p.retrieveFile(file.id)).toEqual(file)
  })

  it('keeps only the original of a file that turns out not to be a batch file, the purpose coming last', async () => {
    const p = provider()
    let setPurpose!: (purpose: UploadPurpose) => void
    const purpose = new Promise<UploadPurpose>((resolve) => {
      setPurpose = resolve
    })
    const body = pieces(JSONL, 100)
    body.on('end', () => setTimeout(() => setPurpose('user_data'), 20))
    const file = await p.uploadFile(uploadOf(body, purpose))
    expect(objectNames()).toEqual([`batchkit/files/${file.id}/original`])
    expect(await download(p, file.id)).toEqual(Buffer.from(JSONL))
  })

  it('stores anything for other purposes, even what the conversion refuses', async () => {
    const p = provider()
    const text = 'not json at all\nÄ line\n'
    const file = await p.uploadFile(uploadOf(pieces(text), 'user_data'))
    expect(objectNames()).toEqual([`batchkit/files/${file.id}/original`])
    expect(await download(p, file.id)).toEqual(Buffer.from(text))
  })

  it('refuses a batch line it cannot convert once the purpose is known, even after the end', async () => {
    const p = provider()
    const bad = [LINES[0], LINES[1], line('x', 'y', { logprobs: true })]
    const text = `${bad.map((item) => JSON.stringify(item)).join('\n')}\n`
    for (const late of [false, true]) {
      const purpose = late
        ? new Promise<UploadPurpose>((resolve) => setTimeout(() => resolve('batch'), 50))
        : Promise.resolve<UploadPurpose>('batch')
      const error = await rejection(p.uploadFile(uploadOf(pieces(text), purpose)))
      expect(isApiError(error)).toBe(true)
      expect(error.status).toBe(400)
      expect(error.code).toBe('unsupported_for_provider')
      expect(error.message).toMatch(/^Line 3: 'logprobs'/)
      expect(objectNames()).toEqual([])
    }
  })

  it('aborts both uploads and deletes what was written when the incoming stream fails', async () => {
    const p = provider()
    const body = new Readable({ read() {} })
    const upload = p.uploadFile(uploadOf(body))
    body.push(Buffer.from(JSONL.repeat(200)))
    await new Promise((resolve) => setTimeout(resolve, 100))
    body.destroy(new Error('client went away'))
    const error = await rejection(upload)
    expect(error.message).toBe('client went away')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(objectNames()).toEqual([])
  })

  it('honours the caller’s abort signal', async () => {
    const p = provider()
    const controller = new AbortController()
    const body = new Readable({ read() {} })
    const upload = p.uploadFile(uploadOf(body, 'batch', controller.signal))
    body.push(Buffer.from(JSONL.repeat(100)))
    await new Promise((resolve) => setTimeout(resolve, 50))
    controller.abort(new Error('stop'))
    expect((await rejection(upload)).message).toBe('stop')
    expect(objectNames()).toEqual([])
  })

  it('retries a chunk GCS failed, and still stores every byte', async () => {
    const p = provider()
    const big = JSONL.repeat(200) // ~ 700 KiB: several chunks
    fake.failNext({ status: 503, method: 'PUT', pathPrefix: '/upload/' })
    const file = await p.uploadFile(uploadOf(pieces(big, 64 * 1024)))
    const stored = await fake.readObject(BUCKET, `batchkit/files/${file.id}/original`)
    expect(stored.equals(Buffer.from(big))).toBe(true) // toEqual compares byte by byte, slowly
  })

  it('maps a missing bucket to a clear 502 and a storage outage to a 503, with no Google text', async () => {
    const p = provider({ bucket: 'no-such-bucket' })
    const missing = await rejection(p.uploadFile(uploadOf(pieces(JSONL))))
    expect(missing.status).toBe(502)
    expect(missing.code).toBe('upstream_bucket_not_found')

    fake.failNext({ status: 503, method: 'POST', pathPrefix: '/upload/', times: 2 })
    const down = await rejection(provider().uploadFile(uploadOf(pieces(JSONL))))
    expect(down.status).toBe(503)
    expect(down.code).toBe('upstream_unavailable')
    expect(objectNames()).toEqual([])
  })
})

describe('batches', () => {
  it('creates a job from the converted file and follows it PENDING → RUNNING → SUCCEEDED', async () => {
    const p = provider()
    const { fileId, batch } = await uploadAndCreate(p)
    expectFullBatch(batch)
    expect(batch.status).toBe('validating')
    expect(batch.outputFileId).toBeNull()
    expect(batch.expiresAt).toBeGreaterThan(Date.now() / 1000 + 71 * 3600)

    const job = fake.jobs.get(batch.id.split('/').at(-1)!)!
    expect(job.model).toBe(MODEL_RESOURCE)
    expect(job.displayName).toContain(fileId)
    expect(job.inputConfig).toEqual({
      instancesFormat: 'jsonl',
      gcsSource: { uris: [`gs://${BUCKET}/batchkit/files/${fileId}/vertex.jsonl`] },
    })
    expect(job.outputConfig.gcsDestination.outputUriPrefix).toMatch(/^gs:\/\/bkt\/batchkit\/batches\/[0-9a-f]{32}\/$/)
    // No instanceConfig: Vertex documents excludedFields for custom models, so custom_ids ride in the labels.
    expect(job.instanceConfig).toBeUndefined()

    const [running, done] = await untilEnded(p, batch.id)
    expectFullBatch(running!)
    expect(running!.status).toBe('in_progress')
    expect(running!.inProgressAt).toEqual(expect.any(Number))
    expect(running!.requestCounts).toEqual({ total: 12, completed: 0, failed: 0 })
    expectFullBatch(done!)
    expect(done!.status).toBe('completed')
    expect(done!.completedAt).toBeGreaterThanOrEqual(done!.inProgressAt!)
    expect(done!.requestCounts).toEqual({ total: 12, completed: 12, failed: 0 })
    expect(done!.errorFileId).toBeNull()
    expect(done!.outputFileId).toMatch(/^output-[0-9a-f]{32}$/)
    expect(done!.errors).toBeNull()

    // Vertex's rows carry no top-level custom_id, only the request with its labels...
    const directory = fake.jobs
      .get(batch.id.split('/').at(-1)!)!
      .outputInfo!.gcsOutputDirectory.replace('gs://bkt/', '')
    const rows = jsonLines<Record<string, unknown>>(await fake.readObject(BUCKET, `${directory}/predictions.jsonl`))
    expect(rows.map((row) => Object.keys(row).sort())).toEqual(
      rows.map(() => ['processed_time', 'request', 'response', 'status']),
    )
    // ...and the output file has OpenAI lines, every custom_id once, Gemini usage mapped.
    const output = jsonLines(await download(p, done!.outputFileId!))
    expect(output.map((row) => row.custom_id).sort()).toEqual(LINES.map((item) => item.custom_id).sort())
    let promptTokens = 0
    for (const row of output) {
      validator.assert('BatchRequestOutput', row)
      const original = LINES.find((item) => item.custom_id === row.custom_id)!
      const request = toGeminiRequest(original.body)
      expect(row.id).toMatch(/^batch_req_/)
      expect(row.error).toBeNull()
      expect(row.response.status_code).toBe(200)
      expect(row.response.body.object).toBe('chat.completion')
      expect(row.response.body.model).toBe(MODEL)
      expect(row.response.body.choices[0]!.message.content).toBe(fakeGeminiText(request))
      expect(row.response.body.choices[0]!.finish_reason).toBe('max_tokens' in original.body ? 'length' : 'stop')
      expect(row.response.body.usage).toEqual(usageOf(fakeGeminiUsage(request, MODEL_RESOURCE)))
      promptTokens += row.response.body.usage.prompt_tokens
    }
    expect(done!.usage?.inputTokens).toBe(promptTokens)

    const file = await p.retrieveFile(done!.outputFileId!)
    expect(file.bytes).toBe((await download(p, done!.outputFileId!)).length)
    expect(file.filename).toBe('output.jsonl')
    const stated = await p.downloadFile(done!.outputFileId!)
    expect(stated.bytes).toBe(file.bytes)
    await download(p, done!.outputFileId!)
    for await (const _ of stated.body) {
      // drained
    }

    // Once: a later refresh reads the manifest and uploads nothing.
    const uploadsBefore = fake.requests.filter((request) => request.path.startsWith('/upload/')).length
    const again = await p.retrieveBatch(batch.id)
    expect(again).toEqual(done)
    expect(fake.requests.filter((request) => request.path.startsWith('/upload/')).length).toBe(uploadsBefore)
  })

  it('writes failed rows to the error file', async () => {
    const p = provider()
    fake.nextJob({ failLines: [2, 5] })
    const { batch } = await uploadAndCreate(p)
    const done = (await untilEnded(p, batch.id)).at(-1)!
    expect(done.status).toBe('completed')
    expect(done.requestCounts).toEqual({ total: 12, completed: 10, failed: 2 })
    const errors = jsonLines(await download(p, done.errorFileId!))
    expect(errors.map((row) => row.custom_id).sort()).toEqual([LINES[1]!.custom_id, LINES[4]!.custom_id].sort())
    for (const row of errors) {
      validator.assert('BatchRequestOutput', row)
      expect(row.response.status_code).toBe(400)
      expect(row.response.body.error.code).toBe('invalid_argument')
      expect(row.response.body.error.message).toContain('失败')
    }
    expect(jsonLines(await download(p, done.outputFileId!))).toHaveLength(10)
  })

  it('reads a PARTIALLY_SUCCEEDED job as completed with an error file', async () => {
    const p = provider()
    fake.nextJob({ state: 'JOB_STATE_PARTIALLY_SUCCEEDED' })
    const { batch } = await uploadAndCreate(p)
    const done = (await untilEnded(p, batch.id)).at(-1)!
    expectFullBatch(done)
    expect(done.status).toBe('completed')
    expect(done.requestCounts).toEqual({ total: 12, completed: 11, failed: 1 })
    expect(jsonLines(await download(p, done.errorFileId!)).map((row) => row.custom_id)).toEqual([LINES[0]!.custom_id])
  })

  it('reads a FAILED job as failed with its error and no files', async () => {
    const p = provider()
    fake.nextJob({ state: 'JOB_STATE_FAILED', error: { code: 3, message: 'The input is bad.' } })
    const { batch } = await uploadAndCreate(p)
    const done = (await untilEnded(p, batch.id)).at(-1)!
    expectFullBatch(done)
    expect(done.status).toBe('failed')
    expect(done.failedAt).toEqual(expect.any(Number))
    expect(done.errors).toEqual([{ code: 'invalid_argument', message: 'The input is bad.', param: null, line: null }])
    expect(done.outputFileId).toBeNull()
    expect(done.errorFileId).toBeNull()
  })

  it('reads an EXPIRED job as expired', async () => {
    const p = provider()
    fake.nextJob({ state: 'JOB_STATE_EXPIRED' })
    const { batch } = await uploadAndCreate(p)
    const done = (await untilEnded(p, batch.id)).at(-1)!
    expect(done.status).toBe('expired')
    expect(done.expiredAt).toEqual(expect.any(Number))
  })

  it('cancels with POST :cancel and answers the whole batch, never {}', async () => {
    const p = provider()
    const { batch } = await uploadAndCreate(p)
    expect((await p.retrieveBatch(batch.id)).status).toBe('in_progress')
    const cancelled = await p.cancelBatch(batch.id)
    expect(fake.requests.some((request) => request.method === 'POST' && request.path.endsWith(':cancel'))).toBe(true)
    expectFullBatch(cancelled)
    // The fake advances on the GET that follows the cancel: the rows done so far are in the output.
    expect(cancelled.status).toBe('cancelled')
    expect(cancelled.cancelledAt).toEqual(expect.any(Number))
    expect(cancelled.requestCounts).toEqual({ total: 12, completed: 6, failed: 0 })
    expect(jsonLines(await download(p, cancelled.outputFileId!))).toHaveLength(6)

    const conflict = await rejection(p.cancelBatch(batch.id))
    expect(conflict.status).toBe(409)
  })

  it('answers CANCELLING while Vertex is still cancelling', async () => {
    await fake.close()
    fake = await startFakeGcp({ project: PROJECT, location: LOCATION, progress: 3_600_000 })
    const p = provider()
    const { batch } = await uploadAndCreate(p)
    const cancelling = await p.cancelBatch(batch.id)
    expectFullBatch(cancelling)
    expect(cancelling.status).toBe('cancelling')
    expect(cancelling.cancellingAt).toEqual(expect.any(Number))
  })

  it('refuses endpoints other than chat completions', async () => {
    const p = provider()
    const file = await p.uploadFile(uploadOf(pieces(JSONL)))
    const error = await rejection(
      p.createBatch({
        inputFileId: file.id,
        endpoint: '/v1/embeddings',
        completionWindow: '24h',
        metadata: null,
        outputExpiresAfter: null,
        tag: batchTag(),
      }),
    )
    expect(error.status).toBe(400)
    expect(error.message).toContain("only '/v1/chat/completions'")
  })

  it('says clearly that the project or location is wrong when Vertex answers 404 to a create', async () => {
    const p = provider({ location: 'europe-west4' })
    const file = await p.uploadFile(uploadOf(pieces(JSONL)))
    const error = await rejection(
      p.createBatch({
        inputFileId: file.id,
        endpoint: '/v1/chat/completions',
        completionWindow: '24h',
        metadata: null,
        outputExpiresAfter: null,
        tag: batchTag(),
      }),
    )
    expect(isApiError(error)).toBe(true)
    expect(error.status).toBe(502)
    expect(error.code).toBe('upstream_location_not_found')
    expect(error.message).toContain("project or location 'europe-west4' is wrong")
    expect(error.message).not.toContain(PROJECT)
    expect(error.message).not.toContain('unauthorized') // Google's own text stays out
  })

  it('surfaces prediction rows it cannot attribute instead of dropping them silently', async () => {
    const p = provider()
    const { batch } = await uploadAndCreate(p)
    // Run the job to its end behind the provider's back, then add rows without a custom_id.
    const headers = { authorization: `Bearer ${fake.token}` }
    for (let i = 0; i < 2; i++) await fetch(`${fake.vertexBaseURL}/v1/${batch.id}`, { headers })
    const directory = fake.jobs.get(batch.id.split('/').at(-1)!)!.outputInfo!.gcsOutputDirectory
    const name = `${directory.replace(`gs://${BUCKET}/`, '')}/predictions_9.jsonl`
    const stray = `${JSON.stringify({ status: '', request: { contents: [] }, response: { candidates: [] } })}\nnot json\n`
    const put = await fetch(
      `${fake.gcsBaseURL}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}`,
      { method: 'POST', headers, body: stray },
    )
    expect(put.status).toBe(200)

    const done = await p.retrieveBatch(batch.id)
    expect(done.status).toBe('completed')
    expect(done.requestCounts).toEqual({ total: 14, completed: 12, failed: 2 })
    expect(done.errors).toEqual([
      expect.objectContaining({ code: 'unattributed_rows', message: expect.stringContaining('2 prediction rows') }),
    ])
    expect(done.errorFileId).toBeNull()
  })

  it('never counts a custom_id twice, even when prediction files overlap', async () => {
    const p = provider()
    fake.nextJob({ output: 'incremental' })
    const { batch } = await uploadAndCreate(p)
    // Run the job behind the provider's back, then have a chunk exported a second time.
    const headers = { authorization: `Bearer ${fake.token}` }
    for (let i = 0; i < 2; i++) await fetch(`${fake.vertexBaseURL}/v1/${batch.id}`, { headers })
    const directory = fake.jobs.get(batch.id.split('/').at(-1)!)!.outputInfo!.gcsOutputDirectory
    const chunks = `${directory.replace(`gs://${BUCKET}/`, '')}/incremental_predictions`
    const again = await fake.readObject(BUCKET, `${chunks}/predictions_1.jsonl`)
    const put = await fetch(
      `${fake.gcsBaseURL}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(`${chunks}/predictions_3.jsonl`)}`,
      { method: 'POST', headers, body: again },
    )
    expect(put.status).toBe(200)

    const done = await p.retrieveBatch(batch.id)
    expect(done.requestCounts).toEqual({ total: 12, completed: 12, failed: 0 })
    const output = jsonLines(await download(p, done.outputFileId!))
    expect(output.map((row) => row.custom_id).sort()).toEqual(LINES.map((item) => item.custom_id).sort())
    const inputTokens = output.reduce((sum, row) => sum + row.response.body.usage.prompt_tokens, 0)
    expect(done.usage?.inputTokens).toBe(inputTokens)
  })

  it('fails a refresh when storage fails while converting, cleans up, and converts on the next one', async () => {
    const p = provider()
    const { batch } = await uploadAndCreate(p)
    await p.retrieveBatch(batch.id) // RUNNING
    const prefix = fake.jobs.get(batch.id.split('/').at(-1)!)!.outputConfig.gcsDestination.outputUriPrefix
    const key = /batches\/([0-9a-f]{32})\//.exec(prefix)![1]!

    // A prediction file that cannot be read.
    fake.failNext({
      status: 500,
      method: 'GET',
      pathPrefix: `/storage/v1/b/${BUCKET}/o/${encodeURIComponent(`batchkit/batches/${key}/prediction-model`)}`,
    })
    const unreadable = await rejection(p.retrieveBatch(batch.id))
    expect(unreadable.status).toBe(502)
    expect(unreadable.code).toBe('upstream_error')
    expect(
      objectNames().filter((name) => name.startsWith(`batchkit/batches/${key}/`) && !name.includes('prediction')),
    ).toEqual([])

    // An output file that cannot be started.
    fake.failNext({ status: 503, method: 'POST', pathPrefix: '/upload/' })
    const unwritable = await rejection(p.retrieveBatch(batch.id))
    expect(unwritable.status).toBe(503)
    expect(objectNames().some((name) => name.endsWith('manifest.json'))).toBe(false)

    const done = await p.retrieveBatch(batch.id)
    expect(done.status).toBe('completed')
    expect(jsonLines(await download(p, done.outputFileId!))).toHaveLength(12)
  })

  it('writes identical output bytes when two instances convert the same job at once', async () => {
    const a = provider()
    const b = provider()
    const { batch } = await uploadAndCreate(a)
    await a.retrieveBatch(batch.id) // RUNNING
    const [fromA, fromB] = await Promise.all([a.retrieveBatch(batch.id), b.retrieveBatch(batch.id)])
    expect(fromA.status).toBe('completed')
    expect(fromB).toEqual(fromA)
    const first = await download(a, fromA.outputFileId!)

    // Converting again from scratch gives the same bytes.
    const key = fromA.outputFileId!.slice('output-'.length)
    const headers = { authorization: `Bearer ${fake.token}` }
    for (const object of ['output.jsonl', 'manifest.json']) {
      await fetch(
        `${fake.gcsBaseURL}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(`batchkit/batches/${key}/${object}`)}`,
        {
          method: 'DELETE',
          headers,
        },
      )
    }
    const c = provider()
    expect(await c.retrieveBatch(batch.id)).toEqual(fromA)
    expect(await download(c, fromA.outputFileId!)).toEqual(first)
  })
})

describe('files of every kind', () => {
  it('deletes every object of an upload, and outputs, and says when there is nothing left', async () => {
    const p = provider()
    const { fileId, batch } = await uploadAndCreate(p)
    const done = (await untilEnded(p, batch.id)).at(-1)!
    expect(objectNames().filter((name) => name.includes(fileId))).toHaveLength(2)

    await p.deleteFile(fileId)
    expect(objectNames().filter((name) => name.includes(fileId))).toEqual([])
    const again = await rejection(p.deleteFile(fileId))
    expect(again.code).toBe('upstream_not_found')
    expect((await rejection(p.retrieveFile(fileId))).code).toBe('upstream_not_found')
    expect((await rejection(p.downloadFile(fileId))).code).toBe('upstream_not_found')

    await p.deleteFile(done.outputFileId!)
    expect(objectNames().some((name) => name.endsWith('/output.jsonl'))).toBe(false)
    for (const unknown of ['file-abc', 'input-xyz', `output-${'g'.repeat(32)}`]) {
      expect((await rejection(p.retrieveFile(unknown))).code).toBe('upstream_not_found')
      expect((await rejection(p.downloadFile(unknown))).code).toBe('upstream_not_found')
      expect((await rejection(p.deleteFile(unknown))).code).toBe('upstream_not_found')
    }
    expect((await rejection(p.retrieveBatch('projects/x/locations/y/other/1'))).code).toBe('upstream_not_found')
  })
})

describe('integrity', () => {
  const MISMATCH = /did not match its CRC32C checksum \(the bytes were damaged on the way\); try again\.$/

  it('sends each upload with its CRC32C, so GCS refuses bytes damaged on the way, and keeps nothing', async () => {
    const p = provider()
    fake.corruptNext('upload')
    const error = await rejection(p.uploadFile(uploadOf(pieces(JSONL.repeat(100), 4096))))
    expect(error.status).toBe(502)
    expect(error.code).toBe('upstream_checksum_mismatch')
    expect(error.message).toMatch(/^An upload to the vertex provider's storage /)
    expect(error.message).toMatch(MISMATCH)
    expect(objectNames()).toEqual([])

    const file = await p.uploadFile(uploadOf(pieces(JSONL)))
    expect(await download(p, file.id)).toEqual(Buffer.from(JSONL))
  })

  it('deletes and refuses an object whose CRC32C is not that of the bytes sent, on a store that does not check', async () => {
    await fake.close()
    fake = await startFakeGcp({ project: PROJECT, location: LOCATION, buckets: [BUCKET], verifyUploadHashes: false })
    fake.corruptNext('upload')
    const error = await rejection(provider().uploadFile(uploadOf(pieces(JSONL))))
    expect(error.code).toBe('upstream_checksum_mismatch')
    expect(objectNames()).toEqual([])
  })

  it('fails a download whose bytes do not match the CRC32C GCS sent, at its end, and the next one passes', async () => {
    const p = provider()
    const file = await p.uploadFile(uploadOf(pieces(JSONL)))
    fake.corruptNext('download')
    const error = await rejection(download(p, file.id))
    expect(error.code).toBe('upstream_checksum_mismatch')
    expect(error.message).toMatch(/^A download from the vertex provider's storage /)
    expect(error.message).toMatch(MISMATCH)
    expect(await download(p, file.id)).toEqual(Buffer.from(JSONL))
  })
})

describe('credentials', () => {
  it('asks a token function before every request, and never shows a token in an error', async () => {
    let calls = 0
    const p = provider({
      accessToken: async () => {
        calls++
        return fake.token
      },
    })
    await uploadAndCreate(p)
    expect(calls).toBeGreaterThan(3)

    const wrong = provider({ accessToken: async () => 'ya29.secret-token-value' })
    const error = await rejection(wrong.uploadFile(uploadOf(pieces(JSONL))))
    expect(error.status).toBe(502)
    expect(error.code).toBe('upstream_auth_failed')
    expect(JSON.stringify(error.toJSON())).not.toContain('secret-token')

    const broken = provider({
      accessToken: async () => {
        throw new Error('metadata server says no: ya29.leaked')
      },
    })
    const failed = await rejection(broken.retrieveBatch('projects/proj-1/locations/us-central1/batchPredictionJobs/1'))
    expect(failed.code).toBe('upstream_auth_failed')
    expect(failed.message).not.toContain('leaked')
  })

  it('gets tokens from google-auth-library with a credentialsFile', async () => {
    // An external-account credential: its token endpoint is configurable, so the exchange stays on loopback.
    const exchanges: string[] = []
    const sts: Server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        exchanges.push(body)
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            access_token: fake.token,
            issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
            token_type: 'Bearer',
            expires_in: 3600,
          }),
        )
      })
    })
    await new Promise<void>((resolve) => sts.listen(0, '127.0.0.1', resolve))
    const dir = await mkdtemp(join(tmpdir(), 'vertex-creds-'))
    try {
      const subject = join(dir, 'subject-token')
      await writeFile(subject, 'subject-token-value')
      const credentialsFile = join(dir, 'credentials.json')
      await writeFile(
        credentialsFile,
        JSON.stringify({
          type: 'external_account',
          audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q',
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          token_url: `http://127.0.0.1:${(sts.address() as AddressInfo).port}/v1/token`,
          credential_source: { file: subject },
        }),
      )
      const p = provider({ accessToken: undefined, credentialsFile })
      const file = await p.uploadFile(uploadOf(pieces(JSONL)))
      expect(await download(p, file.id)).toEqual(Buffer.from(JSONL))
      expect(exchanges.length).toBe(1) // cached by google-auth-library
      expect(exchanges[0]).toContain('cloud-platform')
    } finally {
      sts.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('explains that google-auth-library is needed when it is not installed', async () => {
    vi.resetModules()
    vi.doMock('google-auth-library', () => {
      throw new Error("Cannot find package 'google-auth-library'")
    })
    try {
      const fresh = await import('../src/providers/vertex/provider.js')
      const p = fresh.vertex({
        project: PROJECT,
        location: LOCATION,
        bucket: BUCKET,
        vertexEndpoint: fake.vertexBaseURL,
        gcsEndpoint: fake.gcsBaseURL,
      })
      providers.push(p)
      const error = await rejection(p.retrieveFile(`input-${'0'.repeat(32)}`))
      expect(error.code).toBe('provider_misconfigured')
      expect(error.message).toContain("optional package 'google-auth-library'")
    } finally {
      vi.doUnmock('google-auth-library')
      vi.resetModules()
    }
  })
})

describe('endpoints', () => {
  it('calls the regional and global Vertex hosts and the public GCS host by default, and only those', async () => {
    const agent = new MockAgent()
    agent.disableNetConnect()
    const job = (location: string) => ({
      name: `projects/${PROJECT}/locations/${location}/batchPredictionJobs/123`,
      state: 'JOB_STATE_RUNNING',
      createTime: '2025-01-01T00:00:00.123456Z',
      startTime: '2025-01-01T00:01:00Z',
    })
    agent
      .get('https://us-central1-aiplatform.googleapis.com')
      .intercept({ path: `/v1/projects/${PROJECT}/locations/us-central1/batchPredictionJobs/123`, method: 'GET' })
      .reply(200, job('us-central1'))
    agent
      .get('https://aiplatform.googleapis.com')
      .intercept({ path: `/v1/projects/${PROJECT}/locations/global/batchPredictionJobs/123`, method: 'GET' })
      .reply(200, job('global'))
    agent
      .get('https://storage.googleapis.com')
      .intercept({
        path: `/storage/v1/b/${BUCKET}/o/${encodeURIComponent(`batchkit/files/input-${'a'.repeat(32)}/original`)}`,
        method: 'GET',
      })
      .reply(200, {
        bucket: BUCKET,
        name: 'x',
        size: '5',
        timeCreated: '2025-01-01T00:00:00Z',
        metadata: { batchkit_filename: 'a.jsonl' },
      })

    const regional = vertex({
      project: PROJECT,
      location: 'us-central1',
      bucket: BUCKET,
      accessToken: 't',
      dispatcher: agent,
    })
    const global = vertex({ project: PROJECT, location: 'global', bucket: BUCKET, accessToken: 't', dispatcher: agent })
    expect(
      (await regional.retrieveBatch(`projects/${PROJECT}/locations/us-central1/batchPredictionJobs/123`)).status,
    ).toBe('in_progress')
    expect((await global.retrieveBatch('123')).inProgressAt).toBe(Date.UTC(2025, 0, 1, 0, 1) / 1000)
    expect(await global.retrieveFile(`input-${'a'.repeat(32)}`)).toMatchObject({ bytes: 5, filename: 'a.jsonl' })
    agent.assertNoPendingInterceptors()
    await agent.close()
  })

  it('sends every call to the configured endpoints', async () => {
    const p = provider()
    const { batch } = await uploadAndCreate(p)
    await untilEnded(p, batch.id)
    const services = new Set(fake.requests.map((request) => `${request.service} ${request.path.split('/')[1]}`))
    expect([...services].sort()).toEqual(['gcs storage', 'gcs upload', 'vertex v1'])
  })
})

describe('large uploads', () => {
  it('keeps the md5 of what it was sent', async () => {
    const p = provider()
    const text = JSONL.repeat(50)
    const file = await p.uploadFile(uploadOf(pieces(text, 3000)))
    const stored = fake.objects.get(`${BUCKET}/batchkit/files/${file.id}/original`)!
    expect(stored.md5Hash).toBe(createHash('md5').update(text).digest('base64'))
  })
})
