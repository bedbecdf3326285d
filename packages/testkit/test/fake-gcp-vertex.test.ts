import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeGcp, type FakeVertexJob, fakeGeminiText, fakeGeminiUsage, startFakeGcp } from '../src/index.js'

let fake: FakeGcp

beforeEach(async () => {
  fake = await startFakeGcp()
})

afterEach(async () => {
  await fake.close()
})

const PARENT = '/v1/projects/my-proj/locations/us-central1'
const MODEL = 'publishers/google/models/gemini-2.5-flash'
const auth = () => ({ authorization: `Bearer ${fake.token}` })

function vertex(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${fake.vertexBaseURL}${path}`, {
    ...init,
    headers: {
      ...auth(),
      'content-type': 'application/json; charset=utf-8',
      ...(init.headers as Record<string, string>),
    },
  })
}

/** A Vertex batch input line the way batchkit writes one: the custom id at the top level and in a label. */
interface InputLine {
  custom_id: string
  request: Record<string, unknown> & { labels: { batchkit_cid: string } }
}

interface Row {
  status: string
  processed_time: string
  custom_id?: string
  request: InputLine['request']
  response?: { candidates: Array<{ content: { parts: Array<{ text?: string }> } }> } & Record<string, unknown>
}

function inputLine(id: string, text: string, extra: Record<string, unknown> = {}): InputLine {
  return {
    custom_id: id,
    request: {
      contents: [{ role: 'user', parts: [{ text }] }],
      labels: { batchkit_cid: id.toLowerCase() },
      ...extra,
    },
  }
}

const LINES = [
  inputLine('r-1', 'Bonjour, ça va ?'),
  inputLine('r-2', '東京の天気は？', { generationConfig: { maxOutputTokens: 8 } }),
  inputLine('r-3', 'Emoji test 🚀🌍'),
  inputLine('r-4', 'Grüße', { systemInstruction: { parts: [{ text: 'Sei kurz.' }] } }),
  inputLine('r-5', 'plain'),
]

async function putInput(name: string, lines: readonly unknown[] = LINES): Promise<string> {
  const body = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`
  const res = await fetch(
    `${fake.gcsBaseURL}/upload/storage/v1/b/bkt/o?uploadType=media&name=${encodeURIComponent(name)}`,
    {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/jsonl' },
      body,
    },
  )
  expect(res.status).toBe(200)
  return `gs://bkt/${name}`
}

function jobBody(input: string, extra: Record<string, unknown> = {}) {
  return {
    displayName: 'batchkit-test',
    model: MODEL,
    inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: [input] } },
    outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt/out/job-1/' } },
    ...extra,
  }
}

async function createJob(body: unknown): Promise<FakeVertexJob> {
  const res = await vertex(`${PARENT}/batchPredictionJobs`, { method: 'POST', body: JSON.stringify(body) })
  expect(res.status).toBe(200)
  return (await res.json()) as FakeVertexJob
}

async function getJob(job: FakeVertexJob): Promise<FakeVertexJob> {
  const res = await vertex(`/v1/${job.name}`)
  expect(res.status).toBe(200)
  return (await res.json()) as FakeVertexJob
}

async function pollToEnd(job: FakeVertexJob): Promise<{ job: FakeVertexJob; seen: string[] }> {
  const seen: string[] = []
  for (let i = 0; i < 10; i++) {
    const current = await getJob(job)
    seen.push(current.state)
    if (!['JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING'].includes(current.state)) {
      return { job: current, seen }
    }
  }
  throw new Error(`job did not finish: ${seen.join(' -> ')}`)
}

/**
 * Lists and reads the files under the job's output directory: names, and each file's text. `'final'` reads
 * only `predictions.jsonl` (what consumers read); `'all'` every file, incremental chunks included.
 */
