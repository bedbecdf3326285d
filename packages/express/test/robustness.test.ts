import { once } from 'node:events'
import { Readable } from 'node:stream'
import type { BatchEvent } from '@batchkit/core'
import express from 'express'
import { Keyv } from 'keyv'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createExpressRouter } from '../src/index.js'
import { chatLines, type Harness, KEYS, startHarness } from './harness.js'

type ErrorJson = { error: { code: string | null; message: string } }

const alice = { owner: 'alice' }

/** A Map-shaped Keyv store that fails every call (of keys matching `only`, if set) while `failing` is set. */
class FlakyStore extends Map<string, unknown> {
  failing: 'set' | 'get' | undefined
  only: RegExp | undefined
  override get(key: string) {
    if (this.failing === 'get' && this.matches(key)) throw new Error('store down (get)')
    return super.get(key)
  }
  override set(key: string, value: unknown) {
    if (this.failing === 'set' && this.matches(key)) throw new Error('store down (set)')
    return super.set(key, value)
  }
  private matches(key: string): boolean {
    return this.only === undefined || this.only.test(key)
  }
}

/** A Keyv on a plain object around the Map, so batchkit treats it as a generic Keyv adapter. */
function keyvOver(flaky: FlakyStore): Keyv {
  return new Keyv({
    store: {
      get: (k: string) => flaky.get(k),
      set: (k: string, v: unknown) => flaky.set(k, v),
      delete: (k: string) => flaky.delete(k),
      clear: () => flaky.clear(),
    },
  })
}

describe('when the store fails', () => {
  let h: Harness
  const flaky = new FlakyStore()
  const reported: unknown[] = []

  beforeAll(async () => {
    h = await startHarness({ kit: { store: keyvOver(flaky), onError: (error) => reported.push(error) } })
  })
  afterAll(() => h.close())

  it('answers an upload 503 store_unavailable and deletes the file it already sent upstream', async () => {
    const upstream = h.fake.files.size
    const uploadsBefore = h.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/files').length
    flaky.failing = 'set'
    flaky.only = /:file:file-/
    try {
      const error = await h
        .client()
        .files.create({ file: await toFile(Buffer.from(chatLines(2)), 'a.jsonl'), purpose: 'batch' })
        .catch((e) => e)
      expect(error).toMatchObject({ status: 503, code: 'store_unavailable' })
    } finally {
      flaky.failing = undefined
      flaky.only = undefined
    }
    expect(h.fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/files').length).toBe(uploadsBefore + 1)
    expect(h.fake.files.size).toBe(upstream)
    expect(reported.map(String)).toContain('Error: store down (set)')
  })

  it('answers a batch create 503 before asking the provider when its intent cannot be written', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(2)), 'a.jsonl'), purpose: 'batch' })
    const upstream = h.fake.batches.size
    flaky.failing = 'set'
    try {
      const error = await h
        .client()
        .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
        .catch((e) => e)
      expect(error).toMatchObject({ status: 503, code: 'store_unavailable' })
    } finally {
      flaky.failing = undefined
    }
    expect(h.fake.batches.size).toBe(upstream)
    expect((await h.client().batches.list()).data).toEqual([])
  })

  it('answers a batch create 503 and cancels the batch it started upstream when its record cannot be stored', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(2)), 'a.jsonl'), purpose: 'batch' })
    const before = new Set(h.fake.batches.keys())
    flaky.failing = 'set'
    flaky.only = /:batch:batch_/
    try {
      const error = await h
        .client()
        .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
        .catch((e) => e)
      expect(error).toMatchObject({ status: 503, code: 'store_unavailable' })
    } finally {
      flaky.failing = undefined
      flaky.only = undefined
    }
    const started = [...h.fake.batches.values()].filter((batch) => !before.has(batch.id))
    expect(started).toHaveLength(1)
    expect(started[0]?.status).toBe('cancelling')
    expect((await h.client().batches.list()).data).toEqual([])
  })

  it('announces nothing for a create undone because the batch could not be followed', async () => {
    const events: BatchEvent[] = []
    const tracked = await startHarness({
      kit: {
        store: keyvOver(flaky),
        tracking: { initialIntervalMs: 60_000, tickMs: 10 },
        delivery: { pollIntervalMs: 10 },
        callbacks: [(event) => void events.push(event)],
      },
    })
    try {
      const file = await tracked
        .client()
        .files.create({ file: await toFile(Buffer.from(chatLines(2)), 'a.jsonl'), purpose: 'batch' })
      const before = new Set(tracked.fake.batches.keys())
      flaky.failing = 'set'
      flaky.only = /:tracking:/
      try {
        const error = await tracked
          .client()
          .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
          .catch((e) => e)
        expect(error).toMatchObject({ status: 503, code: 'store_unavailable' })
      } finally {
        flaky.failing = undefined
        flaky.only = undefined
      }
      const started = [...tracked.fake.batches.values()].filter((batch) => !before.has(batch.id))
      expect(started.map((batch) => batch.status)).toEqual(['cancelling'])
      // Long enough for a stored event to be delivered at this pace.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(events).toEqual([])
      expect((await tracked.client().batches.list()).data).toEqual([])
    } finally {
      await tracked.close()
    }
  })

  it('answers a read 503, never a false 404', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(1)), 'b.jsonl'), purpose: 'batch' })
    flaky.failing = 'get'
    try {
      await expect(h.client().files.retrieve(file.id)).rejects.toMatchObject({ status: 503, code: 'store_unavailable' })
    } finally {
      flaky.failing = undefined
    }
    expect((await h.client().files.retrieve(file.id)).id).toBe(file.id)
  })
})

