import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import OpenAI, { toFile } from 'openai'
import { Agent, type Dispatcher } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiError, isApiError } from '../src/errors.js'
import { serveNodeRequest } from '../src/http/node.js'
import { createBatchKit } from '../src/kit.js'
import { azure } from '../src/providers/azure/index.js'
import { MAX_ERROR_BODY_BYTES, readBoundedText } from '../src/providers/bounded-body.js'
import { openai } from '../src/providers/openai/index.js'
import type { Provider } from '../src/providers/types.js'
import { vertex } from '../src/providers/vertex/provider.js'

const BODY_BYTES = 50 * 1024 * 1024
const CHUNK_BYTES = 64 * 1024
const PARALLEL = 7
const SECRET = 'sk-secret-upstream-key'

/**
 * What one response may deliver to batchkit beyond the bytes it reads: undici reads the socket in chunks
 * of up to 64 KiB and the body stream buffers up to its 64 KiB high-water mark before the socket is paused.
 */
const DELIVERY_SLACK_BYTES = 2 * 64 * 1024

/** One 500 answer of the fake upstream: how much of its 50 MB body it wrote, and whether it got to the end. */
interface Answer {
  written: number
  finished: boolean
}

const answers: Answer[] = []
let server: Server
let baseUrl: string

/** Streams a 50 MB JSON error body with backpressure, so the fake itself holds one chunk at a time. */
async function answerWithHugeError(res: ServerResponse): Promise<void> {
  const answer: Answer = { written: 0, finished: false }
  answers.push(answer)
  const head = Buffer.from('{"error":{"code":"server_error","message":"')
  const tail = Buffer.from('"}}')
  const filler = Buffer.alloc(CHUNK_BYTES, 'x')
  res.writeHead(500, { 'content-type': 'application/json', 'content-length': BODY_BYTES })
  let closed = false
  res.on('close', () => {
    closed = true
  })
  const write = async (chunk: Buffer): Promise<void> => {
    answer.written += chunk.length
    if (!res.write(chunk))
      await new Promise((resolve) => (closed ? resolve(undefined) : res.once('drain', resolve).once('close', resolve)))
  }
  await write(head)
  let left = BODY_BYTES - head.length - tail.length
  while (left > 0 && !closed) {
    const chunk = left >= filler.length ? filler : filler.subarray(0, left)
    left -= chunk.length
    await write(chunk)
  }
  if (closed) return
  res.end(tail)
  answer.written += tail.length
  answer.finished = true
}

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume()
    void answerWithHugeError(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

/** An undici Agent that counts the body bytes it hands over, per response. */
function countingDispatcher(): { dispatcher: Dispatcher; delivered: number[]; agent: Agent } {
  const agent = new Agent()
  const delivered: number[] = []
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    const index = delivered.push(0) - 1
    return dispatch(options, {
      onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
      onRequestUpgrade: (controller, status, headers, socket) =>
        handler.onRequestUpgrade?.(controller, status, headers, socket),
      onResponseStart: (controller, status, headers, message) =>
        handler.onResponseStart?.(controller, status, headers, message),
      onResponseData: (controller, chunk) => {
        delivered[index] = (delivered[index] ?? 0) + chunk.length
        return handler.onResponseData?.(controller, chunk)
      },
      onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
      onResponseError: (controller, error) => handler.onResponseError?.(controller, error),
    })
  })
  return { dispatcher, delivered, agent }
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  if (!isApiError(error)) throw new Error(`expected an ApiError, got ${String(error)}`)
  return error
}

const PROVIDERS: Record<string, (dispatcher: Dispatcher) => Provider> = {
  openai: (dispatcher) => openai({ apiKey: SECRET, baseURL: `${baseUrl}/v1`, dispatcher }),
  azure: (dispatcher) => azure({ endpoint: baseUrl, apiKey: SECRET, dispatcher }),
  vertex: (dispatcher) =>
    vertex({
      project: 'p',
      location: 'us-central1',
      bucket: 'b',
      accessToken: SECRET,
      vertexEndpoint: baseUrl,
      gcsEndpoint: baseUrl,
      dispatcher,
    }),
}