async function readOutput(
  job: FakeVertexJob,
  which: 'final' | 'all' = 'final',
): Promise<{ names: string[]; texts: string[] }> {
  const directory = job.outputInfo!.gcsOutputDirectory
  const prefix = directory.replace('gs://bkt/', '')
  const list = (await (
    await fetch(`${fake.gcsBaseURL}/storage/v1/b/bkt/o?prefix=${encodeURIComponent(`${prefix}/`)}`, { headers: auth() })
  ).json()) as { items: Array<{ name: string }> }
  const names = list.items
    .map((item) => item.name)
    .filter((name) => which === 'all' || name === `${prefix}/predictions.jsonl`)
  const texts: string[] = []
  for (const name of names) {
    const res = await fetch(`${fake.gcsBaseURL}/storage/v1/b/bkt/o/${encodeURIComponent(name)}?alt=media`, {
      headers: auth(),
    })
    texts.push(Buffer.from(await res.arrayBuffer()).toString('utf8'))
  }
  return { names, texts }
}

const rowsOf = (texts: string[]) =>
  texts
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Row)

describe('job lifecycle', () => {
  it('creates a PENDING job that advances PENDING → RUNNING → SUCCEEDED, one step per poll', async () => {
    const input = await putInput('in/a.jsonl')
    const created = await createJob(jobBody(input, { labels: { mw_owner: 'batchkit' } }))
    expect(created.name).toMatch(/^projects\/my-proj\/locations\/us-central1\/batchPredictionJobs\/\d{19}$/)
    expect(created).toEqual({
      name: created.name,
      displayName: 'batchkit-test',
      model: MODEL,
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: [input] } },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt/out/job-1/' } },
      labels: { mw_owner: 'batchkit' },
      state: 'JOB_STATE_PENDING',
      createTime: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
      updateTime: expect.any(String),
    })

    const running = await getJob(created)
    expect(running.state).toBe('JOB_STATE_RUNNING')
    expect(running.startTime).toBeDefined()
    expect(running.completionStats).toEqual({ incompleteCount: '5' })
    expect(running.outputInfo).toBeUndefined()

    const done = await getJob(created)
    expect(done.state).toBe('JOB_STATE_SUCCEEDED')
    expect(done.completionStats).toEqual({ successfulCount: '5' })
    expect(done.endTime).toBeDefined()
    expect(done.outputInfo?.gcsOutputDirectory).toMatch(
      /^gs:\/\/bkt\/out\/job-1\/prediction-model-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/,
    )
    expect(fake.jobs.get(created.name.split('/').pop()!)?.state).toBe('JOB_STATE_SUCCEEDED')
    // Terminal jobs stay put.
    expect((await getJob(created)).state).toBe('JOB_STATE_SUCCEEDED')
  })

  it('writes predictions.jsonl and incremental chunks of the same rows, out of order, with multibyte answers and deterministic usage', async () => {
    const input = await putInput('in/b.jsonl')
    const { job } = await pollToEnd(await createJob(jobBody(input)))
    const all = await readOutput(job, 'all')
    const directory = job.outputInfo!.gcsOutputDirectory.replace('gs://bkt/', '')
    expect(directory).toMatch(/^out\/job-1\/prediction-model-\d{4}-\d\d-\d\dT[\d:.]+Z$/)
    expect(all.names).toEqual([
      `${directory}/incremental_predictions/predictions_1.jsonl`,
      `${directory}/incremental_predictions/predictions_2.jsonl`,
      `${directory}/predictions.jsonl`,
    ])
    const { texts } = await readOutput(job)
    const rows = rowsOf(texts)
    // The chunks hold the same rows as the final file: reading everything would read each twice.
    expect(rowsOf(all.texts.slice(0, 2)).map((row) => JSON.stringify(row))).toEqual(
      rows.map((row) => JSON.stringify(row)),
    )
    expect(rows).toHaveLength(5)
    // Not the input order, but every input line once.
    const order = rows.map((row) => row.request.labels.batchkit_cid)
    expect(order).not.toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5'])
    expect([...order].sort()).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5'])

    for (const row of rows) {
      const line = LINES.find((candidate) => candidate.request.labels.batchkit_cid === row.request.labels.batchkit_cid)!
      expect(Object.keys(row)).toEqual(['status', 'processed_time', 'request', 'response'])
      expect(row.status).toBe('')
      expect(row.request).toEqual(line.request)
      // Without instanceConfig.excludedFields, the top-level custom_id is not attached.
      expect(row.custom_id).toBeUndefined()
      expect(row.response).toEqual({
        candidates: [
          {
            content: { role: 'model', parts: [{ text: fakeGeminiText(line.request) }] },
            finishReason: line.request.generationConfig ? 'MAX_TOKENS' : 'STOP',
            avgLogprobs: -0.25,
          },
        ],
        createTime: expect.stringMatching(/Z$/),
        modelVersion: 'gemini-2.5-flash',
        responseId: expect.stringMatching(/^[\w-]{22}$/),
        usageMetadata: fakeGeminiUsage(line.request, MODEL),
      })
    }
    const tokyo = rows.find((row) => row.request.labels.batchkit_cid === 'r-2')!
    expect(tokyo.response?.candidates[0]?.content.parts[0]?.text).toBe('Réponse simulée — 模拟回答 🌍: 東京の天気は？')
    // The files are valid UTF-8 throughout.
    for (const text of texts) expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text)
  })

  it('attaches the fields listed in instanceConfig.excludedFields for a custom model, as documented', async () => {
    const input = await putInput('in/c.jsonl')
    const instanceConfig = { excludedFields: ['custom_id'], instanceType: 'object' }
    const tuned = await pollToEnd(
      await createJob(jobBody(input, { model: 'projects/my-proj/locations/us-central1/models/42', instanceConfig })),
    )
    const rows = rowsOf((await readOutput(tuned.job)).texts)
    expect(rows.map((row) => row.custom_id).sort()).toEqual(['r-1', 'r-2', 'r-3', 'r-4', 'r-5'])
    for (const row of rows) expect(row.custom_id).toBe(row.request.labels.batchkit_cid)
    // Not for a publisher (Gemini) model: only the request, labels included, comes back.
    const gemini = await pollToEnd(await createJob(jobBody(input, { instanceConfig })))
    for (const row of rowsOf((await readOutput(gemini.job)).texts)) expect(row.custom_id).toBeUndefined()
  })

  it('answers a forced function call with a functionCall part', async () => {
    const line = inputLine('fn', 'weather?', {
      tools: [{ functionDeclarations: [{ name: 'get_weather' }, { name: 'get_time' }] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } },
    })
    const input = await putInput('in/fn.jsonl', [line])
    const { job } = await pollToEnd(await createJob(jobBody(input)))
    const { texts } = await readOutput(job)
    expect(rowsOf(texts)[0]?.response?.candidates[0]?.content.parts).toEqual([
      { functionCall: { name: 'get_time', args: {} } },
    ])
  })

  it('ends PARTIALLY_SUCCEEDED with an error row when asked', async () => {
    fake.nextJob({ state: 'JOB_STATE_PARTIALLY_SUCCEEDED', failLines: [2, 4] })
    const input = await putInput('in/d.jsonl')
    const { job } = await pollToEnd(await createJob(jobBody(input)))
    expect(job.state).toBe('JOB_STATE_PARTIALLY_SUCCEEDED')
    expect(job.completionStats).toEqual({ successfulCount: '3', failedCount: '2' })
    const rows = rowsOf((await readOutput(job)).texts)
    const failed = rows.filter((row) => row.status !== '')
    expect(failed.map((row) => row.request.labels.batchkit_cid).sort()).toEqual(['r-2', 'r-4'])
    for (const row of failed) {
      expect(row.response).toBeUndefined()
      const status = JSON.parse(row.status.replace(/^Bad Request: /, ''))
      expect(status).toEqual({
        error: { code: 400, message: expect.stringContaining('失败'), status: 'INVALID_ARGUMENT' },
      })
    }
  })

  it('writes an error row for a line that is not a request', async () => {
    const input = await putInput('in/e.jsonl', [LINES[0], { nope: true }])
    const { job } = await pollToEnd(await createJob(jobBody(input)))
    expect(job.completionStats).toEqual({ successfulCount: '1', failedCount: '1' })
  })

  it('fails a job as asked, with error and no output', async () => {
    fake.nextJob({ state: 'JOB_STATE_FAILED', error: { code: 8, message: 'Quota exhausted.' } })
    const input = await putInput('in/f.jsonl')
    const { job, seen } = await pollToEnd(await createJob(jobBody(input)))
    expect(seen).toEqual(['JOB_STATE_RUNNING', 'JOB_STATE_FAILED'])
    expect(job.error).toEqual({ code: 8, message: 'Quota exhausted.' })
    expect(job.outputInfo).toBeUndefined()
    expect(job.endTime).toBeDefined()
  })

  it('fails a job whose input does not exist', async () => {
    const { job } = await pollToEnd(await createJob(jobBody('gs://bkt/in/missing.jsonl')))
    expect(job.state).toBe('JOB_STATE_FAILED')
    expect(job.error).toEqual({
      code: 3,
      message: 'Failed to read the input file gs://bkt/in/missing.jsonl: No such object.',
    })
  })

  it('expires a job as asked', async () => {
    fake.nextJob({ state: 'JOB_STATE_EXPIRED' })
    const input = await putInput('in/g.jsonl')
    const { job, seen } = await pollToEnd(await createJob(jobBody(input)))
    expect(seen).toEqual(['JOB_STATE_EXPIRED'])
    expect(job.startTime).toBeUndefined()
    expect(job.endTime).toBeDefined()
  })

  it('keeps running when its input is deleted', async () => {
    const input = await putInput('in/h.jsonl')
    const created = await createJob(jobBody(input))
    await getJob(created) // RUNNING: the input is pinned
    await fetch(`${fake.gcsBaseURL}/storage/v1/b/bkt/o/${encodeURIComponent('in/h.jsonl')}`, {
      method: 'DELETE',
      headers: auth(),
    })
    expect((await getJob(created)).completionStats).toEqual({ successfulCount: '5' })
  })
})