describe('when the provider loses or hides things', () => {
  let h: Harness
  const reported: unknown[] = []

  beforeAll(async () => {
    h = await startHarness({ kit: { onError: (error) => reported.push(error) } })
  })
  afterAll(() => h.close())

  const deleteUpstream = (providerFileId: string) =>
    fetch(`${h.fake.baseURL}/files/${providerFileId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${h.fake.apiKey}` },
    })

  it('answers 502 upstream_not_found, not 404, for content the provider no longer has; delete still works', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(1)), 'c.jsonl'), purpose: 'batch' })
    await deleteUpstream((await h.kit.files.retrieve(alice, file.id)).providerFileId)
    const response = await fetch(`${h.baseURL}/files/${file.id}/content`, {
      headers: { authorization: `Bearer ${KEYS.alice}` },
    })
    const body = await response.clone().text()
    expect(response.status, body).toBe(502)
    expect(response.headers.get('x-should-retry')).toBe('false')
    expect(((await response.json()) as ErrorJson).error.code).toBe('upstream_not_found')
    expect(await h.client().files.delete(file.id)).toMatchObject({ deleted: true })
  })

  it("shows a batch that failed upstream with OpenAI's errors, our ids, and no provider account ids", async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(1)), 'd.jsonl'), purpose: 'batch' })
    const batch = await h
      .client()
      .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    await deleteUpstream((await h.kit.files.retrieve(alice, file.id)).providerFileId)
    let current = batch
    for (let i = 0; i < 5 && current.status !== 'failed'; i++) {
      current = await h.client().batches.retrieve(batch.id)
      await h.kit.batches.idle()
    }
    h.schemas.assert('Batch', current)
    expect(current.status).toBe('failed')
    const message = current.errors?.data?.[0]?.message ?? ''
    expect(message).toContain(file.id)
    expect(message).not.toContain('org-')
    for (const id of h.fake.files.keys()) expect(message).not.toContain(id)
  })

  it('answers 409 to cancelling an expired batch', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(2)), 'e.jsonl'), purpose: 'batch' })
    const batch = await h
      .client()
      .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    await h.client().batches.retrieve(batch.id)
    await h.fake.expire((await h.kit.batches.retrieve(alice, batch.id)).providerBatchId)
    await h.client().batches.retrieve(batch.id)
    await h.kit.batches.idle()
    expect((await h.client().batches.retrieve(batch.id)).status).toBe('expired')
    const response = await fetch(`${h.baseURL}/batches/${batch.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alice}` },
    })
    expect(response.status).toBe(409)
    expect(((await response.json()) as ErrorJson).error.message).toBe("Cannot cancel a batch with status 'expired'.")
  })

  it('keeps listing when one batch cannot be refreshed, showing it as last seen', async () => {
    const file = await h
      .client()
      .files.create({ file: await toFile(Buffer.from(chatLines(1)), 'f.jsonl'), purpose: 'batch' })
    const batch = await h
      .client()
      .batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    h.fake.failNext({ status: 500, pathPrefix: '/v1/batches/', method: 'GET' })
    const page = await h.client().batches.list({ limit: 1 })
    expect(page.data.map((b) => [b.id, b.status])).toEqual([[batch.id, 'validating']])
    await h.kit.batches.idle()
    expect(reported.length).toBeGreaterThan(0)
    expect((await h.client().batches.list({ limit: 1 })).data.map((b) => [b.id, b.status])).toEqual([
      [batch.id, 'validating'],
    ])
  })

  it('does not report a download the client abandoned as a server error', async () => {
    const file = await h.kit.files.create(alice, { file: Readable.from([chatLines(20_000)]), purpose: 'batch' })
    reported.length = 0
    const aborter = new AbortController()
    const response = await fetch(`${h.baseURL}/files/${file.id}/content`, {
      headers: { authorization: `Bearer ${KEYS.alice}` },
      signal: aborter.signal,
    })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    aborter.abort()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(reported).toEqual([])
  })
})

