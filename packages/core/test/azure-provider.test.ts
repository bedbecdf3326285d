import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { AZURE_EXPIRY_RANGE, type FakeAzure, fakeUsage, startFakeAzure } from '@batchkit/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiError, isApiError } from '../src/errors.js'
import {
  AZURE_DATED_API_VERSION,
  AZURE_LIMITS,
  type AzureProviderOptions,
  azure,
} from '../src/providers/azure/index.js'
import type { Provider, ProviderBatch, ProviderUpload } from '../src/providers/types.js'
import type { ExpiresAfter, UploadPurpose } from '../src/types.js'

const VERSION = AZURE_DATED_API_VERSION
const GA_VERSION = '2024-10-21'
const DAY = 24 * 60 * 60

const line = (customId: string, model = 'gpt-4o-mini') =>
  `${JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: `hello ${customId}` }] },
  })}\n`
const JSONL = line('a') + line('b') + line('c')

let fake: FakeAzure
let dataDir: string
let providers: Provider[] = []

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'azure-provider-'))
  fake = await startFakeAzure({ dataDir })
})
afterEach(async () => {
  await Promise.all(providers.map((p) => p.close?.()))
  providers = []
  await fake?.close()
  await rm(dataDir, { recursive: true, force: true })
})

type Auth = 'apiKey' | 'token'

/** An Azure provider on the fake, with quick processing checks; `tokens` counts the token provider's calls. */
function provider(options: Partial<AzureProviderOptions> & { auth?: Auth } = {}, tokens = { calls: 0 }): Provider {
  const { auth = 'apiKey', ...rest } = options
  const credential: Partial<AzureProviderOptions> =
    auth === 'apiKey'
      ? { apiKey: fake.apiKey }
      : {
          azureADTokenProvider: async () => {
            tokens.calls++
            await sleep(5)
            return fake.token
          },
        }
  const created = azure({
    endpoint: fake.endpoint,
    fileProcessing: { initialDelayMs: 5, maxDelayMs: 20, timeoutMs: 5_000 },
    ...credential,
    ...rest,
  })
  providers.push(created)
  return created
}

function upload(
  body: Readable | string,
  options: { purpose?: UploadPurpose; expiresAfter?: ExpiresAfter | null; signal?: AbortSignal } = {},
): ProviderUpload {
  return {
    body: typeof body === 'string' ? Readable.from([Buffer.from(body)]) : body,
    filename: 'requests.jsonl',
    tag: `file-${randomUUID()}`,
    purpose: Promise.resolve(options.purpose ?? 'batch'),
    expiresAfter: Promise.resolve(options.expiresAfter ?? null),
    signal: options.signal ?? new AbortController().signal,
  }
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  if (!isApiError(error)) throw error
  return error
}

