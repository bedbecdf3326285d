import { type IncomingMessage, request } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { apiKeyAuth, type BatchKit, createBatchKit, openai } from '@batchkit/core'
import { createSchemaValidator, type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HostHarness, StartedHost } from './harness.js'
import { generatedJsonl, peakRssGrowth } from './memory.js'
import { wireDetailsTests } from './wire-details.js'

const ALICE = 'sk-conformance-alice'
const BOB = 'sk-conformance-bob'
/** 200 MB: OpenAI's batch file limit, in OpenAI's most lines, 50,000. */
const BIG_LINES = 50_000
const BIG_LINE_BYTES = 4_000
const BIG_BYTES = BIG_LINES * BIG_LINE_BYTES
/** How much a host may grow this process while 200 MB pass through it: well under half of it. */
const MAX_GROWTH_BYTES = 96 * 1024 * 1024
const SMALL_LIMIT = 64 * 1024

const chat = (id: string) =>
  `${JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hello ${id}` }] } })}\n`
const sample = ['a', 'b', 'c'].map(chat).join('')

/**
 * The HTTP conformance suite: the same behaviour, byte for byte, whatever hosts the API. Call it at
 * the top level of a test file with the host's harness.
 */
export function runConformanceSuite(harness: HostHarness): void {
  describe(`batchkit on ${harness.name}`, () => {
    const schemas = createSchemaValidator()
    let fake: FakeOpenAI
    const kits: BatchKit[] = []
    let plain: StartedHost
    let behindParser: StartedHost
    let smallLimits: StartedHost

    const kitFor = (limits?: { maxBatchFileBytes: number }) => {
      const kit = createBatchKit({
        providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
        authenticate: apiKeyAuth({ [ALICE]: 'alice', [BOB]: 'bob' }),
        limits,
        onError: () => undefined,
        // The fake advances a batch on every poll: only the suite's own reads may move it.
        tracking: { enabled: false },
        // Every read of an unfinished batch refreshes it in the background; `idle()` waits for that.
        freshnessMs: 0,
      })
      kits.push(kit)
      return kit
    }
    const client = (host: StartedHost, key = ALICE, mountPath = '/v1') =>
      new OpenAI({ baseURL: host.origin + mountPath, apiKey: key, maxRetries: 0 })

    beforeAll(async () => {
      fake = await startFakeOpenAI()
      const kit = kitFor()
      plain = await harness.start({ kit, mountPath: '/v1', jsonBodyParser: false })
      behindParser = await harness.start({ kit, mountPath: '/api/v1', jsonBodyParser: true })
      smallLimits = await harness.start({
        kit: kitFor({ maxBatchFileBytes: SMALL_LIMIT }),
        mountPath: '/v1',
        jsonBodyParser: false,
      })
    })

    afterAll(async () => {
      await Promise.all([plain?.close(), behindParser?.close(), smallLimits?.close()])
      await Promise.all(kits.map((kit) => kit.close()))
      await fake?.close()
    })

    it('serves every route to the openai client, with objects valid against OpenAI schemas', async () => {
      const api = client(plain)
      const file = await api.files.create({ file: await toFile(Buffer.from(sample), 'in.jsonl'), purpose: 'batch' })
      schemas.assert('OpenAIFile', file)
      expect(await api.files.retrieve(file.id)).toEqual(file)
      expect(await (await api.files.content(file.id)).text()).toBe(sample)
      expect((await api.files.list()).data.map((f) => f.id)).toContain(file.id)

      const batch = await api.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      schemas.assert('Batch', batch)
      let current = batch
      for (let i = 0; i < 10 && current.status !== 'completed'; i++) {
        current = await api.batches.retrieve(batch.id)
        await Promise.all(kits.map((kit) => kit.batches.idle()))
      }
      schemas.assert('Batch', current)
      expect(current).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 3, failed: 0 } })
      const output = await (await api.files.content(current.output_file_id as string)).text()
      expect(output.trim().split('\n')).toHaveLength(3)
      expect((await api.batches.list()).data.map((b) => b.id)).toContain(batch.id)

      const running = await api.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      expect((await api.batches.cancel(running.id)).status).toBe('cancelling')
      expect(await api.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true })
    })

    it('answers errors with exactly the OpenAI envelope, status and headers', async () => {
      const url = `${plain.origin}/v1`
      const auth = { authorization: `Bearer ${ALICE}` }
      const cases: [string, RequestInit, number, object][] = [
        [
          '/files',
          {},
          401,
          {
            message: expect.stringMatching(/^You didn't provide an API key/),
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        ],
        [
          '/files',
          { headers: { authorization: 'Bearer nope' } },
          401,
          {
            message: 'Incorrect API key provided.',
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_api_key',
          },
        ],
        [
          '/files/file-missing',
          { headers: auth },
          404,
          { message: 'No such File object: file-missing', type: 'invalid_request_error', param: 'id', code: null },
        ],
        [
          '/batches/batch_missing',
          { headers: auth },
          404,
          {
            message: "No batch found with id 'batch_missing'.",
            type: 'invalid_request_error',
            param: 'id',
            code: null,
          },
        ],
        [
          '/batches',
          {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ endpoint: '/v1/chat/completions' }),
          },
          400,
          {
            message: "Missing required parameter: 'input_file_id'.",
            type: 'invalid_request_error',
            param: 'input_file_id',
            code: 'missing_required_parameter',
          },
        ],
        [
          '/files',
          { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'x' },
          415,
          {
            message: 'Invalid Content-Type header: this endpoint expects multipart/form-data.',
            type: 'invalid_request_error',
            param: null,
            code: 'unsupported_media_type',
          },
        ],
      ]
      for (const [path, init, status, error] of cases) {
        const response = await fetch(url + path, init)
        expect(response.status, path).toBe(status)
        expect(response.headers.get('content-type')).toBe('application/json')
        expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/)
        expect(await response.json()).toEqual({ error })
      }

      const form = new FormData()
      form.append('purpose', 'batch')
      form.append('file', new Blob([`${chat('a')}{"broken":\n`]), 'bad.jsonl')
      const bad = await fetch(`${url}/files`, { method: 'POST', headers: auth, body: form })
      expect(bad.status).toBe(400)
      expect(await bad.json()).toEqual({
        error: {
          message: 'Line 2 is not parseable as valid JSON.',
          type: 'invalid_request_error',
          param: 'file',
          code: 'invalid_json_line',
        },
      })

      const api = client(plain)
      const file = await api.files.create({ file: await toFile(Buffer.from(chat('x')), 'x.jsonl'), purpose: 'batch' })
      const done = await api.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      for (let i = 0; i < 5; i++) {
        await api.batches.retrieve(done.id)
        await Promise.all(kits.map((kit) => kit.batches.idle()))
      }
      const conflict = await fetch(`${url}/batches/${done.id}/cancel`, { method: 'POST', headers: auth })
      expect(conflict.status).toBe(409)
      expect(conflict.headers.get('x-should-retry')).toBe('false')
      expect(await conflict.json()).toEqual({
        error: {
          message: "Cannot cancel a batch with status 'completed'.",
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      })
    })

    it("works under a prefix, behind the host's own JSON body parser", async () => {
      const api = client(behindParser, ALICE, '/api/v1')
      const file = await api.files.create({ file: await toFile(Buffer.from(sample), 'in.jsonl'), purpose: 'batch' })
      const batch = await api.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { via: 'parser' },
      })
      expect(batch).toMatchObject({ input_file_id: file.id, metadata: { via: 'parser' } })
      expect((await api.batches.retrieve(batch.id)).id).toBe(batch.id)
      // The same kit behind both mounts: the records are shared, the paths are not.
      expect((await client(plain).batches.retrieve(batch.id)).id).toBe(batch.id)
      const wrongMount = await fetch(`${behindParser.origin}/v1/batches/${batch.id}`, {
        headers: { authorization: `Bearer ${ALICE}` },
      })
      expect(wrongMount.status).toBe(404)
      expect(wrongMount.headers.get('x-request-id')).toBeNull()
    })

    wireDetailsTests(() => ({
      plain: { label: 'plain', host: plain, baseURL: `${plain.origin}/v1`, apiKey: ALICE },
      behindParser: {
        label: 'behind a body parser',
        host: behindParser,
        baseURL: `${behindParser.origin}/api/v1`,
        apiKey: ALICE,
      },
      fake,
    }))

    it("leaves the host's other routes to the host", async () => {
      const own = await fetch(`${plain.origin}/host-route`)
      expect(own.status).toBe(200)
      expect(await own.text()).toBe('host')
      for (const [method, path] of [
        ['GET', '/v1/models'],
        ['PUT', '/v1/files'],
        ['GET', '/v1/files/a/b/c'],
        ['GET', '/v2/files'],
      ]) {
        const response = await fetch(plain.origin + path, { method, headers: { authorization: `Bearer ${ALICE}` } })
        expect(response.status, `${method} ${path}`).toBe(404)
        expect(response.headers.get('x-request-id'), `${method} ${path}`).toBeNull()
      }
    })

    it('streams a 200 MB upload and a slowly read download with bounded memory', async () => {
      const { result: file, growthBytes: uploadGrowth } = await peakRssGrowth(() =>
        streamUpload(plain, generatedJsonl(BIG_LINES, BIG_LINE_BYTES)),
      )
      expect(file.status, file.text).toBe(200)
      const { id, bytes } = JSON.parse(file.text)
      expect(bytes).toBe(BIG_BYTES)
      expect(uploadGrowth).toBeLessThan(MAX_GROWTH_BYTES)

      // Read 32 MiB of the 200 MB at a slow pace: a host that buffered would hold the rest meanwhile.
      const { result: read, growthBytes: downloadGrowth } = await peakRssGrowth(() =>
        slowRead(plain, id, 32 * 1024 * 1024),
      )
      expect(read).toBeGreaterThanOrEqual(32 * 1024 * 1024)
      expect(downloadGrowth).toBeLessThan(MAX_GROWTH_BYTES)
      await client(plain).files.delete(id)
    })

    it('keeps nothing of an upload the client abandons, and goes on serving', async () => {
      const api = client(plain)
      const before = (await api.files.list()).data.length
      const upstreamBefore = fake.files.size
      const req = uploadRequest(plain, ALICE)
      req.on('error', () => undefined)
      req.write(formHead())
      for (const chunk of generatedJsonl(2_000, 500)) req.write(chunk)
      await new Promise((resolve) => setTimeout(resolve, 100))
      req.destroy()
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect((await api.files.list()).data.length).toBe(before)
      expect(fake.files.size).toBe(upstreamBefore)
      expect(
        (await api.files.create({ file: await toFile(Buffer.from(sample), 'next.jsonl'), purpose: 'batch' })).bytes,
      ).toBe(sample.length)
    })

    it.each([
      { status: 401, key: undefined, host: () => plain },
      { status: 413, key: ALICE, host: () => smallLimits },
    ])(
      'answers $status promptly on a large upload, before it ends, and serves the next request',
      async ({ status, key, host }) => {
        const target = host()
        const api = client(target)
        const before = (await api.files.list()).data.length
        const req = uploadRequest(target, key)
        req.on('error', () => undefined)
        const response = new Promise<IncomingMessage>((resolve) => req.once('response', resolve))
        req.write(formHead())
        // Keep sending for up to 5 s; the answer must come long before the upload would end.
        let sent = 0
        let answered: IncomingMessage | undefined
        void response.then((r) => {
          answered = r
        })
        const started = Date.now()
        for (const chunk of generatedJsonl(1_000_000, 1_000)) {
          if (answered || Date.now() - started > 5_000 || req.destroyed) break
          sent += chunk.length
          if (!req.write(chunk)) await Promise.race([new Promise((resolve) => req.once('drain', resolve)), response])
        }
        const res = await response
        expect(res.statusCode).toBe(status)
        let text = ''
        for await (const chunk of res) text += chunk
        expect(JSON.parse(text).error.code).toBe(status === 401 ? null : 'file_too_large')
        expect(sent).toBeLessThan(200 * 1024 * 1024)
        req.destroy()
        // The next request is served in full: an upload stored and read back, beside nothing of the refused one.
        const next = await api.files.create({ file: await toFile(Buffer.from(sample), 'next.jsonl'), purpose: 'batch' })
        expect(next.bytes).toBe(Buffer.byteLength(sample))
        expect(await (await api.files.content(next.id)).text()).toBe(sample)
        expect((await api.files.list()).data).toHaveLength(before + 1)
        await api.files.delete(next.id)
      },
    )
  })
}

function formHead(): Buffer {
  return Buffer.from(
    '--conformance\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n' +
      '--conformance\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n',
  )
}

function uploadRequest(host: StartedHost, key: string | undefined) {
  const { hostname, port } = new URL(host.origin)
  return request({
    host: hostname,
    port,
    method: 'POST',
    path: '/v1/files',
    headers: {
      'content-type': 'multipart/form-data; boundary=conformance',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
  })
}

async function streamUpload(host: StartedHost, lines: Iterable<Buffer>): Promise<{ status: number; text: string }> {
  const req = uploadRequest(host, ALICE)
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  })
  async function* body() {
    yield formHead()
    yield* lines
    yield Buffer.from('\r\n--conformance--\r\n')
  }
  await pipeline(Readable.from(body()), req)
  const res = await response
  let text = ''
  for await (const chunk of res) text += chunk
  return { status: res.statusCode ?? 0, text }
}

async function slowRead(host: StartedHost, fileId: string, bytes: number): Promise<number> {
  const response = await fetch(`${host.origin}/v1/files/${fileId}/content`, {
    headers: { authorization: `Bearer ${ALICE}` },
  })
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  let read = 0
  while (read < bytes) {
    const { value, done } = await reader.read()
    if (done) break
    read += value.length
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await reader.cancel()
  return read
}
