import OpenAI, { AzureOpenAI, toFile } from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AZURE_EXPIRY_RANGE, type FakeAzure, startFakeAzure } from '../src/index.js'
import { chatLine, schemas, toJsonl } from './helpers.js'

let fake: FakeAzure
beforeEach(async () => {
  fake = await startFakeAzure()
})
afterEach(() => fake?.close())

const VERSION = '2024-10-21'
const DAY = 24 * 60 * 60

/** The SDK's own Azure client on the dated API. */
function azureClient(options: Partial<ConstructorParameters<typeof AzureOpenAI>[0]> = {}): AzureOpenAI {
  return new AzureOpenAI({
    endpoint: fake.endpoint,
    apiKey: fake.apiKey,
    apiVersion: VERSION,
    maxRetries: 0,
    ...options,
  })
}

/** The plain OpenAI client on the v1 API, as Azure's docs show it. */
function v1Client(): OpenAI {
  return new OpenAI({ baseURL: fake.v1BaseURL, apiKey: fake.apiKey, maxRetries: 0 })
}

async function raw(
  path: string,
  init: RequestInit & { auth?: 'key' | 'token' | 'none' } = {},
): Promise<{ status: number; body: { error?: Record<string, unknown> } & Record<string, unknown>; headers: Headers }> {
  const headers = new Headers(init.headers)
  if ((init.auth ?? 'key') === 'key') headers.set('api-key', fake.apiKey)
  if (init.auth === 'token') headers.set('authorization', `Bearer ${fake.token}`)
  const res = await fetch(`${fake.endpoint}${path}`, { ...init, headers })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers }
}

const LINES = [chatLine('a', 'one'), chatLine('b', 'two'), chatLine('c', 'three')]

async function uploadAndProcess(client: OpenAI, content = toJsonl(LINES)) {
  const file = await client.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' })
  // Pending for the first retrieve, then processed.
  await client.files.retrieve(file.id)
  return file
}

async function pollToEnd(client: OpenAI, id: string) {
  const seen: string[] = []
  for (let i = 0; i < 20; i++) {
    const batch = await client.batches.retrieve(id)
    seen.push(batch.status)
    if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) return { batch, seen }
  }
  throw new Error(`no end: ${seen.join(' -> ')}`)
}