async function text(stream: Readable): Promise<string> {
  let out = ''
  for await (const chunk of stream) out += chunk
  return out
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled'])

async function runToEnd(p: Provider, id: string): Promise<{ batch: ProviderBatch; seen: string[] }> {
  const seen: string[] = []
  for (let i = 0; i < 20; i++) {
    const batch = await p.retrieveBatch(id)
    seen.push(batch.status)
    if (TERMINAL.has(batch.status)) return { batch, seen }
  }
  throw new Error(`batch ${id} did not end: ${seen.join(' -> ')}`)
}

async function uploaded(p: Provider, content = JSONL): Promise<string> {
  return (await p.uploadFile(upload(content))).id
}

const createRequest = (inputFileId: string) =>
  ({
    inputFileId,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
    metadata: null,
    outputExpiresAfter: null,
    tag: `batch_${randomUUID().replaceAll('-', '')}`,
  }) as const

/** A body that sends its second half only once the fake has written the first to disk: no buffering possible. */
async function* heldBack(first: string, second: string): AsyncGenerator<Buffer> {
  yield Buffer.from(first)
  const deadline = Date.now() + 5_000
  for (;;) {
    const parts = (await readdir(dataDir)).filter((name) => name.endsWith('.part'))
    const sizes = await Promise.all(
      parts.map((name) =>
        stat(join(dataDir, name)).then(
          (s) => s.size,
          () => 0,
        ),
      ),
    )
    // The multipart parser may hold back a boundary's worth of bytes.
    if (sizes.some((size) => size >= Buffer.byteLength(first) - 128)) break
    if (Date.now() > deadline) throw new Error('the first half never reached the upstream: the upload was buffered')
    await sleep(5)
  }
  yield Buffer.from(second)
}

describe.each([
  { api: 'dated', auth: 'apiKey' },
  { api: 'dated', auth: 'token' },
  { api: 'v1', auth: 'apiKey' },
  { api: 'v1', auth: 'token' },
] as const)('azure() on the $api API with $auth', ({ api, auth }) => {
  const options = { api, auth } as const

  it('streams an upload with its boundary, waits until Azure has processed it, and returns it', async () => {
    const first = line('first').repeat(800)
    const second = line('second')
    const tokens = { calls: 0 }
    const p = provider(options, tokens)
    const file = await p.uploadFile(upload(Readable.from(heldBack(first, second))))

    expect(file).toEqual({
      id: expect.stringMatching(/^file-/),
      bytes: Buffer.byteLength(first + second),
      createdAt: expect.any(Number),
      expiresAt: file.createdAt + 30 * DAY,
      filename: 'requests.jsonl',
    })
    expect(fake.fileStatus(file.id)).toBe('processed')
    const calls = fake.requests.map((r) => `${r.method} ${r.path}`)
    const prefix = api === 'dated' ? '/openai' : '/openai/v1'
    expect(calls).toEqual([
      `POST ${prefix}/files`,
      `GET ${prefix}/files/${file.id}`, // pending
      `GET ${prefix}/files/${file.id}`, // processed
    ])
    const post = fake.requests[0]
    expect(post?.contentType).toMatch(/^multipart\/form-data; boundary=batchkit-[0-9a-f]{32}$/)
    for (const request of fake.requests) {
      expect(request.auth).toBe(auth === 'apiKey' ? 'api-key' : 'bearer')
      expect(request.apiVersion).toBe(api === 'dated' ? VERSION : null)
    }
    if (auth === 'token') expect(tokens.calls).toBe(fake.requests.length)
    const download = await p.downloadFile(file.id)
    expect(await text(download.body)).toBe(first + second)
  })

  it('runs a batch: create, retrieve to completion, output content; the empty error file is not reported', async () => {
    const p = provider(options)
    const created = await p.createBatch(createRequest(await uploaded(p)))
    expect(created).toMatchObject({ status: 'validating', outputFileId: null, errorFileId: null })
    const { batch, seen } = await runToEnd(p, created.id)
    expect(seen).toEqual(['in_progress', 'finalizing', 'completed'])
    expect(batch.requestCounts).toEqual({ total: 3, completed: 3, failed: 0 })
    // The fake's published usage formula, summed over the three requests.
    const usages = JSONL.trim()
      .split('\n')
      .map((l) => fakeUsage(JSON.parse(l)))
    const sum = (of: (u: (typeof usages)[number]) => number) => usages.reduce((total, u) => total + of(u), 0)
    expect(batch.usage).toMatchObject({
      inputTokens: sum((u) => u.prompt_tokens),
      outputTokens: sum((u) => u.completion_tokens),
      totalTokens: sum((u) => u.total_tokens),
    })
    expect(batch.completedAt).toEqual(expect.any(Number))
    // Azure made an empty error file; OpenAI would have none.
    expect(fake.batches.get(created.id)?.error_file_id).toEqual(expect.any(String))
    expect(batch.errorFileId).toBeNull()
    const output = await text((await p.downloadFile(batch.outputFileId as string)).body)
    expect(
      output
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id),
    ).toEqual(['a', 'b', 'c'])
  })

  it('reports an error file that has lines', async () => {
    const p = provider(options)
    const created = await p.createBatch(createRequest(await uploaded(p, line('a') + line('fail-b'))))
    const { batch } = await runToEnd(p, created.id)
    expect(batch.requestCounts).toEqual({ total: 2, completed: 1, failed: 1 })
    expect(batch.errorFileId).toEqual(expect.any(String))
    const errors = await text((await p.downloadFile(batch.errorFileId as string)).body)
    expect(JSON.parse(errors.trim()).custom_id).toBe('fail-b')
  })

  it('cancels a batch', async () => {
    const p = provider(options)
    const created = await p.createBatch(createRequest(await uploaded(p)))
    expect((await p.cancelBatch(created.id)).status).toBe('cancelling')
    const { batch } = await runToEnd(p, created.id)
    expect(batch.status).toBe('cancelled')
    expect(batch.cancelledAt).toEqual(expect.any(Number))
  })

  it('retrieves and deletes a file', async () => {
    const p = provider(options)
    const id = await uploaded(p)
    expect(await p.retrieveFile(id)).toMatchObject({ id, bytes: Buffer.byteLength(JSONL) })
    await p.deleteFile(id)
    expect(fake.files.has(id)).toBe(false)
  })

  it('surfaces a batch naming an unknown deployment as failed with model_not_found', async () => {
    const p = provider(options)
    const created = await p.createBatch(createRequest(await uploaded(p, line('a', 'gpt-35-standard'))))
    const { batch } = await runToEnd(p, created.id)
    expect(batch.status).toBe('failed')
    expect(batch.errors).toEqual([
      { code: 'model_not_found', message: expect.stringContaining('gpt-35-standard'), param: 'body.model', line: null },
    ])
    expect(batch.errorFileId).toBeNull()
  })
})

