import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'

const LINES = 50_000
const LINE_BYTES = 4_194
const TOTAL = LINES * LINE_BYTES // 209,700,000 bytes: over 200 MB
/**
 * What the server's peak RSS may grow by while 200 MiB pass through it: well under the file, which
 * held whole would add 200 MiB at least. Measured: 23–46 MiB for the upload and 70–99 MiB for the
 * download (chunks not yet collected by the GC), varying from run to run of one commit.
 */
const MAX_GROWTH_BYTES = 128 * 1024 * 1024

let fake: FakeOpenAI
let server: ChildProcess
let port: number

beforeAll(async () => {
  fake = await startFakeOpenAI()
  server = spawn(
    process.execPath,
    [
      '--conditions=@batchkit/source',
      '--import',
      'tsx',
      fileURLToPath(new URL('./fixtures/memory-server.ts', import.meta.url)),
    ],
    {
      env: {
        ...process.env,
        UPSTREAM_API_KEY: fake.apiKey,
        UPSTREAM_BASE_URL: fake.baseURL,
        MAX_BATCH_FILE_BYTES: String(TOTAL),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const [first] = await once(createInterface({ input: server.stdout as Readable }), 'line')
  port = JSON.parse(first as string).port
})

afterAll(async () => {
  server?.kill()
  await fake?.close()
})

/** A batch input file of exactly LINES lines of LINE_BYTES bytes, made as it is read. */
function* jsonl(): Generator<Buffer> {
  for (let i = 0; i < LINES; i++) {
    const head = { custom_id: `r-${i}`, method: 'POST', url: '/v1/chat/completions' }
    const line = (content: string) =>
      JSON.stringify({ ...head, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] } })
    // Two-byte characters, so network chunks split them: the validator must not care.
    const room = LINE_BYTES - 1 - Buffer.byteLength(line(''))
    yield Buffer.from(`${line('ü'.repeat(Math.floor(room / 2)) + 'x'.repeat(room % 2))}\n`)
  }
}

async function memory() {
  const response = await fetch(`http://127.0.0.1:${port}/memory`)
  return (await response.json()) as { maxRssBytes: number; rssBytes: number }
}

it('streams a 200 MB upload and download through Express with bounded server memory', async () => {
  const lines = jsonl()
  const sample = lines.next().value as Buffer
  expect(sample.length).toBe(LINE_BYTES)
  const before = await memory()

  const boundary = 'memory-test-boundary'
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n`,
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  async function* body() {
    yield head
    yield* jsonl()
    yield tail
  }
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/files',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  })
  const responded = once(req, 'response')
  await pipeline(Readable.from(body()), req)
  const [res] = (await responded) as [import('node:http').IncomingMessage]
  let text = ''
  for await (const chunk of res) text += chunk
  expect(res.statusCode, text).toBe(200)
  const file = JSON.parse(text)
  expect(file.bytes).toBe(TOTAL)
  // Above OpenAI's 200 MB for one batch, the provider holds the file in parts of at most that, which make it whole.
  const parts = [...fake.files.values()].filter((f) => f.purpose === 'batch')
  expect(parts.map((f) => f.bytes).reduce((a, b) => a + b, 0)).toBe(TOTAL)
  expect(Math.max(...parts.map((f) => f.bytes))).toBeLessThanOrEqual(200_000_000)

  const after = await memory()
  const growth = after.maxRssBytes - before.rssBytes
  console.log(
    `200 MB upload: server RSS before ${(before.rssBytes / 2 ** 20).toFixed(0)} MiB, peak ${(after.maxRssBytes / 2 ** 20).toFixed(0)} MiB, growth ${(growth / 2 ** 20).toFixed(0)} MiB for ${(TOTAL / 2 ** 20).toFixed(0)} MiB streamed`,
  )
  expect(growth).toBeLessThan(MAX_GROWTH_BYTES)

  let downloaded = 0
  const content = await fetch(`http://127.0.0.1:${port}/v1/files/${file.id}/content`)
  expect(content.status).toBe(200)
  for await (const chunk of content.body as unknown as AsyncIterable<Uint8Array>) downloaded += chunk.length
  expect(downloaded).toBe(TOTAL)
  const end = await memory()
  console.log(`200 MB download: server peak ${(end.maxRssBytes / 2 ** 20).toFixed(0)} MiB`)
  expect(end.maxRssBytes - before.rssBytes).toBeLessThan(MAX_GROWTH_BYTES)
})
