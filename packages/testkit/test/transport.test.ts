import OpenAI from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeOpenAI, type OpenAIErrorBody, startFakeOpenAI } from '../src/index.js'
import { clientFor, schemas } from './helpers.js'

let fake: FakeOpenAI
let client: OpenAI

beforeEach(async () => {
  fake = await startFakeOpenAI()
  client = clientFor(fake)
})

afterEach(async () => {
  await fake.close()
})

describe('authentication', () => {
  it('answers a missing key with 401 and OpenAI’s body', async () => {
    const res = await fetch(`${fake.baseURL}/files`)
    expect(res.status).toBe(401)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]+$/)
    const body = (await res.json()) as OpenAIErrorBody
    schemas.assert('ErrorResponse', body)
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: null })
    expect(body.error.message).toMatch(/^You didn't provide an API key/)
  })

  it('answers a wrong key with 401 invalid_api_key', async () => {
    const wrong = new OpenAI({ baseURL: fake.baseURL, apiKey: 'sk-wrong-key-123456', maxRetries: 0 })
    const error = await wrong.files.list().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key' })
    expect((error as Error).message).toContain('Incorrect API key provided: sk-')
    expect((error as Error).message).not.toContain('sk-wrong-key-123456')
  })

  it('honours a custom apiKey', async () => {
    const custom = await startFakeOpenAI({ apiKey: 'sk-custom' })
    try {
      expect(custom.apiKey).toBe('sk-custom')
      await expect(clientFor(custom).files.list()).resolves.toMatchObject({ data: [], has_more: false })
    } finally {
      await custom.close()
    }
  })
})

describe('routing and bookkeeping', () => {
  it('records every request and answers unknown routes with Invalid URL', async () => {
    await client.files.list({ limit: 5 })
    const res = await fetch(`${fake.baseURL}/nowhere`, { headers: { authorization: `Bearer ${fake.apiKey}` } })
    expect(res.status).toBe(404)
    expect(((await res.json()) as OpenAIErrorBody).error.message).toBe('Invalid URL (GET /v1/nowhere)')
    expect(fake.requests).toEqual([
      { method: 'GET', path: '/v1/files', query: 'limit=5' },
      { method: 'GET', path: '/v1/nowhere', query: '' },
    ])
  })

  it('binds loopback only', async () => {
    await expect(startFakeOpenAI({ host: '0.0.0.0' })).rejects.toThrow(/loopback/)
    expect(fake.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
  })
})

describe('failNext', () => {
  it('injects OpenAI error statuses for matching requests only, the given number of times', async () => {
    fake.failNext({ status: 500, times: 2, pathPrefix: '/v1/batches' })
    fake.failNext({ status: 429, method: 'post' })

    await expect(client.files.list()).resolves.toMatchObject({ data: [], has_more: false })
    for (let i = 0; i < 2; i++) {
      const error = await client.batches.list().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(OpenAI.InternalServerError)
      expect(error).toMatchObject({ status: 500, type: 'server_error' })
    }
    await expect(client.batches.list()).resolves.toMatchObject({ data: [], has_more: false })

    const limited = await client.batches
      .create({ input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e: unknown) => e)
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError)
    expect(limited).toMatchObject({ status: 429, code: 'rate_limit_exceeded' })
    expect(fake.batches.size).toBe(0)
  })

  it('injects failures before authentication', async () => {
    fake.failNext({ status: 503 })
    const res = await fetch(`${fake.baseURL}/files`)
    expect(res.status).toBe(503)
    schemas.assert('ErrorResponse', await res.json())
  })

  it('hangs a request until close()', async () => {
    fake.failNext({ status: 'hang' })
    const slow = clientFor(fake, { timeout: 200 })
    await expect(slow.files.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError)
    await expect(slow.files.list()).resolves.toMatchObject({ data: [], has_more: false })

    fake.failNext({ status: 'hang' })
    const pending = fetch(`${fake.baseURL}/files`).catch((e: unknown) => e)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await fake.close()
    expect(await pending).toBeInstanceOf(Error)
  })

  it('resets the connection', async () => {
    fake.failNext({ status: 'reset', pathPrefix: '/v1/files' })
    await expect(client.files.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionError)
    await expect(client.files.list()).resolves.toMatchObject({ data: [], has_more: false })
  })

  it('rejects nonsense options', () => {
    expect(() => fake.failNext({ status: 200 })).toThrow(RangeError)
    expect(() => fake.failNext({ status: 500, times: 0 })).toThrow(RangeError)
  })
})