describe('a token provider keeps the multipart boundary (peers lose it with Entra ID tokens)', () => {
  it('sends one multipart body, boundary in the header, that the upstream parses whole', async () => {
    const p = provider({ auth: 'token' })
    const content = JSONL.repeat(50)
    const file = await p.uploadFile(upload(content))
    const post = fake.requests.find((r) => r.method === 'POST')
    expect(post).toMatchObject({ auth: 'bearer', contentType: expect.stringMatching(/; boundary=batchkit-/) })
    expect(fake.files.get(file.id)?.bytes).toBe(Buffer.byteLength(content))
    expect(await text((await p.downloadFile(file.id)).body)).toBe(content)
  })

  it('never sends both credentials', async () => {
    const seen: Array<Record<string, unknown>> = []
    const server = createServer((req, res) => {
      seen.push({ ...req.headers })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: 'b1', status: 'validating' }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const withKey = azure({ endpoint, apiKey: 'k' })
      const withToken = azure({ endpoint, azureADTokenProvider: async () => 't' })
      await withKey.retrieveBatch('b1')
      await withToken.retrieveBatch('b1')
      await Promise.all([withKey.close?.(), withToken.close?.()])
    } finally {
      server.closeAllConnections()
      server.close()
    }
    expect(seen[0]).toMatchObject({ 'api-key': 'k' })
    expect(seen[0]).not.toHaveProperty('authorization')
    expect(seen[1]).toMatchObject({ authorization: 'Bearer t' })
    expect(seen[1]).not.toHaveProperty('api-key')
  })
})

describe('processing after upload', () => {
  it('polls with backoff while Azure keeps the file pending', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, pendingPolls: 3 })
    const p = provider()
    const id = await uploaded(p)
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith(id))).toHaveLength(4)
    expect(fake.fileStatus(id)).toBe('processed')
  })

  it('answers a file Azure could not process with 400 file_processing_failed, and deletes it upstream', async () => {
    fake.failProcessing()
    const error = await rejection(provider().uploadFile(upload(JSONL)))
    expect(error).toMatchObject({ status: 400, code: 'file_processing_failed', param: 'file' })
    expect(error.headers['x-should-retry']).toBe('false')
    expect(fake.files.size).toBe(0)
    expect(fake.requests.at(-1)?.method).toBe('DELETE')
  })

  it('gives up after fileProcessing.timeoutMs with 504, and deletes the file upstream', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, pendingPolls: 1_000 })
    const p = provider({ fileProcessing: { initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 100 } })
    const error = await rejection(p.uploadFile(upload(JSONL)))
    expect(error).toMatchObject({ status: 504, code: 'upstream_timeout' })
    expect(error.message).toMatch(/processing/)
    expect(fake.files.size).toBe(0)
  })

  it('stops waiting when the upload is aborted, and deletes the file upstream', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, pendingPolls: 1_000 })
    const aborter = new AbortController()
    const p = provider({ fileProcessing: { initialDelayMs: 20, maxDelayMs: 20 } })
    const pending = p.uploadFile(upload(JSONL, { signal: aborter.signal }))
    while (!fake.requests.some((r) => r.method === 'GET')) await sleep(5)
    aborter.abort(new Error('client gone'))
    await expect(pending).rejects.toThrow('client gone')
    expect(fake.files.size).toBe(0)
  })

  it('reads the file id from Location when a 201 comes without a body', async () => {
    const calls: string[] = []
    const server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`)
      if (req.method === 'POST') {
        req.resume()
        req.on('end', () => {
          res.writeHead(201, { location: `http://${req.headers.host}/openai/files/file-xyz?api-version=${VERSION}` })
          res.end()
        })
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ id: 'file-xyz', bytes: 5, created_at: 1_700_000_000, filename: 'f', status: 'processed' }),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const p = azure({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        apiKey: 'k',
        api: 'dated',
      })
      providers.push(p)
      expect(await p.uploadFile(upload('{"a":1}\n'))).toMatchObject({ id: 'file-xyz', bytes: 5 })
    } finally {
      server.closeAllConnections()
      server.close()
    }
    expect(calls).toEqual([
      `POST /openai/files?api-version=${VERSION}`,
      `GET /openai/files/file-xyz?api-version=${VERSION}`,
    ])
  })
})

