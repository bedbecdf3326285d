import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setImmediate as nextMacrotask } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/errors.js'
import { JsonlValidator } from '../src/files/jsonl-validator.js'
import { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from '../src/files/upload-limits.js'
import type { UploadPurpose } from '../src/types.js'

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const CHUNK_SIZES = [1, 2, 3, 7, 64, Number.POSITIVE_INFINITY]
const URL = '/v1/chat/completions'
const MODEL = 'gpt-4o-mini'

/** A request line as an object; `overrides` replace top-level fields (`undefined` removes one). */
function request(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const line: Record<string, unknown> = {
    custom_id: id,
    method: 'POST',
    url: URL,
    body: { model: MODEL, messages: [{ role: 'user', content: `hello ${id}` }] },
    ...overrides,
  }
  for (const key of Object.keys(line)) if (line[key] === undefined) delete line[key]
  return line
}

/** A request line as JSON text, without its newline. */
function line(id: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(request(id, overrides))
}

/** Lines joined into a JSONL file with a trailing newline. */
function jsonl(...lines: string[]): string {
  return `${lines.join('\n')}\n`
}

/** A promise with its settle functions outside. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** `bytes` cut into pieces of `size` bytes (the whole buffer for an infinite size). */
function chunksOf(bytes: Buffer, size: number): Buffer[] {
  if (bytes.length === 0) return []
  if (!Number.isFinite(size)) return [bytes]
  const chunks: Buffer[] = []
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size))
  return chunks
}

interface RunOptions {
  /** Bytes per chunk written to the validator. @default the whole input in one chunk */
  chunkSize?: number
  /** @default 'batch' */
  purpose?: UploadPurpose
  /** When the purpose resolves: before any byte, or only once the input stream has ended. @default 'before' */
  purposeArrives?: 'before' | 'after-end'
  limits?: Partial<UploadLimits>
}

interface Outcome {
  /** Every byte the validator let through. */
  output: Buffer
  /** The error the stream failed with, if any. */
  error: ApiError | undefined
  validator: JsonlValidator
  /** For `purposeArrives: 'after-end'`: whether the validator's writable side had ended when the purpose resolved. */
  endedBeforePurpose: boolean | undefined
}

/** Pipes `input` through a fresh validator in chunks of `chunkSize` and collects what comes out. */
async function validate(input: string | Buffer, options: RunOptions = {}): Promise<Outcome> {
  const { chunkSize = Number.POSITIVE_INFINITY, purpose = 'batch', purposeArrives = 'before', limits } = options
  const bytes = typeof input === 'string' ? Buffer.from(input) : input
  const purposeField = deferred<UploadPurpose>()
  if (purposeArrives === 'before') purposeField.resolve(purpose)
  const validator = new JsonlValidator({ ...DEFAULT_UPLOAD_LIMITS, ...limits }, purposeField.promise)
  const source = Readable.from(chunksOf(bytes, chunkSize))
  let endedBeforePurpose: boolean | undefined
  if (purposeArrives === 'after-end') {
    source.once('end', async () => {
      await nextMacrotask()
      endedBeforePurpose = validator.writableEnded && validator.writableLength === 0
      purposeField.resolve(purpose)
    })
  }
  const output: Buffer[] = []
  let error: ApiError | undefined
  try {
    await pipeline(source, validator, async (stream: AsyncIterable<Buffer>) => {
      for await (const chunk of stream) output.push(chunk)
    })
  } catch (caught) {
    error = caught as ApiError
  }
  return { output: Buffer.concat(output), error, validator, endedBeforePurpose }
}

/** What a run decided, comparable across runs. */
function verdict(outcome: Outcome) {
  const { error } = outcome
  if (!error) return { ok: true, output: outcome.output.toString('hex'), summary: outcome.validator.summary() }
  return { ok: false, status: error.status, code: error.code, param: error.param, message: error.message }
}

/** Asserts a 400 on the `file` param with `code`, and a message matching `message`. */
function expectProblem(outcome: Outcome, code: string, message: RegExp | string, status = 400): void {
  expect(outcome.error, 'the stream should fail').toBeInstanceOf(ApiError)
  expect(outcome.error).toMatchObject({ status, code, param: 'file', type: 'invalid_request_error' })
  if (typeof message === 'string') expect(outcome.error?.message).toBe(message)
  else expect(outcome.error?.message).toMatch(message)
}