describe.each(Object.keys(PROVIDERS))('the %s provider, answered 500 with a 50 MB error body', (kind) => {
  it('reads at most 64 KiB of each body and answers an OpenAI-style 502', async () => {
    const { dispatcher, delivered, agent } = countingDispatcher()
    const provider = PROVIDERS[kind]!(dispatcher)
    answers.length = 0
    try {
      const errors = await Promise.all(
        Array.from({ length: PARALLEL }, () =>
          rejection(provider.retrieveBatch(kind === 'vertex' ? '123' : 'batch_1')),
        ),
      )
      for (const error of errors) {
        expect(error.status).toBe(502)
        expect(error.toJSON()).toEqual({
          error: {
            message: `The ${kind} provider answered 500.`,
            type: 'server_error',
            param: null,
            code: 'upstream_error',
          },
        })
        expect(JSON.stringify(error.toJSON())).not.toContain(SECRET)
      }
      expect(delivered).toHaveLength(PARALLEL)
      for (const bytes of delivered) {
        expect(bytes).toBeGreaterThanOrEqual(MAX_ERROR_BODY_BYTES)
        expect(bytes).toBeLessThanOrEqual(MAX_ERROR_BODY_BYTES + DELIVERY_SLACK_BYTES)
      }
      // The connections were dropped: no answer got near the end of its body.
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(answers).toHaveLength(PARALLEL)
      for (const answer of answers) {
        expect(answer.finished).toBe(false)
        expect(answer.written).toBeLessThan(BODY_BYTES / 4)
      }
    } finally {
      await provider.close?.()
      await agent.close()
    }
  })
})

describe('an OpenAI client uploading through batchkit to that upstream', () => {
  it("gets a 502 in OpenAI's envelope while batchkit reads at most 64 KiB of each error body", async () => {
    const { dispatcher, delivered, agent } = countingDispatcher()
    const kit = createBatchKit({
      providers: { openai: openai({ apiKey: SECRET, baseURL: `${baseUrl}/v1`, dispatcher }) },
      onError: () => {},
    })
    const front = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
    front.listen(0, '127.0.0.1')
    await once(front, 'listening')
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${(front.address() as AddressInfo).port}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    })
    try {
      const failures = await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          const file = await toFile(
            Buffer.from(
              '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}\n',
            ),
            'in.jsonl',
          )
          return client.files.create({ file, purpose: 'batch' }).catch((error: unknown) => error)
        }),
      )
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(OpenAI.APIError)
        const error = failure as InstanceType<typeof OpenAI.APIError>
        expect(error.status).toBe(502)
        expect(error.error).toMatchObject({ type: 'server_error', code: 'upstream_error', param: null })
        expect(JSON.stringify(error.error)).not.toContain(SECRET)
      }
      expect(delivered).toHaveLength(PARALLEL)
      for (const bytes of delivered) expect(bytes).toBeLessThanOrEqual(MAX_ERROR_BODY_BYTES + DELIVERY_SLACK_BYTES)
    } finally {
      front.closeAllConnections()
      front.close()
      await kit.close()
      await agent.close()
    }
  })
})

describe('readBoundedText', () => {
  it('pulls no more than the limit and one chunk from a body, then destroys it', async () => {
    let pulled = 0
    const body = new Readable({
      highWaterMark: 0,
      read() {
        pulled += CHUNK_BYTES
        this.push(Buffer.alloc(CHUNK_BYTES, 'y'))
      },
    })
    const text = await readBoundedText(body, 100 * 1024)
    expect(text).toHaveLength(100 * 1024)
    expect(pulled).toBeLessThanOrEqual(100 * 1024 + CHUNK_BYTES)
    expect(body.destroyed).toBe(true)
  })

  it('reads what arrived of a body that fails part way', async () => {
    const body = Readable.from(
      (async function* () {
        yield Buffer.from('{"error":')
        throw new Error('connection reset')
      })(),
    )
    expect(await readBoundedText(body)).toBe('{"error":')
  })
})