describe('expiry: nothing batchkit creates on Azure lives forever', () => {
  const output = (batchId: string) => fake.files.get(fake.batches.get(batchId)?.output_file_id as string)

  it.each(['v1', 'dated'] as const)(
    'on the %s API, gives uploads and batch output 30 days when the client asks for nothing',
    async (api) => {
      const p = provider({ api })
      const file = await p.uploadFile(upload(JSONL))
      expect((file.expiresAt as number) - file.createdAt).toBe(30 * DAY)
      expect(fake.files.get(file.id)?.expires_at).toBe(file.expiresAt)
      const created = await p.createBatch(createRequest(file.id))
      await runToEnd(p, created.id)
      const out = output(created.id)
      expect((out?.expires_at as number) - (out?.created_at as number)).toBe(30 * DAY)
    },
  )

  it('passes what the client asked, such as 3 days, unclamped', async () => {
    const p = provider()
    const threeDays = { anchor: 'created_at', seconds: 3 * DAY } as const
    const file = await p.uploadFile(upload(JSONL, { expiresAfter: threeDays }))
    expect((file.expiresAt as number) - file.createdAt).toBe(3 * DAY)
    const created = await p.createBatch({ ...createRequest(file.id), outputExpiresAfter: threeDays })
    await runToEnd(p, created.id)
    const out = output(created.id)
    expect((out?.expires_at as number) - (out?.created_at as number)).toBe(3 * DAY)
  })

  it('takes its default from defaultExpirySeconds, for every purpose', async () => {
    const file = await provider({ defaultExpirySeconds: 7 * DAY }).uploadFile(upload('hello', { purpose: 'user_data' }))
    expect((file.expiresAt as number) - file.createdAt).toBe(7 * DAY)
  })

  it('answers an expiry Azure refuses with 400 invalid_value naming the parameter, and keeps nothing', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, expiryRange: AZURE_EXPIRY_RANGE })
    const p = provider()
    const error = await rejection(
      p.uploadFile(upload(JSONL, { expiresAfter: { anchor: 'created_at', seconds: 3 * DAY } })),
    )
    expect(error).toMatchObject({ status: 400, code: 'invalid_value', param: 'expires_after.seconds' })
    expect(error.headers['x-should-retry']).toBe('false')
    expect(fake.files.size).toBe(0)

    const id = await uploaded(p)
    const batchError = await rejection(
      p.createBatch({ ...createRequest(id), outputExpiresAfter: { anchor: 'created_at', seconds: 3 * DAY } }),
    )
    expect(batchError).toMatchObject({ status: 400, code: 'invalid_value', param: 'output_expires_after.seconds' })
    expect(fake.batches.size).toBe(0)
  })

  it('on the GA api-version, Azure drops the expiry: files never expire (why it is not the default)', async () => {
    const p = provider({ apiVersion: GA_VERSION })
    const file = await p.uploadFile(upload(JSONL, { expiresAfter: { anchor: 'created_at', seconds: 20 * DAY } }))
    expect(file.expiresAt).toBeNull()
    const created = await p.createBatch(createRequest(file.id))
    await runToEnd(p, created.id)
    expect(output(created.id)?.expires_at).toBeNull()
  })

  it('answers Azure’s file quota with 429 upstream_quota_exceeded, not a bare 502', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, maxFilesWithoutExpiry: 1 })
    const p = provider({ apiVersion: GA_VERSION })
    await uploaded(p)
    const error = await rejection(p.uploadFile(upload(JSONL)))
    expect(error).toMatchObject({ status: 429, code: 'upstream_quota_exceeded', type: 'insufficient_quota' })
    expect(error.headers['x-should-retry']).toBe('false')
    expect(error.message).not.toMatch(/Quota exceeded\./)
    expect(fake.files.size).toBe(1)
    // The default surface sets an expiry, so the same resource keeps taking uploads.
    await uploaded(provider())
    await uploaded(provider())
    expect(fake.files.size).toBe(3)
  })
})