function expectValid(outcome: Outcome, input: string | Buffer): void {
  expect(outcome.error).toBeUndefined()
  expect(outcome.output.equals(typeof input === 'string' ? Buffer.from(input) : input)).toBe(true)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const VALID = jsonl(line('a'), line('b'), line('c'))
const UNICODE = 'ünïcödé ✓ 日本語 🎉'
const VALID_UNICODE = jsonl(
  line('ü-1', { body: { model: MODEL, messages: [{ role: 'user', content: UNICODE }] } }),
  line('日本-2', { body: { model: MODEL, messages: [{ role: 'user', content: `${UNICODE} ${UNICODE}` }] } }),
  line('🎉-3'),
)

describe('JsonlValidator: pass-through', () => {
  it.each(CHUNK_SIZES)('lets a valid batch file through byte for byte (chunks of %s)', async (chunkSize) => {
    const outcome = await validate(VALID, { chunkSize })
    expectValid(outcome, VALID)
    expect(outcome.validator.bytes).toBe(Buffer.byteLength(VALID))
  })

  it.each(CHUNK_SIZES)(
    'keeps multibyte UTF-8 intact when characters are split across chunks (%s)',
    async (chunkSize) => {
      const outcome = await validate(VALID_UNICODE, { chunkSize })
      expectValid(outcome, VALID_UNICODE)
      expect(outcome.validator.summary()).toEqual({ url: URL, model: MODEL, requests: 3 })
    },
  )

  it('lets arbitrary binary bytes of a non-batch file through unchanged', async () => {
    const binary = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256))
    for (const chunkSize of CHUNK_SIZES) {
      expectValid(await validate(binary, { chunkSize, purpose: 'user_data' }), binary)
    }
  })

  it('accepts a file without a trailing newline', async () => {
    const input = `${line('a')}\n${line('b')}`
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(input, { chunkSize })
      expectValid(outcome, input)
      expect(outcome.validator.summary()?.requests).toBe(2)
    }
  })

  it('accepts trailing blank lines (including whitespace-only ones)', async () => {
    const input = `${line('a')}\n${line('b')}\n\n  \n\t\n\n`
    const outcome = await validate(input)
    expectValid(outcome, input)
    expect(outcome.validator.summary()?.requests).toBe(2)
  })

  it('accepts CRLF line endings', async () => {
    const input = `${line('a')}\r\n${line('b')}\r\n\r\n`
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(input, { chunkSize })
      expectValid(outcome, input)
      expect(outcome.validator.summary()?.requests).toBe(2)
    }
  })

  it('accepts body.stream false and any extra body fields', async () => {
    const input = jsonl(line('a', { body: { model: MODEL, stream: false, temperature: 0, anything: { x: [1] } } }))
    expectValid(await validate(input), input)
  })

  it('accepts every supported endpoint', async () => {
    for (const url of ['/v1/responses', '/v1/embeddings', '/v1/completions', '/v1/moderations']) {
      const input = jsonl(line('a', { url }), line('b', { url }))
      const outcome = await validate(input)
      expectValid(outcome, input)
      expect(outcome.validator.summary()).toEqual({ url, model: MODEL, requests: 2 })
    }
  })
})

