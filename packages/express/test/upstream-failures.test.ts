import { request } from 'node:http'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatLines, type Harness, KEYS, startHarness } from './harness.js'

let h: Harness

beforeAll(async () => {
  h = await startHarness({ timeoutMs: 300 })
})
afterAll(() => h.close())

type ErrorJson = { error: { message: string; type: string; param: string | null; code: string | null } }

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(h.baseURL + path, {
    method,
    headers: { authorization: `Bearer ${KEYS.alice}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text) as ErrorJson }
}

async function uploadForm(text: string) {
  const form = new FormData()
  form.append('purpose', 'batch')
  form.append('file', new Blob([text]), 'in.jsonl')
  const response = await fetch(`${h.baseURL}/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.alice}` },
    body: form,
  })
  return { status: response.status, json: (await response.json()) as ErrorJson & { id: string } }
}

async function ourBatchIds() {
  return (await h.client().batches.list()).data.map((batch) => batch.id)
}

async function ourFiles() {
  return (await h.client().files.list()).data.length
}

describe('upstream failures', () => {
  it.each([
    { upstream: 500, status: 502, code: 'upstream_error' },
    { upstream: 400, status: 502, code: 'upstream_rejected' },
    { upstream: 503, status: 503, code: 'upstream_unavailable' },
    { upstream: 429, status: 503, code: 'upstream_rate_limited' },
    { upstream: 'reset' as const, status: 502, code: 'upstream_unreachable' },
    { upstream: 'hang' as const, status: 504, code: 'upstream_timeout' },
  ])(
    'an upload meeting upstream $upstream answers $status $code and records nothing',
    async ({ upstream, status, code }) => {
      const before = { ours: await ourFiles(), theirs: h.fake.files.size }
      h.fake.failNext({ status: upstream, pathPrefix: '/v1/files', method: 'POST' })
      const result = await uploadForm(chatLines(3))
      expect(result.status).toBe(status)
      expect(result.json.error).toMatchObject({ type: 'server_error', code })
      expect(await ourFiles()).toBe(before.ours)
      expect(h.fake.files.size).toBe(before.theirs)
    },
  )

  it('maps upstream failures on batch calls, and never echoes the upstream body or key', async () => {
    const input = await uploadForm(chatLines(1))
    const created = await call('POST', '/batches', {
      input_file_id: input.json.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const batchId = (created.json as unknown as { id: string }).id

    // A read answers from the store whatever the provider does; its background refresh fails quietly.
    h.fake.failNext({ status: 500, pathPrefix: '/v1/batches', method: 'GET' })
    expect((await call('GET', `/batches/${batchId}`)).status).toBe(200)
    await h.kit.batches.idle()

    h.fake.failNext({ status: 500, pathPrefix: `/v1/batches/`, method: 'POST' })
    const failed = await call('POST', `/batches/${batchId}/cancel`)
    expect(failed.status).toBe(502)
    expect(failed.json.error.code).toBe('upstream_error')
    expect(failed.text).not.toContain(h.fake.apiKey)
    expect(failed.text).not.toContain('batch_req')
    for (const id of h.fake.batches.keys()) expect(failed.text).not.toContain(id)

    h.fake.failNext({ status: 'hang', pathPrefix: '/v1/batches', method: 'POST' })
    const before = h.fake.batches.size
    const timedOut = await call('POST', '/batches', {
      input_file_id: input.json.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(timedOut.status).toBe(504)
    expect(timedOut.json.error.code).toBe('upstream_timeout')
    expect(h.fake.batches.size).toBe(before)
    expect((await h.client().batches.list()).data.map((b) => b.id)).toEqual([batchId])

    // The batch still works once the provider recovers.
    expect((await call('GET', `/batches/${batchId}`)).status).toBe(200)
  })

  it("tells OpenAI's SDK not to retry a batch create that timed out upstream: it runs there at most once", async () => {
    const input = await uploadForm(chatLines(1))
    // The SDK's own default: two retries of every 5xx unless the answer says `x-should-retry: false`.
    const client = new OpenAI({ baseURL: h.baseURL, apiKey: KEYS.alice, maxRetries: 2 })
    const creates = () => h.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/batches').length
    const before = { creates: creates(), batches: h.fake.batches.size, ours: await ourBatchIds() }

    // The provider takes the create and never answers: it may well have made the batch.
    h.fake.failNext({ status: 'hang', pathPrefix: '/v1/batches', method: 'POST' })
    const error = await client.batches
      .create({ input_file_id: input.json.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e: unknown) => e)

    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect(error).toMatchObject({ status: 504, code: 'upstream_timeout' })
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get('x-should-retry')).toBe('false')
    // One create reached the provider: the SDK did not send it again.
    expect(creates()).toBe(before.creates + 1)
    expect(h.fake.batches.size).toBe(before.batches)
    expect(await ourBatchIds()).toEqual(before.ours)
  })

  it('reports wrong provider credentials as a 502 that names no key', async () => {
    const local = await startHarness()
    try {
      const { openai } = await import('@batchkit/core')
      const wrong = await startHarness({
        kit: { providers: { openai: openai({ apiKey: 'sk-upstream-secret-123', baseURL: local.fake.baseURL }) } },
      })
      try {
        const response = await fetch(`${wrong.baseURL}/files`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEYS.alice}` },
          body: (() => {
            const form = new FormData()
            form.append('purpose', 'batch')
            form.append('file', new Blob([chatLines(1)]), 'x.jsonl')
            return form
          })(),
        })
        const text = await response.text()
        expect(response.status).toBe(502)
        expect(JSON.parse(text).error.code).toBe('upstream_auth_failed')
        expect(text).not.toContain('sk-upstream-secret-123')
      } finally {
        await wrong.close()
      }
    } finally {
      await local.close()
    }
  })
})

describe('aborted uploads', () => {
  it('leaves no record and no upstream file when the client goes away mid-upload, and keeps serving', async () => {
    const before = { ours: await ourFiles(), theirs: h.fake.files.size }
    const { port } = new URL(h.baseURL)
    const boundary = 'abort-boundary'
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/files',
      headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    })
    req.on('error', () => undefined)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n`)
    req.write(chatLines(2000))
    await new Promise((resolve) => setTimeout(resolve, 100))
    req.destroy()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await ourFiles()).toBe(before.ours)
    expect(h.fake.files.size).toBe(before.theirs)
    const next = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(1)), 'next.jsonl'), purpose: 'batch' })
    expect(next.id).toMatch(/^file-/)
  })
})