describe('models: newer ones need the v1 API (or a newer preview)', () => {
  const o3 = line('a', 'o3-mini-batch')

  beforeEach(async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, deployments: [{ name: 'o3-mini-batch', model: 'o3-mini' }] })
  })

  it('runs an o3-mini deployment on the default API', async () => {
    const p = provider()
    const created = await p.createBatch(createRequest(await uploaded(p, o3)))
    expect((await runToEnd(p, created.id)).batch).toMatchObject({
      status: 'completed',
      requestCounts: { completed: 1 },
    })
  })

  it('would see it fail on the GA api-version', async () => {
    const p = provider({ apiVersion: GA_VERSION })
    const created = await p.createBatch(createRequest(await uploaded(p, o3)))
    const { batch } = await runToEnd(p, created.id)
    expect(batch.status).toBe('failed')
    expect(batch.errors?.[0]).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('o3-mini') })
  })
})

describe('legacy Azure objects are normalised', () => {
  it('turns ISO-8601 timestamps into seconds and PascalCase statuses into OpenAI’s', async () => {
    fake.objectStyle = 'legacy'
    const p = provider()
    const before = Math.floor(Date.now() / 1000) - 1
    const file = await p.uploadFile(upload(JSONL))
    expect(file.createdAt).toBeGreaterThanOrEqual(before)
    expect(Number.isInteger(file.createdAt)).toBe(true)
    const created = await p.createBatch(createRequest(file.id))
    expect(created).toMatchObject({ status: 'validating', requestCounts: { total: 0, completed: 0, failed: 0 } })
    expect(Number.isInteger(created.expiresAt)).toBe(true)
    const { batch, seen } = await runToEnd(p, created.id)
    expect(seen).toEqual(['in_progress', 'finalizing', 'completed'])
    for (const at of [batch.inProgressAt, batch.finalizingAt, batch.completedAt]) {
      expect(at).toBeGreaterThanOrEqual(before)
      expect(Number.isInteger(at)).toBe(true)
    }
    expect(batch.errorFileId).toBeNull()
  })

  it('reads errors.data as one object with line a string, as the GA spec types it', async () => {
    fake.objectStyle = 'legacy'
    const p = provider()
    const created = await p.createBatch(createRequest(await uploaded(p, line('a') + line('b', 'gpt-4o'))))
    const { batch } = await runToEnd(p, created.id)
    expect(batch.status).toBe('failed')
    expect(batch.errors).toEqual([
      { code: 'model_mismatch', message: expect.any(String), param: 'body.model', line: 2 },
    ])
  })
})