describe('the typed API checks what HTTP checks', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness()
  })
  afterAll(() => h.close())

  it.each([
    { input: { purpose: 'bogus' }, error: { status: 400, code: 'invalid_value', param: 'purpose' } },
    {
      input: { purpose: 'batch', expiresAfter: { anchor: 'created_at', seconds: 5 } },
      error: { status: 400, param: 'expires_after.seconds' },
    },
    {
      input: { purpose: 'batch', expiresAfter: { anchor: 'nope', seconds: 3600 } },
      error: { status: 400, param: 'expires_after.anchor' },
    },
  ])('rejects $input with $error.status and sends nothing upstream', async ({ input, error }) => {
    const upstream = h.fake.files.size
    const create = h.kit.files.create(alice, {
      file: Readable.from([chatLines(2)]),
      ...(input as { purpose: 'batch' }),
    })
    await expect(create).rejects.toMatchObject(error)
    expect(h.fake.files.size).toBe(upstream)
  })

  it('lets a client delete files while it pages through them', async () => {
    const client = h.client(KEYS.bob)
    for (let i = 0; i < 5; i++)
      await client.files.create({ file: await toFile(Buffer.from(chatLines(1)), `p${i}.jsonl`), purpose: 'batch' })
    let deleted = 0
    for await (const file of client.files.list({ limit: 2 })) {
      await client.files.delete(file.id)
      deleted++
    }
    expect(deleted).toBe(5)
    expect((await client.files.list()).data).toEqual([])
  })
})

describe("errors of the app's own middleware", () => {
  it('are never served by batchkit: a request another middleware failed stays failed', async () => {
    const h = await startHarness()
    const app = express()
    app.use('/v1', (_req, _res, next) => next(Object.assign(new Error('denied'), { status: 403 })))
    app.use('/v1', createExpressRouter(h.kit))
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const { port } = server.address() as { port: number }
      const response = await fetch(`http://127.0.0.1:${port}/v1/batches`, {
        headers: { authorization: `Bearer ${KEYS.alice}` },
      })
      expect(response.status).toBe(403)
      expect(response.headers.get('x-request-id')).toBeNull()
    } finally {
      server.closeAllConnections()
      server.close()
      await h.close()
    }
  })
})