describe('JsonlValidator: the verdict does not depend on chunking', () => {
  const cases: Record<string, string> = {
    valid: VALID,
    'valid, multibyte': VALID_UNICODE,
    'valid, CRLF and trailing blanks': `${line('a')}\r\n${line('b')}\r\n\r\n\n`,
    'invalid JSON after multibyte text': jsonl(line('ü'), `{"custom_id": "${UNICODE}", `),
    'duplicate multibyte custom_id': jsonl(line(UNICODE), line('x'), line(UNICODE)),
    'blank interior line': jsonl(line('a'), '', line('b')),
    'model mismatch': jsonl(line('a'), line('b', { body: { model: `${UNICODE}-model` } })),
    BOM: `\uFEFF${VALID}`,
    'unterminated last line invalid': `${line('a')}\n{"custom_id":`,
    empty: '',
  }
  for (const [name, input] of Object.entries(cases)) {
    it(`${name}: same verdict for chunks of ${CHUNK_SIZES.join(', ')}`, async () => {
      const verdicts = []
      for (const chunkSize of CHUNK_SIZES) verdicts.push(verdict(await validate(input, { chunkSize })))
      for (const v of verdicts.slice(1)) expect(v).toEqual(verdicts[0])
    })
  }

  it('a line of invalid UTF-8 fails by its number whatever the chunking, never repaired to U+FFFD', async () => {
    // Each breaks UTF-8 differently: a byte no UTF-8 has, a character cut short by the line's end, an
    // overlong '/', an encoded UTF-16 surrogate. Line 1 has multi-byte characters that chunks split.
    const broken: Record<string, number[]> = {
      'byte 0xff': [0xff],
      'truncated é': [0xc3],
      'overlong /': [0xc0, 0xaf],
      surrogate: [0xed, 0xa0, 0x80],
    }
    const outcomes: Record<string, string> = {}
    const expected: Record<string, string> = {}
    for (const [name, bytes] of Object.entries(broken)) {
      const second = Buffer.from(line('b', { body: { model: MODEL, note: '*' } }))
      const at = second.indexOf('*')
      const input = Buffer.concat([
        Buffer.from(`${line(UNICODE)}\n`),
        second.subarray(0, at),
        Buffer.from(bytes),
        second.subarray(at + 1),
        Buffer.from(`\n${line('c')}\n`),
      ])
      for (const chunkSize of CHUNK_SIZES) {
        const { error } = await validate(input, { chunkSize })
        const key = `${name}, chunks of ${chunkSize}`
        outcomes[key] = error ? `${error.status} ${error.code}: ${error.message}` : 'accepted'
        expected[key] = '400 invalid_json_line: Line 2 is not valid UTF-8; save the file as UTF-8.'
      }
    }
    expect(outcomes).toEqual(expected)
  })

  it('a line longer than maxLineBytes fails whatever the chunking (also when it arrives whole in one chunk)', async () => {
    // A normal line is ~140 bytes and the limit 200: line 2, far over it or just one byte over it, must
    // fail with line_too_large whether it arrives byte by byte, in pieces, or whole with its newline.
    const limit = 200
    const padded = (bytes: number) => {
      const bare = line('b', { body: { model: MODEL, padding: '' } })
      return line('b', { body: { model: MODEL, padding: 'x'.repeat(bytes - Buffer.byteLength(bare)) } })
    }
    expect(Buffer.byteLength(line('a'))).toBeLessThanOrEqual(limit)
    const outcomes: Record<string, string> = {}
    const expected: Record<string, string> = {}
    for (const [name, long] of [
      ['350-byte line', padded(350)],
      ['201-byte line', padded(limit + 1)],
    ] as const) {
      for (const chunkSize of CHUNK_SIZES) {
        const { error } = await validate(jsonl(line('a'), long, line('c')), {
          chunkSize,
          limits: { maxLineBytes: limit },
        })
        const key = `${name}, chunks of ${chunkSize}`
        outcomes[key] = error ? `${error.status} ${error.code}: ${error.message}` : 'accepted'
        expected[key] = `400 line_too_large: Line 2 is longer than ${limit} bytes.`
      }
    }
    expect(outcomes).toEqual(expected)
  })
})