describe('errors: every Azure error the fake produces maps to a documented status', () => {
  /** [what the fake answers, status, code, retry-after] */
  const table: Array<
    [string, { status: number | 'hang' | 'reset'; code?: string; message?: string }, number, string, string?]
  > = [
    ['400 invalidPayload', { status: 400 }, 502, 'upstream_rejected'],
    ['422 unprocessable', { status: 422 }, 502, 'upstream_rejected'],
    ['400 quotaExceeded', { status: 400, code: 'quotaExceeded' }, 429, 'upstream_quota_exceeded'],
    ['400 unexpectedEntityState', { status: 400, code: 'unexpectedEntityState' }, 409, 'unexpected_entity_state'],
    [
      '400 file not processed',
      {
        status: 400,
        message: "The input file 'file-1' is in 'pending' state. Only files with status 'Processed' are accepted.",
      },
      503,
      'upstream_unavailable',
      '5',
    ],
    ['401 (key or token)', { status: 401 }, 502, 'upstream_auth_failed'],
    ['403 PermissionDenied', { status: 403 }, 502, 'upstream_auth_failed'],
    ['404 Resource not found', { status: 404 }, 502, 'upstream_not_found'],
    ['404 notFound', { status: 404, code: 'notFound' }, 502, 'upstream_not_found'],
    ['408 Timeout', { status: 408 }, 504, 'upstream_timeout'],
    ['409 conflict', { status: 409 }, 409, 'conflict'],
    ['429 (rate limit)', { status: 429 }, 503, 'upstream_rate_limited', '1'],
    ['429 tooManyRequests', { status: 429, code: 'tooManyRequests' }, 503, 'upstream_rate_limited', '1'],
    ['500 internalFailure', { status: 500 }, 502, 'upstream_error'],
    ['502 BadGateway', { status: 502 }, 502, 'upstream_error'],
    ['503 serviceUnavailable', { status: 503 }, 503, 'upstream_unavailable', '2'],
    ['504 GatewayTimeout', { status: 504 }, 504, 'upstream_timeout'],
    ['no answer (hang)', { status: 'hang' }, 504, 'upstream_timeout'],
    ['connection reset', { status: 'reset' }, 502, 'upstream_unreachable'],
  ]

  it.each(table.map(([label, ...rest]) => [`${label} → ${rest[1]} ${rest[2]}`, ...rest] as const))(
    '%s',
    async (_label, fault, status, code, retryAfter) => {
      const p = provider({ timeoutMs: 300 })
      fake.failNext({ ...fault, pathPrefix: '/openai/v1/batches' })
      const error = await rejection(p.retrieveBatch('batch_x'))
      expect(error.status).toBe(status)
      expect(error.code).toBe(code)
      expect(error.headers['retry-after']).toBe(retryAfter)
      expect(error.message).toMatch(/^The azure provider /)
      // Azure's text and the credential never reach the client.
      expect(error.message).not.toMatch(
        /Access denied|Resource not found|injected|pending|Please retry|principal|quota\./,
      )
      expect(JSON.stringify(error.toJSON())).not.toContain(fake.apiKey)
    },
  )

  it('names a well-formed Azure code in a 502, snake_cased', async () => {
    fake.failNext({ status: 400, code: 'invalidPayload' })
    expect((await rejection(provider().retrieveBatch('b'))).message).toBe(
      'The azure provider refused the request: 400 (invalid_payload).',
    )
    fake.failNext({ status: 500, code: '<script>' })
    expect((await rejection(provider().retrieveBatch('b'))).message).toBe('The azure provider answered 500.')
  })

  it('maps the errors Azure answers on its own', async () => {
    const p = provider()
    // Unknown objects: 404 notFound.
    expect(await rejection(p.retrieveBatch('batch_nope'))).toMatchObject({ status: 502, code: 'upstream_not_found' })
    expect(await rejection(p.deleteFile('file-nope'))).toMatchObject({ status: 502, code: 'upstream_not_found' })
    // Cancelling a finished batch: 409 conflict, not to be retried.
    const created = await p.createBatch(createRequest(await uploaded(p)))
    await runToEnd(p, created.id)
    const conflict = await rejection(p.cancelBatch(created.id))
    expect(conflict).toMatchObject({ status: 409, code: 'conflict' })
    expect(conflict.headers['x-should-retry']).toBe('false')
    // A wrong key, a wrong token, an api-version Azure does not know.
    const wrongKey = provider({ apiKey: 'wrong' })
    expect(await rejection(wrongKey.retrieveBatch(created.id))).toMatchObject({
      status: 502,
      code: 'upstream_auth_failed',
    })
    const wrongToken = azure({ endpoint: fake.endpoint, azureADTokenProvider: async () => 'expired-token' })
    providers.push(wrongToken)
    expect(await rejection(wrongToken.retrieveBatch(created.id))).toMatchObject({
      status: 502,
      code: 'upstream_auth_failed',
    })
    const oldVersion = provider({ apiVersion: '2023-05-15' })
    const versionError = await rejection(oldVersion.retrieveBatch(created.id))
    expect(versionError).toMatchObject({ status: 502, code: 'upstream_rejected' })
    expect(versionError.message).toBe('The azure provider refused the request: 400 (bad_request).')
  })

  it('answers a batch create on a file Azure has not processed with a retryable 503', async () => {
    await fake.close()
    fake = await startFakeAzure({ dataDir, pendingPolls: 5 })
    const form = new FormData()
    form.set('purpose', 'batch')
    form.set('file', new Blob([JSONL]), 'in.jsonl')
    const res = await fetch(`${fake.endpoint}/openai/files?api-version=${VERSION}`, {
      method: 'POST',
      headers: { 'api-key': fake.apiKey },
      body: form,
    })
    const { id } = (await res.json()) as { id: string }
    const error = await rejection(provider().createBatch(createRequest(id)))
    expect(error).toMatchObject({ status: 503, code: 'upstream_unavailable' })
    expect(error.headers['retry-after']).toBe('5')
  })

  it('answers a token provider that fails, or returns no token, with 502 upstream_auth_failed and sends nothing', async () => {
    for (const tokenProvider of [
      async () => {
        throw new Error('IMDS unreachable: secret-detail')
      },
      async () => '',
      async () => 'two\r\nlines',
    ]) {
      const p = azure({ endpoint: fake.endpoint, azureADTokenProvider: tokenProvider as () => Promise<string> })
      providers.push(p)
      const error = await rejection(p.uploadFile(upload(JSONL)))
      expect(error).toMatchObject({ status: 502, code: 'upstream_auth_failed' })
      expect(error.message).not.toContain('secret-detail')
    }
    expect(fake.requests).toHaveLength(0)
  })
})