describe('URL shapes and api-version', () => {
  it('serves the dated API to the SDK’s AzureOpenAI client, api-version on every call', async () => {
    const client = azureClient()
    const file = await client.files.create({
      file: await toFile(Buffer.from(toJsonl(LINES)), 'in.jsonl'),
      purpose: 'batch',
    })
    expect(file.status).toBe('pending')
    expect((await client.files.retrieve(file.id)).status).toBe('pending')
    expect((await client.files.retrieve(file.id)).status).toBe('processed')
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const { batch: done, seen } = await pollToEnd(client, batch.id)
    expect(seen).toEqual(['in_progress', 'finalizing', 'completed'])
    schemas.assert('Batch', done)
    expect(fake.requests.every((r) => r.path.startsWith('/openai/') && r.apiVersion === VERSION)).toBe(true)
    expect(fake.requests.every((r) => !r.path.startsWith('/openai/v1/'))).toBe(true)
  })

  it('answers a dated upload 201 with Location, and a v1 upload 200', async () => {
    const form = () => {
      const data = new FormData()
      data.set('purpose', 'batch')
      data.set('file', new Blob([toJsonl(LINES)]), 'in.jsonl')
      return data
    }
    const dated = await raw(`/openai/files?api-version=${VERSION}`, { method: 'POST', body: form() })
    expect(dated.status).toBe(201)
    expect(dated.headers.get('location')).toBe(`${fake.endpoint}/openai/files/${dated.body.id}?api-version=${VERSION}`)
    expect(dated.body).toMatchObject({ object: 'file', purpose: 'batch', status: 'pending', status_details: null })
    const v1 = await raw('/openai/v1/files', { method: 'POST', body: form() })
    expect(v1.status).toBe(200)
    expect(v1.headers.get('location')).toBeNull()
  })

  it('serves the v1 API to the plain OpenAI client, with no api-version', async () => {
    const client = v1Client()
    const file = await uploadAndProcess(client)
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect((await pollToEnd(client, batch.id)).batch.status).toBe('completed')
    expect(fake.requests.every((r) => r.path.startsWith('/openai/v1/') && r.apiVersion === null)).toBe(true)
    // The plain client sends the key as a bearer token, which the v1 API takes.
    expect(fake.requests.every((r) => r.auth === 'bearer')).toBe(true)
  })

  it('takes batch creates on /openai/deployments/{deployment}/batches, as AzureOpenAI({ deployment }) sends them', async () => {
    const file = await uploadAndProcess(azureClient())
    const client = azureClient({ deployment: 'gpt-4o-mini' })
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(fake.requests.at(-1)?.path).toBe('/openai/deployments/gpt-4o-mini/batches')
    expect(batch.status).toBe('validating')
  })

  it.each([
    ['missing', '/openai/files', 400, 'BadRequest', "Missing required query parameter 'api-version'."],
    ['empty', '/openai/files?api-version=', 400, 'BadRequest', "Missing required query parameter 'api-version'."],
    ['unknown', '/openai/files?api-version=2023-01-01', 400, 'BadRequest', 'API version not supported'],
    ['dated on v1', '/openai/v1/files?api-version=2024-10-21', 400, 'BadRequest', 'API version not supported'],
  ])('answers a %s api-version with Azure’s 400', async (_label, path, status, code, message) => {
    const res = await raw(path)
    expect(res.status).toBe(status)
    expect(res.body).toEqual({ error: { code, message } })
    expect(res.headers.get('content-type')).toBe('application/json')
  })

  it('accepts v1’s own api-version values and every configured dated one', async () => {
    expect((await raw('/openai/v1/files?api-version=preview')).status).toBe(200)
    for (const version of ['2024-10-21', '2025-04-01-preview']) {
      expect((await raw(`/openai/files?api-version=${version}`)).status).toBe(200)
    }
  })

  it('answers paths outside the API with Azure’s 404', async () => {
    for (const path of ['/v1/files', '/openai/models?api-version=2024-10-21', '/openai/v1/nothing']) {
      const res = await raw(path)
      expect(res.status).toBe(404)
      expect(res.body).toEqual({ error: { code: '404', message: 'Resource not found' } })
    }
  })
})

describe('authentication', () => {
  const denied = {
    error: {
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    },
  }

  it('takes the api-key header or an Entra ID bearer token', async () => {
    expect((await raw(`/openai/files?api-version=${VERSION}`, { auth: 'key' })).status).toBe(200)
    expect((await raw(`/openai/files?api-version=${VERSION}`, { auth: 'token' })).status).toBe(200)
    expect((await raw('/openai/v1/files', { auth: 'token' })).status).toBe(200)
    expect(fake.requests.map((r) => r.auth)).toEqual(['api-key', 'bearer', 'bearer'])
  })

  it('answers no credential or a wrong key with Azure’s 401 body', async () => {
    const none = await raw(`/openai/files?api-version=${VERSION}`, { auth: 'none' })
    expect(none.status).toBe(401)
    expect(none.body).toEqual(denied)
    const wrong = await raw(`/openai/files?api-version=${VERSION}`, { auth: 'none', headers: { 'api-key': 'nope' } })
    expect(wrong.status).toBe(401)
    expect(wrong.body).toEqual(denied)
  })

  it('answers a wrong token (or the key as a bearer on the dated API) with the token 401', async () => {
    for (const token of ['not-a-token', fake.apiKey]) {
      const res = await raw(`/openai/files?api-version=${VERSION}`, {
        auth: 'none',
        headers: { authorization: `Bearer ${token}` },
      })
      expect(res.status).toBe(401)
      expect(res.body.error?.code).toBe('401')
      expect(res.body.error?.message).toMatch(/^Unauthorized\. Access token is missing, invalid/)
    }
  })

  it('works with the SDK’s azureADTokenProvider', async () => {
    const client = new AzureOpenAI({
      endpoint: fake.endpoint,
      apiVersion: VERSION,
      azureADTokenProvider: async () => fake.token,
      maxRetries: 0,
    })
    const file = await client.files.create({
      file: await toFile(Buffer.from(toJsonl(LINES)), 'in.jsonl'),
      purpose: 'batch',
    })
    expect(file.bytes).toBe(Buffer.byteLength(toJsonl(LINES)))
    const upload = fake.requests.find((r) => r.method === 'POST')
    expect(upload?.auth).toBe('bearer')
    expect(upload?.contentType).toMatch(/^multipart\/form-data; boundary=/)
  })
})

