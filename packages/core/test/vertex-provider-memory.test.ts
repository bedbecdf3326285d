import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { open } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { type FakeGcp, startFakeGcp } from '@batchkit/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'

// A 220 MB batch file, made as it is read, goes through the Vertex provider's tee (the original and its
// conversion, two resumable uploads at once) in a process of its own, whose memory is sampled; the fake GCS
// stays in this one.

const LINES = 50_000
const LINE_BYTES = 4_400
const TOTAL = LINES * LINE_BYTES // 220,000,000 bytes
/**
 * How much the uploading process's peak RSS may grow while the file passes: about half of it at most. Each
 * upload holds at most one chunk (8 MiB) until GCS acknowledges it. Measured: 56 MiB for 22 MB, 72 to 84 MiB
 * for 220 MB, 84 MiB for 440 MB: a plateau, most of it buffers the garbage collector has not taken back yet
 * (`arrayBuffers` at the peak is about 53 MB, of which 16 MiB are the two chunks).
 */
const MAX_GROWTH_BYTES = 112 * 1024 * 1024

const PROVIDER = fileURLToPath(new URL('../src/providers/vertex/provider.ts', import.meta.url))

/**
 * The child: LINES lines of exactly LINE_BYTES bytes with 2-, 3- and 4-byte characters, cut into pieces of
 * 65,521 bytes (a prime, so characters and lines are split everywhere), uploaded as a batch file. Prints
 * `{id, bytes, md5, growth}`.
 */
const CHILD = `
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
const { vertex } = await import(process.env.PROVIDER)
const LINES = ${LINES}, LINE_BYTES = ${LINE_BYTES}, PIECE = 65521
const md5 = createHash('md5')
function* jsonl() {
  let parts = [], size = 0
  for (let i = 0; i < LINES; i++) {
    const line = (content) => JSON.stringify({ custom_id: 'r-' + i, method: 'POST', url: '/v1/chat/completions',
      body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content }] } })
    const room = LINE_BYTES - 1 - Buffer.byteLength(line(''))
    const bytes = Buffer.from(line('ü模🌍'.repeat(Math.floor(room / 9)) + 'x'.repeat(room % 9)) + '\\n')
    md5.update(bytes)
    parts.push(bytes)
    size += bytes.length
    if (size >= PIECE) {
      const joined = Buffer.concat(parts, size)
      yield joined.subarray(0, PIECE)
      parts = [joined.subarray(PIECE)]
      size -= PIECE
    }
  }
  if (size > 0) yield Buffer.concat(parts, size)
}
const provider = vertex({ project: 'p', location: 'us-central1', bucket: 'bkt', accessToken: process.env.TOKEN,
  vertexEndpoint: process.env.VERTEX, gcsEndpoint: process.env.GCS })
const before = process.memoryUsage.rss()
let peak = before
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 10)
const file = await provider.uploadFile({ body: Readable.from(jsonl()), filename: 'big.jsonl', tag: 'file-memory',
  purpose: Promise.resolve('batch'), expiresAfter: Promise.resolve(null), signal: new AbortController().signal })
clearInterval(timer)
peak = Math.max(peak, process.memoryUsage.rss())
await provider.close()
process.stdout.write(JSON.stringify({ id: file.id, bytes: file.bytes, md5: md5.digest('base64'), growth: peak - before }))
`

let fake: FakeGcp

beforeAll(async () => {
  fake = await startFakeGcp({ buckets: ['bkt'] })
})

afterAll(async () => {
  await fake?.close()
})

it('streams a 220 MB multibyte batch file into both objects with bounded memory', async () => {
  const child = spawn(
    process.execPath,
    ['--conditions=@batchkit/source', '--import', 'tsx', '--input-type=module', '-e', CHILD],
    {
      env: {
        ...process.env,
        PROVIDER,
        TOKEN: fake.token,
        VERTEX: fake.vertexBaseURL,
        GCS: fake.gcsBaseURL,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  child.stdout.on('data', (chunk) => {
    out += chunk
  })
  const [code] = await once(child, 'exit')
  expect(code).toBe(0)
  const result = JSON.parse(out) as { id: string; bytes: number; md5: string; growth: number }
  console.log(`the uploading process's RSS grew by ${(result.growth / 1024 / 1024).toFixed(1)} MiB for ${TOTAL} bytes`)
  expect(result.growth).toBeLessThan(MAX_GROWTH_BYTES)

  expect(result.bytes).toBe(TOTAL)
  const original = fake.objects.get(`bkt/batchkit/files/${result.id}/original`)!
  expect(original.size).toBe(TOTAL)
  expect(original.md5Hash).toBe(result.md5)

  const converted = fake.objects.get(`bkt/batchkit/files/${result.id}/vertex.jsonl`)!
  expect(converted.metadata).toEqual({ batchkit_model: 'gemini-2.5-flash', batchkit_tag: 'file-memory' })
  const handle = await open(converted.path)
  try {
    let lines = 0
    for await (const chunk of handle.createReadStream({ autoClose: false })) {
      for (const byte of chunk as Buffer) if (byte === 0x0a) lines++
    }
    expect(lines).toBe(LINES)
    const tail = Buffer.alloc(64 * 1024)
    const { bytesRead } = await handle.read(tail, 0, tail.length, converted.size - tail.length)
    const last = JSON.parse(tail.subarray(0, bytesRead).toString('utf8').trimEnd().split('\n').at(-1)!)
    expect(last.custom_id).toBe(`r-${LINES - 1}`)
    expect(last.request.contents[0].parts[0].text).toMatch(/^(ü模🌍)+x*$/)
  } finally {
    await handle.close()
  }
})
