import type { IncomingHttpHeaders } from 'node:http'
import { PassThrough, Readable } from 'node:stream'
import { setTimeout } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/errors.js'
import { parseMultipartUpload } from '../src/http/multipart.js'

// ---------------------------------------------------------------------------------------------
// Building multipart/form-data bodies by hand
// ---------------------------------------------------------------------------------------------

const BOUNDARY = '----batchkit-test-7MA4YWxkTrZu0gW'
const HEADERS: IncomingHttpHeaders = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }

type Part =
  | { name: string; value: string }
  | { name: string; filename?: string; content: string | Buffer; contentType?: string }

const field = (name: string, value: string): Part => ({ name, value })
const file = (content: string | Buffer, filename = 'input.jsonl', name = 'file'): Part => ({
  name,
  filename,
  content,
})

function partHead(part: Part): string {
  if ('value' in part) return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"\r\n\r\n`
  return (
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"; filename="${part.filename ?? ''}"\r\n` +
    `Content-Type: ${part.contentType ?? 'application/octet-stream'}\r\n\r\n`
  )
}

/** The bytes of a form; `close: false` leaves out the closing boundary. */
function form(parts: Part[], { close = true } = {}): Buffer {
  const pieces: Buffer[] = []
  for (const part of parts) {
    pieces.push(Buffer.from(partHead(part)))
    pieces.push(Buffer.from('value' in part ? part.value : part.content))
    pieces.push(Buffer.from('\r\n'))
  }
  if (close) pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return Buffer.concat(pieces)
}

/**
 * A request body that delivers `bytes` in chunks of `chunkSize` (all at once by default), each chunk
 * pushed from its own macrotask, exactly as a socket delivers packets to an IncomingMessage.
 */
function bodyOf(bytes: Buffer, chunkSize = bytes.length): Readable {
  const body = new Readable({ read() {} })
  let start = 0
  const deliver = () => {
    if (start >= bytes.length) {
      body.push(null)
      return
    }
    body.push(bytes.subarray(start, start + chunkSize))
    start += chunkSize
    setImmediate(deliver)
  }
  setImmediate(deliver)
  return body
}

/**
 * Runs `fn`, collecting the errors that nobody handled meanwhile: in a server each of them would be an
 * unhandled 'error' event, which kills the process. (Vitest's own handlers are set aside meanwhile.)
 */
async function unhandledErrorsDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const saved = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const unhandled: unknown[] = []
  const collect = (error: unknown) => unhandled.push(error)
  process.on('uncaughtException', collect)
  try {
    await fn()
    await setTimeout(20)
  } finally {
    process.off('uncaughtException', collect)
    for (const listener of saved) process.on('uncaughtException', listener)
  }
  return unhandled
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function parse(parts: Part[], chunkSize?: number) {
  const bytes = form(parts)
  return parseMultipartUpload(bodyOf(bytes, chunkSize), HEADERS)
}

/** Awaits `promise`, which should reject, and returns the reason. */
async function rejectionOf(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise
  } catch (error) {
    return error as ApiError
  }
  throw new Error('expected a rejection')
}