describe('JsonlValidator: line rules', () => {
  const rules: [name: string, input: string, code: string, message: string][] = [
    ['not JSON', jsonl(line('a'), '{not json'), 'invalid_json_line', 'Line 2 is not parseable as valid JSON.'],
    ['a JSON array', jsonl(line('a'), '[1,2]'), 'invalid_json_line', 'Line 2: each line must be a JSON object.'],
    ['a JSON string', jsonl(line('a'), '"x"'), 'invalid_json_line', 'Line 2: each line must be a JSON object.'],
    ['JSON null', jsonl('null'), 'invalid_json_line', 'Line 1: each line must be a JSON object.'],
    [
      'missing custom_id',
      jsonl(line('a'), line('b', { custom_id: undefined })),
      'missing_required_parameter',
      "Line 2: Missing required parameter: 'custom_id'.",
    ],
    [
      'null custom_id',
      jsonl(line('a', { custom_id: null })),
      'missing_required_parameter',
      "Line 1: Missing required parameter: 'custom_id'.",
    ],
    [
      'missing method',
      jsonl(line('a'), line('b'), line('c', { method: undefined })),
      'missing_required_parameter',
      "Line 3: Missing required parameter: 'method'.",
    ],
    [
      'missing url',
      jsonl(line('a', { url: undefined })),
      'missing_required_parameter',
      "Line 1: Missing required parameter: 'url'.",
    ],
    [
      'missing body',
      jsonl(line('a', { body: undefined })),
      'missing_required_parameter',
      "Line 1: Missing required parameter: 'body'.",
    ],
    [
      'numeric custom_id',
      jsonl(line('a'), JSON.stringify({ ...request('x'), custom_id: 42 })),
      'invalid_type',
      "Line 2: 'custom_id' must be a non-empty string.",
    ],
    ['empty custom_id', jsonl(line('')), 'invalid_type', "Line 1: 'custom_id' must be a non-empty string."],
    [
      'duplicate custom_id',
      jsonl(line('a'), line('b'), line('a')),
      'duplicate_custom_id',
      "Line 3: Duplicate custom_id 'a'.",
    ],
    [
      'method GET',
      jsonl(line('a', { method: 'GET' })),
      'invalid_value',
      "Line 1: Invalid value for 'method': only 'POST' is supported.",
    ],
    [
      'lowercase method',
      jsonl(line('a'), line('b', { method: 'post' })),
      'invalid_value',
      "Line 2: Invalid value for 'method': only 'POST' is supported.",
    ],
    [
      'unsupported url',
      jsonl(line('a', { url: '/v1/assistants' })),
      'invalid_url',
      'Line 1: Invalid value for \'url\': "/v1/assistants" is not a supported batch endpoint.',
    ],
    [
      'non-string url',
      jsonl(line('a', { url: 5 })),
      'invalid_url',
      "Line 1: Invalid value for 'url': 5 is not a supported batch endpoint.",
    ],
    [
      'url differs from the first line',
      jsonl(line('a'), line('b', { url: '/v1/embeddings' })),
      'url_mismatch',
      "Line 2: The url '/v1/embeddings' differs from '/v1/chat/completions' of the first request; a file targets one url.",
    ],
    ['body an array', jsonl(line('a', { body: [] })), 'invalid_type', "Line 1: 'body' must be a JSON object."],
    ['body a string', jsonl(line('a', { body: 'x' })), 'invalid_type', "Line 1: 'body' must be a JSON object."],
    [
      'missing body.model',
      jsonl(line('a', { body: { messages: [] } })),
      'invalid_request',
      "Line 1: 'body.model' is required and must be a string.",
    ],
    [
      'empty body.model',
      jsonl(line('a'), line('b', { body: { model: '' } })),
      'invalid_request',
      "Line 2: 'body.model' is required and must be a string.",
    ],
    [
      'model differs from the first line',
      jsonl(line('a'), line('b'), line('c', { body: { model: 'gpt-4o' } })),
      'model_mismatch',
      "Line 3: The model 'gpt-4o' differs from 'gpt-4o-mini' of the first request; a file uses one model.",
    ],
    [
      'body.stream true',
      jsonl(line('a'), line('b', { body: { model: MODEL, stream: true } })),
      'streaming_unsupported',
      'Line 2: streaming is not supported in the Batch API.',
    ],
    [
      'blank interior line',
      jsonl(line('a'), line('b'), '', line('c')),
      'invalid_json_line',
      'Line 3 is blank; every line must be a request.',
    ],
    [
      'whitespace-only interior line',
      jsonl(line('a'), ' \t ', line('b')),
      'invalid_json_line',
      'Line 2 is blank; every line must be a request.',
    ],
    [
      'several blank interior lines (the first is named)',
      jsonl(line('a'), '', '', line('b')),
      'invalid_json_line',
      'Line 2 is blank; every line must be a request.',
    ],
    ['blank first line', jsonl('', line('a')), 'invalid_json_line', 'Line 1 is blank; every line must be a request.'],
    [
      'CRLF blank interior line',
      `${line('a')}\r\n\r\n${line('b')}\r\n`,
      'invalid_json_line',
      'Line 2 is blank; every line must be a request.',
    ],
    [
      'a UTF-8 BOM',
      `\uFEFF${VALID}`,
      'invalid_json_line',
      'Line 1 starts with a UTF-8 byte order mark; save the file as UTF-8 without one.',
    ],
    [
      'a BOM on a later line (not the file’s start, so invalid JSON)',
      jsonl(line('a'), `\uFEFF${line('b')}`),
      'invalid_json_line',
      'Line 2 is not parseable as valid JSON.',
    ],
    [
      'a first line that starts with the BOM’s first two bytes only',
      jsonl(`\u00EF\u00BB${line('a')}`),
      'invalid_json_line',
      'Line 1 is not parseable as valid JSON.',
    ],
    [
      'a long custom_id, quoted to its first 64 characters',
      jsonl(line('x'.repeat(100)), line('x'.repeat(100))),
      'duplicate_custom_id',
      `Line 2: Duplicate custom_id '${'x'.repeat(64)}…'.`,
    ],
    [
      'a custom_id of exactly 64 characters, quoted whole',
      jsonl(line('y'.repeat(64)), line('y'.repeat(64))),
      'duplicate_custom_id',
      `Line 2: Duplicate custom_id '${'y'.repeat(64)}'.`,
    ],
    [
      'invalid unterminated last line',
      `${line('a')}\n${line('b')}\n{"custom_id":`,
      'invalid_json_line',
      'Line 3 is not parseable as valid JSON.',
    ],
    [
      'the first of two problems wins',
      jsonl(line('a'), line('a'), 'nope'),
      'duplicate_custom_id',
      "Line 2: Duplicate custom_id 'a'.",
    ],
  ]

  it.each(rules)('%s -> %s', async (_name, input, code, message) => {
    for (const chunkSize of CHUNK_SIZES) {
      expectProblem(await validate(input, { chunkSize }), code, message)
    }
  })

  it('rejects an empty batch file with empty_file', async () => {
    expectProblem(
      await validate(''),
      'empty_file',
      'The file is empty: a batch input file needs at least one request line.',
    )
  })

  it('rejects a batch file of blank lines only with empty_file', async () => {
    expectProblem(await validate('\n\n  \r\n'), 'empty_file', /^The file is empty/)
  })

  it('applies a request limit changed once the provider is known', async () => {
    const purpose = Promise.resolve<UploadPurpose>('batch')
    const run = async (max: number) => {
      const validator = new JsonlValidator({ ...DEFAULT_UPLOAD_LIMITS, maxBatchRequests: 1 }, purpose)
      validator.setMaxBatchRequests(max)
      const error = await pipeline(Readable.from([jsonl(line('a'), line('b'), line('c'))]), validator, async (out) => {
        for await (const _ of out);
      }).then(
        () => undefined,
        (e: unknown) => e as ApiError,
      )
      return { error, requests: validator.summary()?.requests }
    }
    expect(await run(3)).toEqual({ error: undefined, requests: 3 })
    expect((await run(2)).error).toMatchObject({ status: 400, code: 'too_many_tasks' })
  })

  it('accepts exactly maxBatchRequests requests, and rejects one more with too_many_tasks', async () => {
    const three = jsonl(line('a'), line('b'), line('c'))
    expectValid(await validate(three, { limits: { maxBatchRequests: 3 } }), three)
    const four = jsonl(line('a'), line('b'), line('c'), line('d'))
    for (const chunkSize of CHUNK_SIZES) {
      expectProblem(
        await validate(four, { chunkSize, limits: { maxBatchRequests: 3 } }),
        'too_many_tasks',
        'The file has more than 3 requests (line 4).',
      )
    }
  })

  it('blank lines do not count as requests', async () => {
    const input = `${line('a')}\n${line('b')}\n\n\n\n`
    expectValid(await validate(input, { limits: { maxBatchRequests: 2 } }), input)
  })

  it('accepts a line of exactly maxLineBytes, rejects one byte more with line_too_large naming the line', async () => {
    const exact = line('a', { body: { model: MODEL, pad: '' } })
    const padTo = (length: number) =>
      line('a', { body: { model: MODEL, pad: 'x'.repeat(length - Buffer.byteLength(exact)) } })
    const limit = 200
    const fits = `${line('z')}\n${padTo(limit)}\n`
    const tooLong = `${line('z')}\n${padTo(limit + 1)}\n${line('y')}\n`
    // Byte by byte, so the limit is met exactly (other chunkings are covered by the chunking tests above).
    for (const chunkSize of [1]) {
      expectValid(await validate(fits, { chunkSize, limits: { maxLineBytes: limit } }), fits)
      expectProblem(
        await validate(tooLong, { chunkSize, limits: { maxLineBytes: limit } }),
        'line_too_large',
        `Line 2 is longer than ${limit} bytes.`,
      )
    }
  })

  it('rejects an over-long unterminated last line', async () => {
    const input = `${line('a')}\n${'x'.repeat(500)}`
    for (const chunkSize of [1, 64, Number.POSITIVE_INFINITY]) {
      expectProblem(
        await validate(input, { chunkSize, limits: { maxLineBytes: 300 } }),
        'line_too_large',
        'Line 2 is longer than 300 bytes.',
      )
    }
  })

  it('applies no line rule to a non-batch purpose', async () => {
    const invalid = `\uFEFFnot json\n\n[1]\n${line('a')}\n${line('a')}\n${'x'.repeat(500)}`
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(invalid, {
        chunkSize,
        purpose: 'user_data',
        limits: { maxLineBytes: 10, maxBatchRequests: 1 },
      })
      expectValid(outcome, invalid)
      expect(outcome.validator.summary()).toBeNull()
    }
  })

  it('accepts an empty file of a non-batch purpose', async () => {
    const outcome = await validate('', { purpose: 'fine-tune' })
    expectValid(outcome, '')
    expect(outcome.validator.summary()).toBeNull()
  })
})

