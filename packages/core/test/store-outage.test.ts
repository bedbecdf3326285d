import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveNodeRequest } from '../src/http/node.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { OwnRedis } from './support/own-redis.js'

/**
 * A store outage answers 503 within a bounded time, never a hang and never a false 404, and
 * nothing stored before it is lost: Redis frozen (SIGSTOP), killed (SIGKILL) and restarted, while
 * several clients keep calling the API over HTTP.
 */

const IN_CI = process.env.CI === 'true'
const STORE_TIMEOUT_MS = 1000
/** The longest any answer may take, outage or not. */
const MAX_ANSWER_MS = 5000
const CLIENTS = 4
const REQUESTS = `${JSON.stringify({
  custom_id: 'a',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
})}\n`

interface Answer {
  what: string
  status: number
  ms: number
  body: { id?: string; data?: { id: string }[] }
}

const redis = await OwnRedis.start()

describe('a Redis outage', () => {
  if (!redis) {
    if (IN_CI) {
      it('needs redis-server', () => {
        throw new Error('redis-server could not be started, and CI=true requires it')
      })
    } else {
      console.warn('[batchkit tests] redis-server could not be started: skipping the outage tests')
      it.skip('redis-server could not be started', () => undefined)
    }
    return
  }
  const own = redis
  let fake: FakeOpenAI
  let keyv: Keyv
  let kit: BatchKit
  let server: Server
  let origin: string
  const reported: string[] = []
  /** Files and batches the API said it created (200), which must never be lost while their store lives. */
  const files: string[] = []
  const batches: string[] = []

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    keyv = new Keyv(new KeyvRedis(own.url), { namespace: 'outage' })
    kit = createBatchKit({
      store: keyv,
      storeTimeoutMs: STORE_TIMEOUT_MS,
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      onError: (error, context) => reported.push(`${context}: ${String(error)}`),
      tracking: { initialIntervalMs: 50, maxIntervalMs: 200, tickMs: 50 },
    })
    server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    await kit?.close()
    await keyv?.disconnect().catch(() => undefined)
    await fake?.close()
    await own.stop()
  })

  async function call(what: string, method: string, path: string, body?: FormData | object): Promise<Answer> {
    const started = Date.now()
    try {
      const response = await fetch(origin + path, {
        method,
        body: body instanceof FormData ? body : body && JSON.stringify(body),
        headers: body && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {},
        // Longer than any answer may take: a request still open then is a hang.
        signal: AbortSignal.timeout(MAX_ANSWER_MS * 2),
      })
      const parsed = (await response.json()) as Answer['body']
      return { what, status: response.status, ms: Date.now() - started, body: parsed }
    } catch {
      return { what, status: 0, ms: Date.now() - started, body: {} }
    }
  }

  const upload = () => {
    const form = new FormData()
    form.append('purpose', 'batch')
    form.append('file', new Blob([REQUESTS]), 'in.jsonl')
    return call('create file', 'POST', '/v1/files', form)
  }
  const createBatch = (fileId: string) =>
    call('create batch', 'POST', '/v1/batches', {
      input_file_id: fileId,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })

  /** One of the API's calls, round robin: creates, retrieves of what exists, and lists. */
  async function someCall(i: number): Promise<Answer> {
    const file = files[i % files.length] as string
    const batch = batches[i % batches.length] as string
    switch (i % 6) {
      case 0: {
        const answer = await upload()
        if (answer.status === 200 && answer.body.id) files.push(answer.body.id)
        return answer
      }
      case 1:
        return call('retrieve file', 'GET', `/v1/files/${file}`)
      case 2:
        return call('list files', 'GET', '/v1/files')
      case 3:
        return call('retrieve batch', 'GET', `/v1/batches/${batch}`)
      case 4:
        return call('list batches', 'GET', '/v1/batches')
      default: {
        const answer = await createBatch(file)
        if (answer.status === 200 && answer.body.id) batches.push(answer.body.id)
        return answer
      }
    }
  }

  /** Several clients calling for `ms`, each waiting for its answer before the next call. */
  async function clientsFor(ms: number): Promise<Answer[]> {
    const until = Date.now() + ms
    const answers: Answer[] = []
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let i = client; Date.now() < until; i += CLIENTS) answers.push(await someCall(i))
      }),
    )
    return answers
  }

  function summary(phase: string, answers: Answer[]): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1
    const maxMs = Math.max(...answers.map((a) => a.ms))
    console.log(`[outage] ${phase}: ${answers.length} requests, statuses ${JSON.stringify(counts)}, max ${maxMs} ms`)
    return counts
  }

  /** Every answer in time, and either a success or a 503: never a hang, a 404 or another error. */
  function expectOnly200or503(answers: Answer[]): void {
    for (const answer of answers) {
      expect([200, 503], `${answer.what} answered ${answer.status}`).toContain(answer.status)
      expect(answer.ms, `${answer.what} took ${answer.ms} ms`).toBeLessThan(MAX_ANSWER_MS)
    }
  }

  /** Everything created so far is listed and can be read. */
  async function expectAllThere(): Promise<void> {
    const listedFiles = (await call('list files', 'GET', '/v1/files')).body.data?.map((f) => f.id)
    expect(listedFiles).toEqual(expect.arrayContaining(files))
    const listedBatches: string[] = []
    for (let after = ''; ; ) {
      const page = (await call('list batches', 'GET', `/v1/batches?limit=100${after}`)).body as {
        data: { id: string }[]
        has_more: boolean
      }
      listedBatches.push(...page.data.map((b) => b.id))
      if (!page.has_more) break
      after = `&after=${page.data.at(-1)?.id}`
    }
    expect(listedBatches).toEqual(expect.arrayContaining(batches))
    for (const id of files) expect((await call('retrieve file', 'GET', `/v1/files/${id}`)).status).toBe(200)
    for (const id of batches) expect((await call('retrieve batch', 'GET', `/v1/batches/${id}`)).status).toBe(200)
  }

  /** Waits for the API to create a file again, as it should soon after its store is back. */
  async function recovered(withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs
    for (;;) {
      const answer = await upload()
      if (answer.status === 200 && answer.body.id) {
        files.push(answer.body.id)
        return
      }
      if (Date.now() > deadline) throw new Error(`not recovered within ${withinMs} ms: last answer ${answer.status}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  it('serves normally before the outage', async () => {
    const file = await upload()
    expect(file.status).toBe(200)
    files.push(file.body.id as string)
    const batch = await createBatch(file.body.id as string)
    expect(batch.status).toBe(200)
    batches.push(batch.body.id as string)
    const answers = await clientsFor(500)
    summary('before', answers)
    for (const answer of answers) expect(answer.status, answer.what).toBe(200)
  })

  it('answers 200 or 503 within 5 s while Redis is frozen, and loses nothing', async () => {
    own.signal('SIGSTOP')
    let answers: Answer[]
    try {
      answers = await clientsFor(6000)
    } finally {
      own.signal('SIGCONT')
    }
    const counts = summary('frozen', answers)
    expectOnly200or503(answers)
    expect(counts[503]).toBeGreaterThan(0)
    await recovered(5000)
    await expectAllThere()
  })

  it('answers 503 at once while Redis is down, and recovers when it is back', async () => {
    own.signal('SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const answers = await clientsFor(2000)
    const counts = summary('killed', answers)
    expectOnly200or503(answers)
    expect(counts[503]).toBe(answers.length)

    expect(await own.restart()).toBe(true)
    // The store restarted empty (no persistence): only what is created from now on can be there.
    files.length = 0
    batches.length = 0
    await recovered(5000)
    const file = files[0] as string
    const batch = await createBatch(file)
    expect(batch.status).toBe(200)
    batches.push(batch.body.id as string)
    const after = await clientsFor(1000)
    summary('restarted', after)
    for (const answer of after) expect(answer.status, answer.what).toBe(200)
    await expectAllThere()
  })
})
