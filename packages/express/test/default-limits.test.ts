import { once } from 'node:events'
import { type IncomingMessage, request } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Harness, KEYS, startHarness } from './harness.js'

/**
 * OpenAI refuses batch input files over 200 MB (200,000,000 bytes); batchkit, left at its defaults, must
 * take a file of exactly that size and refuse one byte more, as OpenAI would, before the provider has it.
 */
const OPENAI_BATCH_FILE_LIMIT = 200_000_000
const LINE_BYTES = 100_000
const LINES = OPENAI_BATCH_FILE_LIMIT / LINE_BYTES // 2,000 requests, well under the 50,000 allowed

let h: Harness

beforeAll(async () => {
  // No `limits` option: the defaults are what is tested.
  h = await startHarness()
})
afterAll(() => h.close())

/** Valid request lines of LINE_BYTES bytes each, the last `extra` bytes longer, made as they are sent. */
function* batchInput(extra: number): Generator<Buffer> {
  for (let i = 0; i < LINES; i++) {
    const line = (content: string) =>
      JSON.stringify({
        custom_id: `request-${String(i).padStart(5, '0')}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] },
      })
    const room = LINE_BYTES - 1 - Buffer.byteLength(line('')) + (i === LINES - 1 ? extra : 0)
    yield Buffer.from(`${line('x'.repeat(room))}\n`)
  }
}

/** Streams a multipart upload of `batchInput(extra)` to the Express app; resolves with the answer. */
async function upload(extra: number): Promise<{ status: number; body: { bytes?: number; error?: unknown } }> {
  const boundary = 'default-limits-boundary'
  async function* body() {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n`,
    )
    yield* batchInput(extra)
    yield Buffer.from(`\r\n--${boundary}--\r\n`)
  }
  const { port } = new URL(h.baseURL)
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/files',
    headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
  })
  const responded = once(req, 'response') as Promise<[IncomingMessage]>
  // The server may answer (and stop reading) as soon as the limit is passed.
  await pipeline(Readable.from(body()), req).catch(() => undefined)
  const [res] = await responded
  let text = ''
  for await (const chunk of res) text += chunk
  return { status: res.statusCode as number, body: JSON.parse(text) }
}

describe("OpenAI's 200 MB batch file limit, by default", () => {
  it('takes a batch input file of exactly 200,000,000 bytes', async () => {
    const before = h.fake.files.size
    const { status, body } = await upload(0)
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.bytes).toBe(OPENAI_BATCH_FILE_LIMIT)
    expect(h.fake.files.size).toBe(before + 1)
  })

  it('refuses one byte more with 413 file_too_large, naming the limit, and leaves nothing upstream', async () => {
    const before = { ours: (await h.client().files.list()).data.length, theirs: h.fake.files.size }
    const { status, body } = await upload(1)
    expect(status).toBe(413)
    expect(body.error).toEqual({
      type: 'invalid_request_error',
      code: 'file_too_large',
      param: 'file',
      message: 'Batch input files can be at most 200000000 bytes.',
    })
    expect((await h.client().files.list()).data.length).toBe(before.ours)
    expect(h.fake.files.size).toBe(before.theirs)
  })
})