describe('JsonlValidator: size limits', () => {
  it('accepts a batch file of exactly maxBatchFileBytes', async () => {
    const size = Buffer.byteLength(VALID)
    expectValid(await validate(VALID, { limits: { maxBatchFileBytes: size } }), VALID)
  })

  it('raises 413 as soon as a batch file passes maxBatchFileBytes, when the purpose is known', async () => {
    const input = jsonl(...Array.from({ length: 100 }, (_, i) => line(`r${i}`)))
    const outcome = await validate(input, { chunkSize: 10, limits: { maxBatchFileBytes: 1000 } })
    expectProblem(outcome, 'file_too_large', 'Batch input files can be at most 1000 bytes.', 413)
    // The chunk that crossed the limit was the last one looked at.
    expect(outcome.validator.bytes).toBe(1010)
    expect(outcome.output.length).toBeLessThanOrEqual(1000)
  })

  it('raises 413 for a non-batch file over maxFileBytes, as soon as it is passed', async () => {
    const input = Buffer.alloc(5000, 'a')
    const outcome = await validate(input, {
      chunkSize: 100,
      purpose: 'user_data',
      limits: { maxFileBytes: 1000, maxBatchFileBytes: 2000 },
    })
    expectProblem(outcome, 'file_too_large', 'Files can be at most 1000 bytes.', 413)
    expect(outcome.validator.bytes).toBe(1100)
  })

  it('a non-batch file may be larger than maxBatchFileBytes', async () => {
    const input = Buffer.alloc(1500, 'a')
    const outcome = await validate(input, {
      purpose: 'user_data',
      limits: { maxFileBytes: 2000, maxBatchFileBytes: 1000 },
    })
    expectValid(outcome, input)
  })

  it('with the purpose unknown, allows the larger limit while streaming and applies the batch one at the end', async () => {
    const input = jsonl(...Array.from({ length: 20 }, (_, i) => line(`r${i}`)))
    const limits = { maxBatchFileBytes: 1000, maxFileBytes: 1_000_000 }
    const late = await validate(input, { chunkSize: 64, purposeArrives: 'after-end', limits })
    expect(late.endedBeforePurpose).toBe(true)
    expectProblem(late, 'file_too_large', 'Batch input files can be at most 1000 bytes.', 413)
    expect(late.validator.bytes).toBe(Buffer.byteLength(input))

    const lateUserData = await validate(input, {
      chunkSize: 64,
      purpose: 'user_data',
      purposeArrives: 'after-end',
      limits,
    })
    expectValid(lateUserData, input)
  })

  it('with the purpose unknown, fails at once past the larger of both limits', async () => {
    const input = Buffer.alloc(10_000, 'a')
    const outcome = await validate(input, {
      chunkSize: 100,
      purposeArrives: 'after-end',
      limits: { maxBatchFileBytes: 1000, maxFileBytes: 2000 },
    })
    expectProblem(outcome, 'file_too_large', 'Files can be at most 2000 bytes.', 413)
    expect(outcome.validator.bytes).toBe(2100)
  })

  it('applies maxFileBytes to a non-batch file whose purpose arrives after the stream ended', async () => {
    // maxBatchFileBytes > maxFileBytes: while the purpose is unknown the larger limit applies, so the
    // smaller one has to be checked at the end once the purpose turns out not to be batch.
    const input = Buffer.alloc(1500, 'a')
    const outcome = await validate(input, {
      chunkSize: 100,
      purpose: 'user_data',
      purposeArrives: 'after-end',
      limits: { maxFileBytes: 1000, maxBatchFileBytes: 2000 },
    })
    expect(outcome.endedBeforePurpose).toBe(true)
    expectProblem(outcome, 'file_too_large', 'Files can be at most 1000 bytes.', 413)
  })
})