describe('files', () => {
  it('keeps a file pending for the configured number of polls, and refuses batches on it meanwhile', async () => {
    await fake.close()
    fake = await startFakeAzure({ pendingPolls: 2 })
    const client = azureClient()
    const file = await client.files.create({
      file: await toFile(Buffer.from(toJsonl(LINES)), 'in.jsonl'),
      purpose: 'batch',
    })
    const refused = await raw(`/openai/batches?api-version=${VERSION}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
    })
    expect(refused.status).toBe(400)
    expect(refused.body.error).toEqual({
      code: 'invalidPayload',
      message: `The input file '${file.id}' is in 'pending' state. Only files with status 'Processed' are accepted for batch inferencing.`,
      param: 'input_file_id',
    })
    expect(fake.fileStatus(file.id)).toBe('pending')
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await client.files.retrieve(file.id)).status)
    expect(statuses).toEqual(['pending', 'pending', 'processed'])
    expect(fake.fileStatus(file.id)).toBe('processed')
  })

  it('ends a file in error when told to', async () => {
    fake.failProcessing()
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const after = await client.files.retrieve(file.id)
    expect(after.status).toBe('error')
    expect(after.status_details).toMatch(/could not be imported/)
    const ok = await uploadAndProcess(client)
    expect((await client.files.retrieve(ok.id)).status).toBe('processed')
  })

  it('takes expires_after in the dot form on the v1 API and from 2025-03-01-preview, and drops it on the GA version', async () => {
    const upload = (path: string, seconds: number, purpose = 'batch') => {
      const data = new FormData()
      data.set('file', new Blob([toJsonl(LINES)]), 'in.jsonl')
      data.set('purpose', purpose)
      data.set('expires_after.anchor', 'created_at')
      data.set('expires_after.seconds', String(seconds))
      return raw(path, { method: 'POST', body: data })
    }
    const lifetime = (body: Record<string, unknown>) =>
      body.expires_at === null ? null : (body.expires_at as number) - (body.created_at as number)
    expect(lifetime((await upload('/openai/v1/files', 3 * DAY)).body)).toBe(3 * DAY)
    expect(lifetime((await upload('/openai/files?api-version=2025-03-01-preview', 14 * DAY)).body)).toBe(14 * DAY)
    const ga = await upload(`/openai/files?api-version=${VERSION}`, 14 * DAY)
    expect(ga.status).toBe(201)
    expect(ga.body.expires_at).toBeNull()
    const tooLong = await upload('/openai/v1/files', 31 * DAY)
    expect(tooLong.status).toBe(400)
    expect(tooLong.body.error).toMatchObject({ code: 'invalidPayload', param: 'expires_after.seconds' })
  })

  it('applies the documented 14 to 30 days when told to', async () => {
    await fake.close()
    fake = await startFakeAzure({ expiryRange: AZURE_EXPIRY_RANGE })
    const data = new FormData()
    data.set('file', new Blob([toJsonl(LINES)]), 'in.jsonl')
    data.set('purpose', 'batch')
    data.set('expires_after.anchor', 'created_at')
    data.set('expires_after.seconds', String(3 * DAY))
    const short = await raw('/openai/v1/files', { method: 'POST', body: data })
    expect(short.status).toBe(400)
    expect(short.body.error).toMatchObject({ code: 'invalidPayload', param: 'expires_after.seconds' })
  })

  it('keeps at most maxFilesWithoutExpiry files that never expire, batch output included, then answers quotaExceeded', async () => {
    await fake.close()
    fake = await startFakeAzure({ maxFilesWithoutExpiry: 3, pendingPolls: 0 })
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    await pollToEnd(client, batch.id)
    // The input, the output and the (empty) error file: three files without an expiry.
    expect([...fake.files.values()].map((f) => f.expires_at)).toEqual([null, null, null])
    const refused = await raw(`/openai/files?api-version=${VERSION}`, {
      method: 'POST',
      body: (() => {
        const data = new FormData()
        data.set('file', new Blob([toJsonl(LINES)]), 'in.jsonl')
        data.set('purpose', 'batch')
        return data
      })(),
    })
    expect(refused.status).toBe(400)
    expect(refused.body.error).toMatchObject({ code: 'quotaExceeded' })
    expect(fake.files.size).toBe(3)
    // Files that expire still go in.
    const expiring = await v1Client().files.create({
      file: await toFile(Buffer.from(toJsonl(LINES)), 'in.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: DAY },
    })
    expect(expiring.expires_at).toEqual(expect.any(Number))
  })

  it('lists, downloads and deletes files with Azure’s File objects', async () => {
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const list = await client.files.list()
    expect(list.data.map((f) => f.id)).toEqual([file.id])
    expect(list.data[0]?.status).toBe('processed')
    expect(await (await client.files.content(file.id)).text()).toBe(toJsonl(LINES))
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true })
    const gone = await raw(`/openai/files/${file.id}?api-version=${VERSION}`)
    expect(gone.status).toBe(404)
    expect(gone.body.error).toMatchObject({ code: 'notFound', param: 'id' })
  })
})

describe('batches', () => {
  async function run(lines: unknown[], endpoint = '/v1/chat/completions', client: OpenAI = azureClient()) {
    const file = await uploadAndProcess(client, toJsonl(lines))
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: endpoint as '/v1/chat/completions',
      completion_window: '24h',
    })
    return { client, ...(await pollToEnd(client, batch.id)) }
  }

  it('always creates an error file, empty when nothing failed', async () => {
    const { client, batch } = await run(LINES)
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect(batch.output_file_id).toEqual(expect.any(String))
    expect(batch.error_file_id).toEqual(expect.any(String))
    const errorFile = await client.files.retrieve(batch.error_file_id as string)
    expect(errorFile.bytes).toBe(0)
    expect(await (await client.files.content(batch.error_file_id as string)).text()).toBe('')
  })

  it('writes failed lines into the error file', async () => {
    const { client, batch } = await run([chatLine('a', 'x'), chatLine('fail-b', 'y')])
    expect(batch.request_counts).toEqual({ total: 2, completed: 1, failed: 1 })
    const errors = (await (await client.files.content(batch.error_file_id as string)).text()).trim().split('\n')
    expect(errors.map((line) => JSON.parse(line).custom_id)).toEqual(['fail-b'])
  })

  it('takes the deployment name as body.model, and fails a batch naming an unknown one with model_not_found', async () => {
    const { batch } = await run([chatLine('a', 'x', { model: 'gpt-35-standard' })])
    expect(batch.status).toBe('failed')
    expect(batch.errors?.data).toEqual([
      {
        code: 'model_not_found',
        message: expect.stringContaining("'gpt-35-standard' does not exist"),
        param: 'body.model',
        line: null,
      },
    ])
    expect(batch.output_file_id).toBeNull()
  })

  it('uses the configured deployments', async () => {
    await fake.close()
    fake = await startFakeAzure({ deployments: ['my-global-batch'] })
    expect((await run([chatLine('a', 'x', { model: 'my-global-batch' })])).batch.status).toBe('completed')
    expect((await run([chatLine('a', 'x')])).batch.errors?.data?.[0]?.code).toBe('model_not_found')
  })

  it('fails mixed deployments with model_mismatch, and other urls with url_mismatch', async () => {
    const mixed = await run([chatLine('a', 'x'), chatLine('b', 'y', { model: 'gpt-4o' })])
    expect(mixed.batch.errors?.data?.map((e) => [e.code, e.line])).toEqual([['model_mismatch', 2]])
    const url = await run([{ ...chatLine('a', 'x'), url: '/v1/embeddings' }])
    expect(url.batch.errors?.data?.map((e) => e.code)).toEqual(['url_mismatch'])
  })

  it('accepts urls and endpoints without /v1', async () => {
    const line = { ...chatLine('a', 'x'), url: '/chat/completions' }
    const { batch, client } = await run([line], '/chat/completions')
    expect(batch.status).toBe('completed')
    const output = JSON.parse((await (await client.files.content(batch.output_file_id as string)).text()).trim())
    expect(output.response.body.object).toBe('chat.completion')
  })

  it('fails more requests than the limit with too_many_tasks', async () => {
    await fake.close()
    fake = await startFakeAzure({ maxRequestsPerFile: 2 })
    const { batch } = await run(LINES)
    expect(batch.errors?.data?.map((e) => e.code)).toEqual(['too_many_tasks'])
  })

  it('refuses endpoints Azure does not batch; takes output_expires_after where the version knows it', async () => {
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const create = (body: Record<string, unknown>, version = VERSION) =>
      raw(`/openai/batches?api-version=${version}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          ...body,
        }),
      })
    const endpoint = await create({ endpoint: '/v1/moderations' })
    expect(endpoint.status).toBe(400)
    expect(endpoint.body.error).toMatchObject({ code: 'invalidPayload', param: 'endpoint' })
    const month = { anchor: 'created_at', seconds: 31 * DAY }
    // The GA version drops the field unread; 2025-03-01-preview checks it.
    expect((await create({ output_expires_after: month })).status).toBe(200)
    const checked = await create({ output_expires_after: month }, '2025-03-01-preview')
    expect(checked.body.error).toMatchObject({ code: 'invalidPayload', param: 'output_expires_after.seconds' })
    const ok = await create({ output_expires_after: { anchor: 'created_at', seconds: 3 * DAY } }, '2025-03-01-preview')
    expect(ok.status).toBe(200)
    const { batch } = await pollToEnd(client, ok.body.id as string)
    const output = fake.files.get(batch.output_file_id as string)
    expect((output?.expires_at as number) - (output?.created_at as number)).toBe(3 * DAY)
  })

  it('runs models newer than the GA version only on the v1 API or a newer preview', async () => {
    await fake.close()
    fake = await startFakeAzure({ deployments: [{ name: 'o3', model: 'o3-mini' }] })
    const lines = [chatLine('a', 'x', { model: 'o3' })]
    const ga = await run(lines)
    expect(ga.batch.status).toBe('failed')
    expect(ga.batch.errors?.data?.[0]).toMatchObject({ code: 'invalid_request', param: 'body.model' })
    const preview = await run(lines, '/v1/chat/completions', azureClient({ apiVersion: '2025-04-01-preview' }))
    expect(preview.batch.status).toBe('completed')
    expect((await run(lines, '/v1/chat/completions', v1Client())).batch.status).toBe('completed')
  })

  it('cancels, and refuses to cancel a finished batch with a 409 conflict', async () => {
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect((await client.batches.cancel(batch.id)).status).toBe('cancelling')
    expect((await client.batches.retrieve(batch.id)).status).toBe('cancelled')
    const done = (await run(LINES)).batch
    const refused = await raw(`/openai/batches/${done.id}/cancel?api-version=${VERSION}`, { method: 'POST' })
    expect(refused.status).toBe(409)
    expect(refused.body).toEqual({
      error: { code: 'conflict', message: "Cannot cancel a batch with status 'completed'." },
    })
  })

  it('writes legacy objects: ISO-8601 timestamps, PascalCase statuses, endpoint null', async () => {
    fake.objectStyle = 'legacy'
    const client = azureClient()
    const file = await uploadAndProcess(client)
    expect((await client.files.retrieve(file.id)).created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/)
    const created = (await raw(`/openai/batches?api-version=${VERSION}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
    })) as { body: Record<string, unknown> }
    expect(created.body).toMatchObject({
      status: 'Validating',
      endpoint: null,
      request_counts: { total: null, completed: null, failed: null },
      in_progress_at: null,
    })
    expect(created.body.created_at).toMatch(/Z$/)
    const next = await raw(`/openai/batches/${created.body.id}?api-version=${VERSION}`)
    expect(next.body.status).toBe('InProgress')
    fake.objectStyle = 'current'
    expect((await raw(`/openai/batches/${created.body.id}?api-version=${VERSION}`)).body.status).toBe('finalizing')
  })

  it('writes legacy errors as the GA spec types them: data one object, line a string', async () => {
    const { client, batch: failed } = await run([chatLine('a', 'x'), chatLine('b', 'y', { model: 'gpt-4o' })])
    fake.objectStyle = 'legacy'
    const batch = await client.batches.retrieve(failed.id)
    expect(batch.status).toBe('Failed')
    expect(batch.errors).toEqual({
      object: 'list',
      data: { code: 'model_mismatch', message: expect.any(String), param: 'body.model', line: '2' },
    })
  })

  it('lists batches newest first', async () => {
    const client = azureClient()
    const file = await uploadAndProcess(client)
    const create = () =>
      client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    const first = await create()
    const second = await create()
    expect((await client.batches.list()).data.map((b) => b.id)).toEqual([second.id, first.id])
  })
})

describe('failure injection', () => {
  it.each([
    [400, 'invalidPayload', undefined],
    [401, '401', undefined],
    [403, 'PermissionDenied', undefined],
    [404, '404', undefined],
    [408, 'Timeout', undefined],
    [409, 'conflict', undefined],
    [429, '429', '1'],
    [500, 'internalFailure', undefined],
    [502, 'BadGateway', undefined],
    [503, 'serviceUnavailable', '2'],
    [504, 'GatewayTimeout', undefined],
  ])('answers an injected %i with Azure’s body (code %s)', async (status, code, retryAfter) => {
    fake.failNext({ status })
    const res = await raw(`/openai/files?api-version=${VERSION}`)
    expect(res.status).toBe(status)
    expect(res.body.error?.code).toBe(code)
    expect(typeof res.body.error?.message).toBe('string')
    expect(res.headers.get('retry-after')).toBe(retryAfter ?? null)
    expect((await raw(`/openai/files?api-version=${VERSION}`)).status).toBe(200)
  })

  it('injects a chosen code and message, matched by method and path prefix', async () => {
    fake.failNext({
      status: 400,
      code: 'unexpectedEntityState',
      message: 'Nope.',
      method: 'post',
      pathPrefix: '/openai/batches',
    })
    expect((await raw(`/openai/batches?api-version=${VERSION}`)).status).toBe(200)
    const res = await raw(`/openai/batches?api-version=${VERSION}`, { method: 'POST' })
    expect(res.body).toEqual({ error: { code: 'unexpectedEntityState', message: 'Nope.' } })
  })

  it('injects failures before authentication, and hangs and resets', async () => {
    fake.failNext({ status: 503 })
    expect((await raw('/openai/files', { auth: 'none' })).status).toBe(503)
    fake.failNext({ status: 'reset' })
    await expect(raw(`/openai/files?api-version=${VERSION}`)).rejects.toThrow()
    fake.failNext({ status: 'hang' })
    await expect(raw(`/openai/files?api-version=${VERSION}`, { signal: AbortSignal.timeout(200) })).rejects.toThrow()
  })
})