const JSONL = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n'

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('parseMultipartUpload: fields in any order', () => {
  it.each([1, 7, 64, undefined])('reads a file followed by its purpose (body chunks of %s)', async (chunkSize) => {
    const upload = await parse([file(JSONL, 'requests.jsonl'), field('purpose', 'batch')], chunkSize)
    expect(upload.filename).toBe('requests.jsonl')
    expect((await readAll(upload.file)).toString()).toBe(JSONL)
    await expect(upload.purpose).resolves.toBe('batch')
    await expect(upload.expiresAfter).resolves.toBeNull()
  })

  it.each([1, 7, 64, undefined])('reads a purpose followed by the file (body chunks of %s)', async (chunkSize) => {
    const upload = await parse([field('purpose', 'user_data'), file(JSONL)], chunkSize)
    // The purpose came first, so it is known before a byte of the file is read.
    await expect(upload.purpose).resolves.toBe('user_data')
    expect((await readAll(upload.file)).toString()).toBe(JSONL)
    await expect(upload.expiresAfter).resolves.toBeNull()
  })

  it('accepts every upload purpose', async () => {
    for (const purpose of ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals']) {
      const upload = await parse([field('purpose', purpose), file('x')])
      await readAll(upload.file)
      await expect(upload.purpose).resolves.toBe(purpose)
    }
  })

  it('resolves as soon as the file part begins, before its bytes have arrived', async () => {
    const body = new PassThrough()
    const bytes = form([file('0123456789'.repeat(1000)), field('purpose', 'batch')])
    const fileStart = bytes.indexOf('0123456789')
    body.write(bytes.subarray(0, fileStart + 5))
    const upload = await parseMultipartUpload(body, HEADERS)
    const content = readAll(upload.file)
    body.end(bytes.subarray(fileStart + 5))
    expect((await content).toString()).toBe('0123456789'.repeat(1000))
    await expect(upload.purpose).resolves.toBe('batch')
  })

  it('passes binary file bytes through exactly, including CRLFs and dashes', async () => {
    const binary = Buffer.concat([
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256)),
      Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}\r\n--\r\n`),
    ])
    for (const chunkSize of [1, 13, undefined]) {
      const upload = await parse([file(binary), field('purpose', 'vision')], chunkSize)
      expect((await readAll(upload.file)).equals(binary)).toBe(true)
    }
  })

  it('streams a large file with backpressure', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh')
    const upload = await parse([field('purpose', 'batch'), file(big)], 64 * 1024)
    expect((await readAll(upload.file)).equals(big)).toBe(true)
  })

  it('reads an empty file', async () => {
    const upload = await parse([file(''), field('purpose', 'batch')])
    expect((await readAll(upload.file)).length).toBe(0)
    await expect(upload.purpose).resolves.toBe('batch')
  })

  it.each([1, 5, undefined])(
    'reads a filename sent as raw UTF-8 bytes, as curl sends it (body chunks of %s)',
    async (chunkSize) => {
      const upload = await parse([file(JSONL, 'données-日本.jsonl'), field('purpose', 'batch')], chunkSize)
      expect(upload.filename).toBe('données-日本.jsonl')
      await readAll(upload.file)
    },
  )

  it("reads an RFC 5987 filename* (UTF-8''…), preferred to a plain filename", async () => {
    const bytes = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="fallback.jsonl"; ` +
        `filename*=UTF-8''${encodeURIComponent('données-日本.jsonl')}\r\n\r\n${JSONL}\r\n` +
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${BOUNDARY}--\r\n`,
    )
    const upload = await parseMultipartUpload(bodyOf(bytes), HEADERS)
    expect(upload.filename).toBe('données-日本.jsonl')
    await readAll(upload.file)
  })

  it("names a file without a filename 'file'", async () => {
    const upload = await parse([file(JSONL, ''), field('purpose', 'batch')])
    expect(upload.filename).toBe('file')
    await readAll(upload.file)
  })
})

describe('parseMultipartUpload: expires_after', () => {
  it('reads the bracket form', async () => {
    const upload = await parse([
      field('purpose', 'batch'),
      field('expires_after[anchor]', 'created_at'),
      field('expires_after[seconds]', '3600'),
      file(JSONL),
    ])
    await readAll(upload.file)
    await expect(upload.expiresAfter).resolves.toEqual({ anchor: 'created_at', seconds: '3600' })
  })

  it('reads the dot form, also after the file', async () => {
    const upload = await parse([
      file(JSONL),
      field('purpose', 'batch'),
      field('expires_after.anchor', 'created_at'),
      field('expires_after.seconds', '2592000'),
    ])
    await readAll(upload.file)
    await expect(upload.expiresAfter).resolves.toEqual({ anchor: 'created_at', seconds: '2592000' })
  })

  it('passes values through as sent, leaving their checks to the file service', async () => {
    const upload = await parse([
      field('purpose', 'batch'),
      field('expires_after[anchor]', 'last_active_at'),
      field('expires_after[seconds]', '60'),
      file(JSONL),
    ])
    await readAll(upload.file)
    await expect(upload.expiresAfter).resolves.toEqual({ anchor: 'last_active_at', seconds: '60' })
  })
})

/** A body whose first `split` bytes arrive now and the rest when `sendRest()` is called. */
function splitBody(bytes: Buffer, split: number) {
  const body = new PassThrough()
  body.write(bytes.subarray(0, split))
  return { body, sendRest: () => body.end(bytes.subarray(split)) }
}

describe('parseMultipartUpload: bad forms', () => {
  it("rejects an unknown field with OpenAI's 400 (param and code null)", async () => {
    const error = await rejectionOf(parse([field('purpose', 'batch'), field('colour', 'blue'), file(JSONL)]))
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 400, code: null, param: null })
    expect(error.message).toBe('Unrecognized request argument supplied: colour')
  })

  it('fails the file stream when an unknown field arrives while the file is still streaming', async () => {
    const bytes = form([file(JSONL.repeat(20)), field('purpose', 'batch'), field('colour', 'blue')])
    const { body, sendRest } = splitBody(bytes, bytes.indexOf(JSONL) + 10)
    const upload = await parseMultipartUpload(body, HEADERS)
    const content = rejectionOf(readAll(upload.file))
    sendRest()
    const error = await content
    expect(error).toMatchObject({ status: 400, message: 'Unrecognized request argument supplied: colour' })
    expect(await rejectionOf(upload.expiresAfter)).toBe(error)
  })

  it('fails expires_after when an unknown field follows a file that was already read', async () => {
    // By the time the field arrives the file stream has ended; the failure must still reach the caller.
    const bytes = form([field('purpose', 'batch'), file(JSONL), field('colour', 'blue')])
    const { body, sendRest } = splitBody(bytes, bytes.indexOf('Content-Disposition: form-data; name="colour"'))
    const upload = await parseMultipartUpload(body, HEADERS)
    expect((await readAll(upload.file)).toString()).toBe(JSONL)
    sendRest()
    expect(await rejectionOf(upload.expiresAfter)).toMatchObject({
      status: 400,
      message: 'Unrecognized request argument supplied: colour',
    })
  })

  it('fails, without an unhandled error, a small upload whose unknown field comes in the same packet as the file', async () => {
    // A whole small form in one packet: the field is parsed before the caller can listen to the file stream.
    let error: ApiError | undefined
    const unhandled = await unhandledErrorsDuring(async () => {
      const upload = await parse([file(JSONL), field('purpose', 'batch'), field('colour', 'blue')])
      error = await rejectionOf(Promise.all([readAll(upload.file), upload.purpose, upload.expiresAfter]))
    })
    expect(unhandled.map(String)).toEqual([])
    expect(error).toMatchObject({ status: 400, message: 'Unrecognized request argument supplied: colour' })
  })

  it('resolves the purpose as sent, before or after the file, leaving its check to the file service', async () => {
    const before = await parse([field('purpose', 'batch_output'), file(JSONL)])
    await expect(before.purpose).resolves.toBe('batch_output')
    const bytes = form([file(JSONL), field('purpose', 'nonsense')])
    const { body, sendRest } = splitBody(bytes, bytes.indexOf('Content-Disposition: form-data; name="purpose"'))
    const after = await parseMultipartUpload(body, HEADERS)
    expect((await readAll(after.file)).toString()).toBe(JSONL)
    sendRest()
    await expect(after.purpose).resolves.toBe('nonsense')
  })

  it('rejects an over-long field value with 400 invalid_value', async () => {
    const error = await rejectionOf(parse([field('purpose', 'b'.repeat(5000)), file(JSONL)]))
    expect(error).toMatchObject({ status: 400, code: 'invalid_value', param: 'purpose' })
    expect(error.message).toBe("The value of 'purpose' is too long.")
  })

  it('rejects a form without a file with 400 missing_required_parameter on file', async () => {
    const error = await rejectionOf(parse([field('purpose', 'batch')]))
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 400, code: 'missing_required_parameter', param: 'file' })
    expect(error.message).toBe("Missing required parameter: 'file'.")
  })

  it('rejects an empty form with missing file', async () => {
    const error = await rejectionOf(parseMultipartUpload(bodyOf(Buffer.from(`--${BOUNDARY}--\r\n`)), HEADERS))
    expect(error).toMatchObject({ status: 400, code: 'missing_required_parameter', param: 'file' })
  })

  it('rejects the purpose promise with missing_required_parameter when there is no purpose', async () => {
    const upload = await parse([file(JSONL)])
    expect((await readAll(upload.file)).toString()).toBe(JSONL)
    const error = await rejectionOf(upload.purpose)
    expect(error).toMatchObject({ status: 400, code: 'missing_required_parameter', param: 'purpose' })
    expect(error.message).toBe("Missing required parameter: 'purpose'.")
    await expect(upload.expiresAfter).resolves.toBeNull()
  })

  it('rejects a file in a field other than file with 400', async () => {
    const error = await rejectionOf(parse([field('purpose', 'batch'), file(JSONL, 'a.jsonl', 'document')]))
    expect(error).toMatchObject({ status: 400, code: 'invalid_multipart', param: 'document' })
  })

  it('fails an upload whose second file comes after the first was read', async () => {
    const bytes = form([field('purpose', 'batch'), file(JSONL, 'one.jsonl'), file(JSONL, 'two.jsonl')])
    const { body, sendRest } = splitBody(bytes, bytes.indexOf('filename="two.jsonl"'))
    const upload = await parseMultipartUpload(body, HEADERS)
    expect((await readAll(upload.file)).toString()).toBe(JSONL)
    sendRest()
    expect(await rejectionOf(upload.expiresAfter)).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails the file stream when a second file arrives while the first is still streaming', async () => {
    const bytes = form([field('purpose', 'batch'), file(JSONL.repeat(20), 'one.jsonl'), file(JSONL, 'two.jsonl')])
    const { body, sendRest } = splitBody(bytes, bytes.indexOf(JSONL) + 10)
    const upload = await parseMultipartUpload(body, HEADERS)
    const content = rejectionOf(readAll(upload.file))
    sendRest()
    expect(await content).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails, without an unhandled error, a small upload of two files in one packet', async () => {
    let error: ApiError | undefined
    const unhandled = await unhandledErrorsDuring(async () => {
      const upload = await parse([file(JSONL, 'one.jsonl'), file(JSONL, 'two.jsonl'), field('purpose', 'batch')])
      error = await rejectionOf(Promise.all([readAll(upload.file), upload.expiresAfter]))
    })
    expect(unhandled.map(String)).toEqual([])
    expect(error).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails a second file before the first with 400', async () => {
    const error = await rejectionOf(
      parse([field('purpose', 'batch'), file(JSONL, 'a.jsonl', 'other'), file(JSONL, 'b.jsonl')]),
    )
    expect(error).toMatchObject({ status: 400 })
  })

  it('fails the file stream of a truncated body (no closing boundary)', async () => {
    const bytes = form([field('purpose', 'batch'), file(JSONL.repeat(10))])
    const truncated = bytes.subarray(0, bytes.indexOf(JSONL) + JSONL.length * 3)
    const upload = await parseMultipartUpload(bodyOf(truncated, 16), HEADERS)
    await expect(readAll(upload.file)).rejects.toThrow()
    expect(await rejectionOf(upload.expiresAfter)).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails the file stream of a truncated body, and says why through the fields', async () => {
    const bytes = form([field('purpose', 'batch'), file(JSONL.repeat(10))])
    const truncated = bytes.subarray(0, bytes.indexOf(JSONL) + JSONL.length * 3)
    const upload = await parseMultipartUpload(bodyOf(truncated, 16), HEADERS)
    // busboy fails the file stream with its own error first; the 400 comes with the field promises.
    expect(await rejectionOf(readAll(upload.file))).toBeInstanceOf(Error)
    expect(await rejectionOf(upload.expiresAfter)).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails a form that ends without its closing boundary', async () => {
    const bytes = form([file(JSONL), field('purpose', 'batch')], { close: false })
    const upload = await parseMultipartUpload(bodyOf(bytes), HEADERS)
    const error = await rejectionOf(readAll(upload.file).then(() => upload.expiresAfter))
    expect(error).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('fails the file stream when the client goes away mid-upload', async () => {
    const body = new PassThrough()
    const bytes = form([file(JSONL.repeat(100)), field('purpose', 'batch')])
    body.write(bytes.subarray(0, 500))
    const upload = await parseMultipartUpload(body, HEADERS)
    const content = rejectionOf(readAll(upload.file))
    body.destroy()
    expect(await content).toMatchObject({ status: 400, code: 'upload_incomplete' })
    expect(await rejectionOf(upload.purpose)).toMatchObject({ code: 'upload_incomplete' })
  })

  it('rejects garbage that is not a multipart body', async () => {
    const error = await rejectionOf(parseMultipartUpload(bodyOf(Buffer.from('this is not a form')), HEADERS))
    expect(error).toMatchObject({ status: 400 })
  })

  it('rejects a content-type without a boundary with 400 invalid_multipart', async () => {
    const error = await rejectionOf(
      parseMultipartUpload(bodyOf(form([file(JSONL)])), { 'content-type': 'multipart/form-data' }),
    )
    expect(error).toMatchObject({ status: 400, code: 'invalid_multipart' })
  })

  it('rejects a body cut inside the part headers with 400', async () => {
    const bytes = form([file(JSONL), field('purpose', 'batch')])
    const error = await rejectionOf(parseMultipartUpload(bodyOf(bytes.subarray(0, 30)), HEADERS))
    expect(error).toMatchObject({ status: 400 })
  })
})