describe('options', () => {
  it('is kind azure with Azure’s 100,000 requests per batch file', () => {
    const p = provider()
    expect(p.kind).toBe('azure')
    expect(p.limits).toEqual({ maxBatchRequests: 100_000 })
    expect(AZURE_LIMITS.maxBatchRequests).toBe(100_000)
  })

  it.each([
    [{ endpoint: 'https://r.openai.azure.com' }, /exactly one of apiKey and azureADTokenProvider/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', azureADTokenProvider: async () => 't' }, /exactly one/],
    [{ endpoint: 'not a url', apiKey: 'k' }, /endpoint must be a URL/],
    [{ endpoint: 'ftp://r.openai.azure.com', apiKey: 'k' }, /http\(s\)/],
    [{ endpoint: 'https://r.openai.azure.com/openai', apiKey: 'k' }, /without \/openai/],
    [{ endpoint: 'https://r.openai.azure.com/openai/v1/', apiKey: 'k' }, /without \/openai/],
    [{ endpoint: 'https://r.openai.azure.com?x=1', apiKey: 'k' }, /no query/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', apiVersion: 'latest' }, /not an Azure api-version/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', api: 'v1', apiVersion: VERSION }, /dated API only/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', api: 'v2' }, /'dated' or 'v1'/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', defaultExpirySeconds: 60 }, /from 3600/],
    [{ endpoint: 'https://r.openai.azure.com', apiKey: 'k', defaultExpirySeconds: 31 * DAY }, /to 2592000/],
  ])('refuses %j', (options, message) => {
    expect(() => azure(options as AzureProviderOptions)).toThrow(message)
  })

  it('accepts a base with a path (a proxy) and trailing slashes, and preview api-versions', async () => {
    const seen: string[] = []
    const server = createServer((req, res) => {
      seen.push(req.url ?? '')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: 'b 1', status: 'Completed' }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway//`
    try {
      const dated = azure({ endpoint: base, apiKey: 'k', apiVersion: '2025-04-01-preview' })
      const v1 = azure({ endpoint: base, apiKey: 'k', api: 'v1' })
      expect((await dated.retrieveBatch('b 1')).status).toBe('completed')
      await v1.retrieveBatch('b 1')
      await Promise.all([dated.close?.(), v1.close?.()])
    } finally {
      server.closeAllConnections()
      server.close()
    }
    expect(seen).toEqual([
      '/gateway/openai/batches/b%201?api-version=2025-04-01-preview',
      '/gateway/openai/v1/batches/b%201',
    ])
  })
})