describe('JsonlValidator: a purpose that arrives late', () => {
  it('validates a valid batch file whose purpose arrives after the stream ended', async () => {
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(VALID, { chunkSize, purposeArrives: 'after-end' })
      expect(outcome.endedBeforePurpose).toBe(true)
      expectValid(outcome, VALID)
      expect(outcome.validator.summary()).toEqual({ url: URL, model: MODEL, requests: 3 })
    }
  })

  it('raises a problem recorded while the purpose was unknown once the purpose turns out to be batch', async () => {
    const input = jsonl(line('a'), 'nope', line('b'))
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(input, { chunkSize, purposeArrives: 'after-end' })
      expect(outcome.endedBeforePurpose).toBe(true)
      expectProblem(outcome, 'invalid_json_line', 'Line 2 is not parseable as valid JSON.')
    }
  })

  it('ignores a problem recorded while the purpose was unknown once the purpose turns out to be user_data', async () => {
    const input = jsonl(line('a'), 'nope', line('a'), '', line('b', { body: { model: 'other' } }))
    for (const chunkSize of CHUNK_SIZES) {
      const outcome = await validate(input, { chunkSize, purpose: 'user_data', purposeArrives: 'after-end' })
      expect(outcome.endedBeforePurpose).toBe(true)
      expectValid(outcome, input)
      expect(outcome.validator.summary()).toBeNull()
    }
  })

  it('reports an empty batch file whose purpose arrives late', async () => {
    expectProblem(await validate('', { purposeArrives: 'after-end' }), 'empty_file', /^The file is empty/)
  })

  it('raises a recorded problem with the next chunk once the purpose resolves to batch mid-stream', async () => {
    const purpose = deferred<UploadPurpose>()
    const validator = new JsonlValidator(DEFAULT_UPLOAD_LIMITS, purpose.promise)
    const errors: unknown[] = []
    validator.on('error', (error) => errors.push(error))
    validator.resume()
    validator.write(`${line('a')}\nnot json\n`)
    await nextMacrotask()
    expect(errors).toEqual([])
    purpose.resolve('batch')
    await nextMacrotask()
    validator.write(`${line('b')}\n`)
    await nextMacrotask()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'invalid_json_line', message: 'Line 2 is not parseable as valid JSON.' })
  })

  it('fails with the purpose field’s error when the purpose never comes', async () => {
    const purpose = deferred<UploadPurpose>()
    const validator = new JsonlValidator(DEFAULT_UPLOAD_LIMITS, purpose.promise)
    const missing = new ApiError(400, "Missing required parameter: 'purpose'.", {
      param: 'purpose',
      code: 'missing_required_parameter',
    })
    const done = pipeline(Readable.from([Buffer.from(VALID)]), validator, new Writable({ write: (_c, _e, cb) => cb() }))
    await nextMacrotask()
    purpose.reject(missing)
    await expect(done).rejects.toBe(missing)
  })
})