describe('cancel', () => {
  it('answers {} and ends CANCELLED with the rows done so far', async () => {
    const input = await putInput('in/cancel.jsonl')
    const created = await createJob(jobBody(input))
    await getJob(created) // RUNNING
    const res = await vertex(`/v1/${created.name}:cancel`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({})
    expect(fake.jobs.get(created.name.split('/').pop()!)?.state).toBe('JOB_STATE_CANCELLING')
    const { job, seen } = await pollToEnd(created)
    expect(seen).toEqual(['JOB_STATE_CANCELLED'])
    expect(job.completionStats).toEqual({ successfulCount: '3', incompleteCount: '2' })
    expect(job.error).toEqual({ code: 1, message: 'CANCELED' })
    expect(rowsOf((await readOutput(job)).texts)).toHaveLength(3)
  })

  it('cancels a pending job without output', async () => {
    const created = await createJob(jobBody(await putInput('in/cancel2.jsonl')))
    expect((await vertex(`/v1/${created.name}:cancel`, { method: 'POST' })).status).toBe(200)
    const { job } = await pollToEnd(created)
    expect(job.state).toBe('JOB_STATE_CANCELLED')
    expect(job.outputInfo).toBeUndefined()
  })

  it('refuses to cancel a finished job', async () => {
    const { job } = await pollToEnd(await createJob(jobBody(await putInput('in/cancel3.jsonl'))))
    const res = await vertex(`/v1/${job.name}:cancel`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({
      error: { code: 400, message: expect.stringContaining('cannot be cancelled'), status: 'FAILED_PRECONDITION' },
    })
  })
})

describe('create validation', () => {
  const input = 'gs://bkt/in/x.jsonl'
  it.each([
    ['no displayName', { displayName: undefined }, /display_name/],
    ['a bare model id', { model: 'gemini-2.5-flash' }, /Invalid model/],
    ['uris as a string', { inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: input } } }, /gcs_source\.uris/],
    [
      'an https input',
      { inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['https://x/y'] } } },
      /gcs_source\.uris/,
    ],
    ['a bigquery input', { inputConfig: { instancesFormat: 'bigquery' } }, /instancesFormat/],
    ['no output config', { outputConfig: undefined }, /output_config/],
    [
      'an output prefix that is not gs://',
      { outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: '/tmp/out' } } },
      /output_uri_prefix/,
    ],
    ['an unknown field', { completionWindow: '24h' }, /Unknown name "completionWindow"/],
    ['labels with capitals', { labels: { Owner: 'x' } }, /Label "Owner"/],
    ['label values too long', { labels: { owner: 'x'.repeat(64) } }, /Label "owner"/],
  ])('refuses %s with 400 INVALID_ARGUMENT', async (_name, override, message) => {
    const res = await vertex(`${PARENT}/batchPredictionJobs`, {
      method: 'POST',
      body: JSON.stringify(jobBody(input, override)),
    })
    expect(res.status).toBe(400)
    const body = (await res.json()) as { error: { code: number; message: string; status: string } }
    expect(body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' })
    expect(body.error.message).toMatch(message)
  })

  it('answers a publisher model whose id has a slash with 404, as for any unknown model', async () => {
    const res = await vertex(`${PARENT}/batchPredictionJobs`, {
      method: 'POST',
      body: JSON.stringify(jobBody(input, { model: 'publishers/google/models/google/gemini-2.5-flash' })),
    })
    expect(res.status).toBe(404)
    const body = (await res.json()) as { error: { message: string; status: string } }
    expect(body.error).toMatchObject({ status: 'NOT_FOUND', message: expect.stringMatching(/^Publisher Model /) })
  })

  it('accepts the other model spellings and a bucket-only prefix', async () => {
    for (const model of [
      'projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro',
      'projects/my-proj/locations/us-central1/models/1234567890',
    ]) {
      expect(await createJob(jobBody(input, { model }))).toMatchObject({ model, state: 'JOB_STATE_PENDING' })
    }
    // A job writing to the bucket's root runs, its predictions in a directory at the top of the bucket.
    const atRoot = await createJob(
      jobBody(await putInput('in/root.jsonl'), {
        outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt' } },
      }),
    )
    const { job } = await pollToEnd(atRoot)
    expect(job.state).toBe('JOB_STATE_SUCCEEDED')
    expect(job.outputInfo?.gcsOutputDirectory).toMatch(/^gs:\/\/bkt\/prediction-model-[^/]+$/)
    expect(rowsOf((await readOutput(job)).texts)).toHaveLength(LINES.length)
  })

  it('refuses unparseable JSON', async () => {
    const res = await vertex(`${PARENT}/batchPredictionJobs`, { method: 'POST', body: '{oops' })
    expect(res.status).toBe(400)
  })
})

