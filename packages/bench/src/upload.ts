import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { type Dispatcher, request } from 'undici'
import { ENDPOINT, MODEL } from './constants.js'
import type { Target } from './targets.js'

/** Bytes per generated request line, newline included: OpenAI's limits (200 MB, 50,000 requests) imply at least this. */
export const DEFAULT_LINE_BYTES = 4_096

const ID_DIGITS = 9
const LINES_PER_CHUNK = 16

/** The shape of a generated batch input file. */
export interface JsonlShape {
  lines: number
  lineBytes: number
  /** `lines * lineBytes` */
  bytes: number
}

/** The largest whole number of `lineBytes` lines that fits in `totalBytes`. */
export function jsonlShape(totalBytes: number, lineBytes = DEFAULT_LINE_BYTES): JsonlShape {
  const lines = Math.floor(totalBytes / lineBytes)
  if (lines >= 10 ** ID_DIGITS) throw new RangeError('too many lines for the custom_id width')
  return { lines, lineBytes, bytes: lines * lineBytes }
}

/** One valid request line of exactly `lineBytes` bytes with custom_id `r-000000000`; returns it and where the digits are. */
function templateLine(lineBytes: number): { line: Buffer; idOffset: number } {
  const prefix = `{"custom_id":"r-${'0'.repeat(ID_DIGITS)}","method":"POST","url":"${ENDPOINT}","body":{"model":"${MODEL}","messages":[{"role":"user","content":"`
  const suffix = '"}]}}\n'
  const room = lineBytes - prefix.length - suffix.length
  if (room < 1) throw new RangeError(`a line needs at least ${prefix.length + suffix.length + 1} bytes`)
  const words = 'Summarise the following paragraph in one sentence, keeping every number exact. '
  const content = words.repeat(Math.ceil(room / words.length)).slice(0, room)
  return { line: Buffer.from(prefix + content + suffix, 'latin1'), idOffset: prefix.indexOf('r-') + 2 }
}

/**
 * A valid batch input file made as it is read: `shape.lines` chat-completion requests for one model,
 * each `shape.lineBytes` bytes, with unique custom_ids `r-000000000`, `r-000000001`, …, in chunks of
 * 16 lines. Only one chunk is made ahead of the reader.
 */
export function* jsonlChunks(shape: JsonlShape): Generator<Buffer> {
  const { line, idOffset } = templateLine(shape.lineBytes)
  const template = Buffer.concat(Array.from({ length: LINES_PER_CHUNK }, () => line))
  for (let first = 0; first < shape.lines; first += LINES_PER_CHUNK) {
    const count = Math.min(LINES_PER_CHUNK, shape.lines - first)
    const chunk = Buffer.allocUnsafe(count * shape.lineBytes)
    template.copy(chunk, 0, 0, chunk.length)
    for (let i = 0; i < count; i++) {
      chunk.write(String(first + i).padStart(ID_DIGITS, '0'), i * shape.lineBytes + idOffset, 'latin1')
    }
    yield chunk
  }
}

/** The outcome of one upload. */
export interface UploadResult {
  /** The file id the target answered with. */
  id: string
  /** Bytes of the JSONL file (the multipart body is a few hundred bytes more). */
  bytes: number
  /** From the first byte sent to the File object read. */
  seconds: number
}

/**
 * Uploads a generated JSONL file as `multipart/form-data` (`purpose=batch`, then `file`), streamed with a
 * known Content-Length, and waits for the File object.
 */
export async function uploadJsonl(dispatcher: Dispatcher, target: Target, shape: JsonlShape): Promise<UploadResult> {
  const boundary = `bench-${Date.now().toString(16)}`
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="input.jsonl"\r\n` +
      'Content-Type: application/jsonl\r\n\r\n',
  )
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  function* body(): Generator<Buffer> {
    yield head
    yield* jsonlChunks(shape)
    yield tail
  }
  const started = performance.now()
  const response = await request(`${target.baseURL}/files`, {
    method: 'POST',
    dispatcher,
    headers: {
      ...target.headers,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + shape.bytes + tail.length),
    },
    body: Readable.from(body(), { objectMode: false }),
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  })
  const text = await response.body.text()
  const seconds = (performance.now() - started) / 1000
  if (response.statusCode !== 200) {
    throw new Error(`upload to ${target.label}: ${response.statusCode} ${text.slice(0, 300)}`)
  }
  const file = JSON.parse(text) as { id: string; bytes?: number }
  return { id: file.id, bytes: shape.bytes, seconds }
}