describe('JsonlValidator: firstModel', () => {
  it('resolves with the first request’s model', async () => {
    const outcome = await validate(jsonl(line('a'), line('b')))
    await expect(outcome.validator.firstModel).resolves.toBe(MODEL)
  })

  it('resolves with the first model even when the purpose arrives late', async () => {
    const outcome = await validate(VALID_UNICODE, { chunkSize: 3, purposeArrives: 'after-end' })
    await expect(outcome.validator.firstModel).resolves.toBe(MODEL)
  })

  it('holds back bytes until the first request line is complete, then lets them all go in order', async () => {
    const purpose = deferred<UploadPurpose>()
    purpose.resolve('batch')
    const validator = new JsonlValidator(DEFAULT_UPLOAD_LIMITS, purpose.promise)
    const out: Buffer[] = []
    validator.on('data', (chunk: Buffer) => out.push(chunk))
    let firstModel: string | undefined | null = null
    validator.firstModel.then((model) => {
      firstModel = model
    })
    const first = Buffer.from(`${line('a', { body: { model: 'model-x' } })}\n`)
    await nextMacrotask()

    validator.write(first.subarray(0, 10))
    validator.write(first.subarray(10, 40))
    await nextMacrotask()
    expect(out).toEqual([])
    expect(firstModel).toBeNull()

    validator.write(first.subarray(40))
    await nextMacrotask()
    expect(firstModel).toBe('model-x')
    expect(Buffer.concat(out).equals(first)).toBe(true)

    // After that, bytes flow straight through.
    validator.write('{"partial')
    await nextMacrotask()
    expect(Buffer.concat(out).toString()).toBe(`${first}{"partial`)
    validator.destroy()
  })

  it('resolves undefined for a file without request lines', async () => {
    for (const input of ['', '\n\n', '  \r\n']) {
      const outcome = await validate(input, { purpose: 'user_data' })
      await expect(outcome.validator.firstModel).resolves.toBeUndefined()
      const asBatch = await validate(input)
      expect(asBatch.error?.code).toBe('empty_file')
      await expect(asBatch.validator.firstModel).resolves.toBeUndefined()
    }
  })

  it('settles (undefined) when the first line is invalid, so a caller awaiting it does not hang', async () => {
    const outcome = await validate(jsonl('nope', line('a')))
    expectProblem(outcome, 'invalid_json_line', 'Line 1 is not parseable as valid JSON.')
    await expect(outcome.validator.firstModel).resolves.toBeUndefined()
  })

  it('resolves undefined at once for a non-batch purpose without holding bytes back', async () => {
    const validator = new JsonlValidator(DEFAULT_UPLOAD_LIMITS, Promise.resolve('user_data'))
    const out: Buffer[] = []
    validator.on('data', (chunk: Buffer) => out.push(chunk))
    await nextMacrotask()
    validator.write('{"custom_id":"a"')
    await expect(validator.firstModel).resolves.toBeUndefined()
    expect(Buffer.concat(out).toString()).toBe('{"custom_id":"a"')
    validator.destroy()
  })

  it('holds back no more than maxLineBytes of blank lines before the first request', async () => {
    const purpose = deferred<UploadPurpose>()
    purpose.resolve('batch')
    const validator = new JsonlValidator({ ...DEFAULT_UPLOAD_LIMITS, maxLineBytes: 100 }, purpose.promise)
    const out: Buffer[] = []
    validator.on('data', (chunk: Buffer) => out.push(chunk))
    validator.on('error', () => undefined)
    validator.write('\n'.repeat(60))
    validator.write('\n'.repeat(40))
    await nextMacrotask()
    expect(Buffer.concat(out).length).toBe(0)
    validator.write('\n')
    await nextMacrotask()
    expect(Buffer.concat(out).length).toBe(101)
    validator.destroy()
  })

  it('stops holding back once a first line grows past maxLineBytes', async () => {
    const purpose = deferred<UploadPurpose>()
    const validator = new JsonlValidator({ ...DEFAULT_UPLOAD_LIMITS, maxLineBytes: 100 }, purpose.promise)
    const out: Buffer[] = []
    validator.on('data', (chunk: Buffer) => out.push(chunk))
    validator.on('error', () => undefined)
    validator.write('x'.repeat(150))
    await expect(validator.firstModel).resolves.toBeUndefined()
    expect(Buffer.concat(out).length).toBe(150)
    validator.destroy()
  })
})