describe('get, list, delete and routing', () => {
  it('lists jobs of a parent, newest first, with filters and pages', async () => {
    const input = await putInput('in/list.jsonl')
    const a = await createJob(jobBody(input, { displayName: 'a', labels: { owner: 'alice' } }))
    const b = await createJob(jobBody(input, { displayName: 'b', labels: { owner: 'bob' } }))
    const c = await createJob(jobBody(input, { displayName: 'c', labels: { owner: 'alice' } }))
    await pollToEnd(a)
    await vertex(`/v1/projects/my-proj/locations/europe-west4/batchPredictionJobs`, {
      method: 'POST',
      body: JSON.stringify(jobBody(input)),
    })

    const list = async (query: string) =>
      (await (await vertex(`${PARENT}/batchPredictionJobs${query}`)).json()) as {
        batchPredictionJobs?: FakeVertexJob[]
        nextPageToken?: string
      }
    expect((await list('')).batchPredictionJobs?.map((job) => job.displayName)).toEqual(['c', 'b', 'a'])
    expect(
      (await list(`?filter=${encodeURIComponent('labels.owner="alice"')}`)).batchPredictionJobs?.map((job) => job.name),
    ).toEqual([c.name, a.name])
    expect(
      (
        await list(`?filter=${encodeURIComponent('labels.owner=alice AND state="JOB_STATE_SUCCEEDED"')}`)
      ).batchPredictionJobs?.map((job) => job.name),
    ).toEqual([a.name])
    expect((await list(`?filter=${encodeURIComponent('state!=JOB_STATE_PENDING')}`)).batchPredictionJobs).toHaveLength(
      1,
    )
    expect(await list(`?filter=${encodeURIComponent('labels.nobody:*')}`)).toEqual({})

    const first = await list('?pageSize=2')
    expect(first.batchPredictionJobs?.map((job) => job.displayName)).toEqual(['c', 'b'])
    const second = await list(`?pageSize=2&pageToken=${first.nextPageToken}`)
    expect(second).toEqual({ batchPredictionJobs: [expect.objectContaining({ displayName: 'a' })] })

    expect((await vertex(`${PARENT}/batchPredictionJobs?filter=${encodeURIComponent('createTime>1')}`)).status).toBe(
      400,
    )
    expect(b.name).not.toBe(c.name)
  })

  it('finds a job only under the project and location that created it', async () => {
    const job = await createJob(jobBody('gs://bkt/in/x.jsonl'))
    const id = job.name.split('/').pop()
    const elsewhere = await vertex(`/v1/projects/my-proj/locations/europe-west4/batchPredictionJobs/${id}`)
    expect(elsewhere.status).toBe(404)
    expect(((await elsewhere.json()) as { error: { status: string } }).error.status).toBe('NOT_FOUND')
    expect((await vertex(`${PARENT}/batchPredictionJobs/1234`)).status).toBe(404)
  })

  it('works in the global location and answers other projects 404 when pinned', async () => {
    const pinned = await startFakeGcp({ project: 'p1', location: 'global' })
    try {
      const call = (path: string) =>
        fetch(`${pinned.vertexBaseURL}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${pinned.token}` },
          body: JSON.stringify(jobBody('gs://bkt/in/x.jsonl')),
        })
      expect((await call('/v1/projects/p1/locations/global/batchPredictionJobs')).status).toBe(200)
      expect((await call('/v1/projects/p2/locations/global/batchPredictionJobs')).status).toBe(404)
      expect((await call('/v1/projects/p1/locations/us-central1/batchPredictionJobs')).status).toBe(404)
    } finally {
      await pinned.close()
    }
  })

  it('deletes finished jobs only', async () => {
    const job = await createJob(jobBody(await putInput('in/del.jsonl')))
    expect((await vertex(`/v1/${job.name}`, { method: 'DELETE' })).status).toBe(400)
    await pollToEnd(job)
    const res = await vertex(`/v1/${job.name}`, { method: 'DELETE' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ done: true })
    expect((await vertex(`/v1/${job.name}`)).status).toBe(404)
  })

  it('forces any state for tests', async () => {
    const job = await createJob(jobBody('gs://bkt/in/x.jsonl'))
    const id = job.name.split('/').pop()!
    for (const state of [
      'JOB_STATE_QUEUED',
      'JOB_STATE_PAUSED',
      'JOB_STATE_UPDATING',
      'JOB_STATE_UNSPECIFIED',
    ] as const) {
      fake.setJobState(id, state)
      expect(fake.jobs.get(id)?.state).toBe(state)
    }
    fake.setJobState(id, 'JOB_STATE_EXPIRED')
    expect(fake.jobs.get(id)?.endTime).toBeDefined()
  })

  it('requires the bearer token and serves Vertex paths on the Vertex port only', async () => {
    const missing = await fetch(`${fake.vertexBaseURL}${PARENT}/batchPredictionJobs`)
    expect(missing.status).toBe(401)
    expect(await missing.json()).toEqual({
      error: {
        code: 401,
        message: expect.stringMatching(/^Request is missing required authentication credential/),
        status: 'UNAUTHENTICATED',
      },
    })
    const wrong = await fetch(`${fake.vertexBaseURL}${PARENT}/batchPredictionJobs`, {
      headers: { authorization: 'Bearer x' },
    })
    expect(wrong.status).toBe(401)
    expect((await fetch(`${fake.gcsBaseURL}${PARENT}/batchPredictionJobs`, { headers: auth() })).status).toBe(404)
  })

  it('advances on a timer when asked', async () => {
    const timed = await startFakeGcp({ progress: 10 })
    try {
      const headers = { authorization: `Bearer ${timed.token}` }
      await fetch(`${timed.gcsBaseURL}/upload/storage/v1/b/bkt/o?uploadType=media&name=in.jsonl`, {
        method: 'POST',
        headers,
        body: `${JSON.stringify(LINES[0])}\n`,
      })
      const res = await fetch(`${timed.vertexBaseURL}${PARENT}/batchPredictionJobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify(jobBody('gs://bkt/in.jsonl')),
      })
      const job = (await res.json()) as FakeVertexJob
      const id = job.name.split('/').pop()!
      for (let i = 0; i < 100 && timed.jobs.get(id)?.state !== 'JOB_STATE_SUCCEEDED'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      expect(timed.jobs.get(id)?.state).toBe('JOB_STATE_SUCCEEDED')
    } finally {
      await timed.close()
    }
  })
})

describe('fakeGeminiUsage', () => {
  it('follows its documented rules', () => {
    const request = {
      contents: [{ role: 'user', parts: [{ text: 'x'.repeat(100) }] }],
      generationConfig: { maxOutputTokens: 200, candidateCount: 2 },
    }
    const prompt = Math.ceil(Buffer.byteLength(JSON.stringify({ contents: request.contents })) / 4)
    expect(fakeGeminiUsage(request, 'publishers/google/models/gemini-2.5-pro')).toEqual({
      promptTokenCount: prompt,
      candidatesTokenCount: 128,
      thoughtsTokenCount: 32,
      cachedContentTokenCount: Math.floor(prompt / 2),
      totalTokenCount: prompt + 128 + 32,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
      candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: 128 }],
      trafficType: 'ON_DEMAND',
    })
    const small = fakeGeminiUsage({ contents: [] }, 'publishers/google/models/gemini-2.5-flash')
    // '{"contents":[]}' is 15 bytes: 4 tokens; below 8, nothing cached.
    expect(small).toEqual({
      promptTokenCount: 4,
      candidatesTokenCount: 16,
      totalTokenCount: 20,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: 4 }],
      candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: 16 }],
      trafficType: 'ON_DEMAND',
    })
  })
})

describe('prediction files', () => {
  it.each([
    ['final', ['predictions.jsonl']],
    ['incremental', ['incremental_predictions/predictions_1.jsonl', 'incremental_predictions/predictions_2.jsonl']],
  ] as const)('writes only the %s files when told to', async (output, files) => {
    fake.nextJob({ output })
    const { job } = await pollToEnd(await createJob(jobBody(await putInput('in/out.jsonl'))))
    const directory = job.outputInfo!.gcsOutputDirectory.replace('gs://bkt/', '')
    const all = await readOutput(job, 'all')
    expect(all.names).toEqual(files.map((name) => `${directory}/${name}`))
    expect(rowsOf(all.texts)).toHaveLength(5)
  })

  it('ends candidates with the finish reasons asked, without content when the response was blocked', async () => {
    fake.nextJob({ finishReasons: { 2: 'MODEL_ARMOR' } })
    const { job } = await pollToEnd(await createJob(jobBody(await putInput('in/armor.jsonl'))))
    const rows = rowsOf((await readOutput(job)).texts)
    const blocked = rows.find((row) => row.request.labels.batchkit_cid === 'r-2')!
    expect(blocked.status).toBe('')
    expect(blocked.response?.candidates).toEqual([{ finishReason: 'MODEL_ARMOR', avgLogprobs: -0.25 }])
  })
})

describe('requests Vertex refuses row by row', () => {
  /** The error message of each row of a one-line job on `model`. */
  async function refusal(request: Record<string, unknown>, model = MODEL): Promise<string | undefined> {
    const line = { custom_id: 'x', request: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], ...request } }
    const { job } = await pollToEnd(await createJob(jobBody(await putInput('in/refuse.jsonl', [line]), { model })))
    const [row] = rowsOf((await readOutput(job)).texts)
    return row?.status === '' ? undefined : JSON.parse(row!.status.replace(/^Bad Request: /, '')).error.message
  }
  const tools = (name: string) => ({ tools: [{ functionDeclarations: [{ name }] }] })

  it('refuses function names outside tool.proto’s rule', async () => {
    for (const name of ['_ok', 'get.weather-v2', 'a'.repeat(64)]) expect(await refusal(tools(name))).toBeUndefined()
    for (const name of ['1st', 'has space', 'a'.repeat(65), '']) {
      expect(await refusal(tools(name))).toMatch(/function_declarations\[0\]\.name: Invalid function name/)
    }
  })

  it('refuses a seed outside int32', async () => {
    expect(await refusal({ generationConfig: { seed: 2 ** 31 - 1 } })).toBeUndefined()
    expect(await refusal({ generationConfig: { seed: 2 ** 31 } })).toMatch(/generation_config\.seed' \(TYPE_INT32\)/)
  })

  it('refuses JSON Schema keywords responseJsonSchema does not support', async () => {
    const config = (schema: unknown) => ({
      generationConfig: { responseMimeType: 'application/json', responseJsonSchema: schema },
    })
    const supported = {
      type: 'object',
      properties: { a: { type: 'string', enum: ['x', 'y'] }, b: { anyOf: [{ type: 'integer' }, { type: 'null' }] } },
      required: ['a'],
      additionalProperties: false,
      propertyOrdering: ['a', 'b'],
    }
    expect(await refusal(config(supported))).toBeUndefined()
    expect(await refusal(config({ type: 'object', properties: { a: { type: 'string', pattern: '^x' } } }))).toMatch(
      /\.properties\.a: the keyword 'pattern'/,
    )
    expect(await refusal(config({ $ref: '#/$defs/a', description: 'd', $defs: { a: { type: 'string' } } }))).toMatch(
      /\$ref/,
    )
  })

  it('refuses penalties on Gemini 2.5 and later, takes them on 2.0', async () => {
    const penalty = { generationConfig: { presencePenalty: 0.5 } }
    expect(await refusal(penalty)).toBe('Penalty is not enabled for models/gemini-2.5-flash')
    expect(
      await refusal({ generationConfig: { frequencyPenalty: 0 } }, 'publishers/google/models/gemini-3-pro-preview'),
    ).toMatch(/^Penalty is not enabled/)
    expect(await refusal(penalty, 'publishers/google/models/gemini-2.0-flash-001')).toBeUndefined()
  })

  it('signs Gemini 3 function calls, and refuses a call of the current turn sent back without its signature', async () => {
    const GEMINI_3 = 'publishers/google/models/gemini-3-pro-preview'
    const forced = {
      ...tools('get_weather'),
      toolConfig: { functionCallingConfig: { mode: 'ANY' } },
    }
    const line = { custom_id: 'x', request: { contents: [{ role: 'user', parts: [{ text: 'weather?' }] }], ...forced } }
    const { job } = await pollToEnd(
      await createJob(jobBody(await putInput('in/sig.jsonl', [line]), { model: GEMINI_3 })),
    )
    const parts = rowsOf((await readOutput(job)).texts)[0]!.response!.candidates[0]!.content.parts
    const part = parts[0] as Record<string, unknown>
    expect(part).toEqual({ functionCall: { name: 'get_weather', args: {} }, thoughtSignature: expect.any(String) })

    const turn = (call: Record<string, unknown>) => ({
      ...tools('get_weather'),
      contents: [
        { role: 'user', parts: [{ text: 'weather?' }] },
        { role: 'model', parts: [call] },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { output: 'sunny' } } }] },
      ],
    })
    expect(await refusal(turn(part), GEMINI_3)).toBeUndefined()
    expect(await refusal(turn({ functionCall: part.functionCall }), GEMINI_3)).toMatch(
      /^Function call is missing a thought_signature/,
    )
    expect(await refusal(turn({ ...part, thoughtSignature: 'bm90IGEgc2lnbmF0dXJl' }), GEMINI_3)).toBe(
      'Corrupted thought signature.',
    )
    // Gemini 2.5 does not check; and only the current turn is checked.
    expect(await refusal(turn({ functionCall: part.functionCall }))).toBeUndefined()
    const earlier = turn({ functionCall: part.functionCall })
    earlier.contents.push({ role: 'model', parts: [{ text: 'Sunny.' }] }, { role: 'user', parts: [{ text: 'thanks' }] })
    expect(await refusal(earlier, GEMINI_3)).toBeUndefined()
  })
})