describe('JsonlValidator: summary()', () => {
  it('gives url, model and the number of requests of a valid batch file', async () => {
    const input = jsonl(
      ...Array.from({ length: 7 }, (_, i) => line(`e${i}`, { url: '/v1/embeddings', body: { model: 'emb' } })),
    )
    const outcome = await validate(`${input}\n\n`, { chunkSize: 7 })
    expect(outcome.error).toBeUndefined()
    expect(outcome.validator.summary()).toEqual({ url: '/v1/embeddings', model: 'emb', requests: 7 })
  })

  it('is null for a non-batch file, even one made of valid request lines', async () => {
    const outcome = await validate(VALID, { purpose: 'user_data' })
    expect(outcome.validator.summary()).toBeNull()
  })
})

describe('JsonlValidator: memory', () => {
  it('streams a 50 MB batch file holding no more than a line at a time', async () => {
    const total = 50 * 1000 * 1000
    const chunkSize = 64 * 1024
    const padding = 'p'.repeat(1000)
    let produced = 0
    let lines = 0
    let text = ''
    // Lines of ~1.1 kB, generated on the fly and cut into 64 KiB chunks that ignore line boundaries.
    const source = new Readable({
      read() {
        while (text.length < chunkSize && produced + text.length < total) {
          text += `${JSON.stringify({ custom_id: `req-${lines++}`, method: 'POST', url: URL, body: { model: MODEL, input: padding } })}\n`
        }
        if (text.length === 0) return this.push(null)
        const piece = text.slice(0, chunkSize)
        text = text.slice(chunkSize)
        produced += piece.length
        this.push(Buffer.from(piece, 'latin1'))
      },
    })
    const validator = new JsonlValidator(DEFAULT_UPLOAD_LIMITS, Promise.resolve('batch'))
    const baseline = process.memoryUsage().arrayBuffers
    let peak = baseline
    let received = 0
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length
        peak = Math.max(peak, process.memoryUsage().arrayBuffers)
        callback()
      },
    })
    await pipeline(source, validator, sink)

    expect(received).toBe(produced)
    expect(produced).toBeGreaterThanOrEqual(total)
    expect(validator.summary()).toEqual({ url: URL, model: MODEL, requests: lines })
    // Holding the file would take ~50 MB; streaming it takes a few chunks' worth (~2 MB measured). Only the
    // growth is bounded: what else this test process holds (other files' buffers) is not the validator's.
    expect(peak - baseline).toBeLessThan(16 * 1024 * 1024)
  })
})
