import { PassThrough, Readable, Writable } from 'node:stream'
import { createSchemaValidator } from '@batchkit/testkit'
import type { ChatCompletion } from 'openai/resources/chat/completions'
import { describe, expect, it } from 'vitest'
import { customIdLabels } from '../src/providers/vertex/custom-id.js'
import {
  type ConvertedRow,
  convertVertexOutput,
  convertVertexRow,
  emptyCounts,
  finishReasonOf,
  routeVertexOutput,
  rowError,
  usageOf,
} from '../src/providers/vertex/output-transform.js'

const schemas = createSchemaValidator()

/** A successful prediction row for `customId`, carried in labels only (as without instanceConfig). */
function row(customId: string, response: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    status: '',
    processed_time: '2025-09-19T21:29:47.352+00:00',
    request: {
      contents: [{ role: 'user', parts: [{ text: 'Hello world!' }] }],
      labels: customIdLabels(customId),
    },
    response: {
      candidates: [{ content: { role: 'model', parts: [{ text: 'Hello there!' }] }, finishReason: 'STOP' }],
      createTime: '2025-09-19T21:29:47.484619Z',
      modelVersion: 'gemini-2.5-flash-lite',
      responseId: 'S8vNaIvKHdvshMIP_aOtuAg',
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 10, totalTokenCount: 19, trafficType: 'ON_DEMAND' },
      ...response,
    },
    ...extra,
  }
}

function convert(value: unknown): ConvertedRow {
  const converted = convertVertexRow(value, { idSeed: 'batch_x', model: 'gemini-fallback' })
  if (!converted) throw new Error('row was not attributable')
  schemas.assert('BatchRequestOutput', converted.line)
  return converted
}

async function collect(readable: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of readable) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function sink(): Writable & { text: () => string } {
  const chunks: Buffer[] = []
  const writable = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk)
      setImmediate(callback)
    },
  })
  return Object.assign(writable, { text: () => Buffer.concat(chunks).toString('utf8') })
}

describe('convertVertexRow: successful rows', () => {
  it('produces a strict OpenAI output line with a chat.completion body', () => {
    const { route, line, usage } = convert(row('request-1', {}))
    expect(route).toBe('output')
    expect(line.id).toMatch(/^batch_req_[0-9a-f]{32}$/)
    expect(line.response.request_id).toMatch(/^req_[0-9a-f]{32}$/)
    const body = line.response.body
    expect(line).toEqual({
      id: line.id,
      custom_id: 'request-1',
      response: {
        status_code: 200,
        request_id: line.response.request_id,
        body: {
          id: 'chatcmpl-S8vNaIvKHdvshMIP_aOtuAg',
          object: 'chat.completion',
          created: 1758317387,
          model: 'gemini-2.5-flash-lite',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: 'Hello there!', refusal: null, annotations: [] },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage: {
            prompt_tokens: 9,
            completion_tokens: 10,
            total_tokens: 19,
            prompt_tokens_details: { cached_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 0 },
          },
        },
      },
      error: null,
    })
    expect(usage).toEqual(body.usage)
    // The body satisfies the OpenAI SDK's own type.
    const typed: ChatCompletion = body as unknown as ChatCompletion
    expect(typed.choices[0]?.message.content).toBe('Hello there!')
  })

  it('derives ids deterministically from the seed and custom_id', () => {
    const a = convert(row('same', {})).line
    const b = convert(row('same', {})).line
    const c = convertVertexRow(row('same', {}), { idSeed: 'other' })!.line
    expect(a.id).toBe(b.id)
    expect(a.response.request_id).toBe(b.response.request_id)
    expect(c.id).not.toBe(a.id)
  })

  it('prefers the top-level custom_id Vertex attaches for excludedFields', () => {
    expect(convert(row('from-labels', {}, { custom_id: 'From-Top-Level' })).line.custom_id).toBe('From-Top-Level')
  })

  it('maps tool calls, thoughts, several candidates and the fallbacks for id, created and model', () => {
    const { line } = convert(
      row('tools', {
        responseId: undefined,
        createTime: undefined,
        modelVersion: 'gemini-2.5-pro@default',
        candidates: [
          {
            content: {
              role: 'model',
              parts: [
                { text: 'Thinking about it…', thought: true },
                { text: 'Let me ' },
                { text: 'check. 🌦️' },
                { functionCall: { name: 'get_weather', args: { city: 'Zürich' } } },
                { functionCall: { name: 'get_time', args: {} } },
              ],
            },
            finishReason: 'STOP',
          },
          {
            index: 1,
            content: { role: 'model', parts: [{ functionCall: { name: 'get_time' } }] },
            finishReason: 'STOP',
          },
        ],
      }),
    )
    const body = line.response.body as Record<string, unknown> & { choices: Array<Record<string, unknown>> }
    expect(body.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/)
    expect(body.created).toBe(1758317387) // processed_time
    expect(body.model).toBe('gemini-2.5-pro')
    const calls = (body.choices[0]!.message as { tool_calls: Array<{ id: string }> }).tool_calls
    expect(calls[0]?.id).toMatch(/^call_[0-9a-f]{24}$/)
    expect(calls[0]?.id).not.toBe(calls[1]?.id)
    expect(body.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Let me check. 🌦️',
          refusal: null,
          annotations: [],
          tool_calls: [
            { id: calls[0]?.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Zürich"}' } },
            { id: calls[1]?.id, type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
      {
        index: 1,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          annotations: [],
          tool_calls: [
            { id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_time', arguments: '{}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ])
  })

  it('keeps a functionCall id when Gemini gives one, and uses the job model without modelVersion', () => {
    const { line } = convert(
      row('ids', {
        modelVersion: undefined,
        candidates: [{ content: { parts: [{ functionCall: { id: 'fc-1', name: 'f', args: { a: 1 } } }] } }],
      }),
    )
    const body = line.response.body as { model: string; choices: Array<{ message: { tool_calls: unknown[] } }> }
    expect(body.model).toBe('gemini-fallback')
    expect(body.choices[0]?.message.tool_calls).toEqual([
      { id: 'fc-1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } },
    ])
  })

  it('carries a function call’s thought signature in the tool call id', () => {
    const { line } = convert(
      row('signed', {
        candidates: [
          {
            content: {
              parts: [
                { functionCall: { name: 'f', args: {} }, thoughtSignature: 'c2lnbmF0dXJl+/=' },
                { functionCall: { id: 'fc-2', name: 'g', args: {} } },
              ],
            },
            finishReason: 'STOP',
          },
        ],
      }),
    )
    const calls = (line.response.body as { choices: Array<{ message: { tool_calls: Array<{ id: string }> } }> })
      .choices[0]!.message.tool_calls
    expect(calls[0]!.id).toMatch(/^call_[0-9a-f]{24}__thought__c2lnbmF0dXJl\+\/=$/)
    // Gemini signs the first call of a parallel set only.
    expect(calls[1]!.id).toBe('fc-2')
  })

  it('reports a filtered candidate as a success with content_filter', () => {
    const { route, line } = convert(row('filtered', { candidates: [{ finishReason: 'SAFETY' }] }))
    expect(route).toBe('output')
    expect((line.response.body as { choices: unknown[] }).choices).toEqual([
      {
        index: 0,
        message: { role: 'assistant', content: null, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'content_filter',
      },
    ])
  })
})

describe('finishReasonOf', () => {
  it.each([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['BLOCKLIST', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['SPII', 'content_filter'],
    ['MODEL_ARMOR', 'content_filter'],
    ['IMAGE_SAFETY', 'content_filter'],
    ['IMAGE_PROHIBITED_CONTENT', 'content_filter'],
    ['IMAGE_RECITATION', 'content_filter'],
    ['OTHER', 'stop'],
    ['LANGUAGE', 'stop'],
    ['MALFORMED_FUNCTION_CALL', 'stop'],
    ['FINISH_REASON_UNSPECIFIED', 'stop'],
    ['SOMETHING_NEW', 'stop'],
    [undefined, 'stop'],
  ])('%s → %s', (reason, expected) => {
    expect(finishReasonOf({ finishReason: reason, content: { parts: [{ text: 'x' }] } })).toBe(expected)
  })

  it('says tool_calls for a function call, unless the candidate was filtered', () => {
    const parts = [{ functionCall: { name: 'f', args: {} } }]
    expect(finishReasonOf({ finishReason: 'STOP', content: { parts } })).toBe('tool_calls')
    expect(finishReasonOf({ finishReason: 'MAX_TOKENS', content: { parts } })).toBe('tool_calls')
    expect(finishReasonOf({ finishReason: 'SAFETY', content: { parts } })).toBe('content_filter')
  })
})

describe('usageOf', () => {
  it('adds thoughts to the completion and tool-use prompts to the prompt', () => {
    expect(
      usageOf({
        promptTokenCount: 100,
        candidatesTokenCount: 20,
        thoughtsTokenCount: 30,
        cachedContentTokenCount: 64,
        toolUsePromptTokenCount: 5,
        totalTokenCount: 155,
      }),
    ).toEqual({
      prompt_tokens: 105,
      completion_tokens: 50,
      total_tokens: 155,
      prompt_tokens_details: { cached_tokens: 64 },
      completion_tokens_details: { reasoning_tokens: 30 },
    })
  })

  it('does not count thoughts twice when the candidates already include them', () => {
    expect(
      usageOf({ promptTokenCount: 10, candidatesTokenCount: 40, thoughtsTokenCount: 15, totalTokenCount: 50 }),
    ).toEqual({
      prompt_tokens: 10,
      completion_tokens: 40,
      total_tokens: 50,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 15 },
    })
  })

  it('treats absent counts as zero', () => {
    expect(usageOf(undefined)).toEqual({
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    })
  })
})

describe('failed rows', () => {
  it('turns a status into an error-file line shaped like OpenAI’s', () => {
    const status =
      'Bad Request: {"error": {"code": 400, "message": "Please use a valid role: user, model.", "status": "INVALID_ARGUMENT"}}'
    const { route, line, usage } = convert({ ...row('bad', {}), status, response: undefined })
    expect(route).toBe('error')
    expect(usage).toBeNull()
    expect(line).toEqual({
      id: line.id,
      custom_id: 'bad',
      response: {
        status_code: 400,
        request_id: line.response.request_id,
        body: {
          error: {
            message: 'Please use a valid role: user, model.',
            type: 'invalid_request_error',
            param: null,
            code: 'invalid_argument',
          },
        },
      },
      error: null,
    })
  })

  it.each([
    ['{"code":3,"message":"bad schema","status":"INVALID_ARGUMENT"}', 400, 'invalid_argument', 'bad schema'],
    ['{"code":8,"message":"quota"}', 429, 'resource_exhausted', 'quota'],
    ['{"code":13,"message":"boom"}', 500, 'internal', 'boom'],
    ['{"error":{"code":503,"message":"unavailable","status":"UNAVAILABLE"}}', 503, 'unavailable', 'unavailable'],
    [
      'Internal error occurred. Failed to get generateContentResponse: INTERNAL',
      500,
      'internal',
      'Internal error occurred. Failed to get generateContentResponse: INTERNAL',
    ],
    ['something odd happened', 500, 'vertex_error', 'something odd happened'],
  ])('maps status %j to %i %s', (status, statusCode, code, message) => {
    expect(rowError(status)).toEqual({ statusCode, code, message })
  })

  it('sends rows without candidates to the error file', () => {
    const blocked = convert(row('blocked', { candidates: [], promptFeedback: { blockReason: 'PROHIBITED_CONTENT' } }))
    expect(blocked.route).toBe('error')
    expect(blocked.line.response).toMatchObject({
      status_code: 400,
      body: {
        error: {
          message: 'Vertex AI blocked the prompt (PROHIBITED_CONTENT).',
          type: 'invalid_request_error',
          param: null,
          code: 'content_filter',
        },
      },
    })
    const empty = convert({ ...row('empty', {}), response: {} })
    expect(empty.route).toBe('error')
    expect(empty.line.response).toMatchObject({
      status_code: 500,
      body: { error: { type: 'server_error', code: 'empty_response' } },
    })
  })

  it('cannot attribute a row without a custom_id', () => {
    expect(convertVertexRow({ status: '', request: {}, response: {} })).toBeUndefined()
  })
})

describe('streaming the predictions', () => {
  // Rows in no particular order, spread over two "files", with multibyte text.
  const rows = [
    row('c', {
      responseId: 'r3',
      candidates: [{ content: { parts: [{ text: '第三の答え 🌸' }] }, finishReason: 'STOP' }],
    }),
    { ...row('fail-b', {}), status: '{"code":3,"message":"Ungültige Anfrage — 無効"}', response: undefined },
    row('a', {
      responseId: 'r1',
      candidates: [{ content: { parts: [{ text: 'Première réponse — ça marche ✅' }] }, finishReason: 'MAX_TOKENS' }],
      usageMetadata: {
        promptTokenCount: 3,
        candidatesTokenCount: 4,
        thoughtsTokenCount: 2,
        cachedContentTokenCount: 1,
        totalTokenCount: 9,
      },
    }),
    { status: '', request: { contents: [] }, response: {} },
  ]
  const fileOne = `${JSON.stringify(rows[0])}\n${JSON.stringify(rows[1])}\n`
  const fileTwo = `${JSON.stringify(rows[2])}\nnot json at all\n${JSON.stringify(rows[3])}\n\n`

  function chunked(text: string, size: number): Buffer[] {
    const bytes = Buffer.from(text)
    const out: Buffer[] = []
    for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
    return out
  }

  it.each([1, 3, 1 << 20])('routes each row by its own custom_id with chunks of %i bytes', async (size) => {
    const output = sink()
    const error = sink()
    const counts = await routeVertexOutput(
      Readable.from(chunked(fileOne + fileTwo, size)),
      { output, error },
      { idSeed: 'b' },
    )
    expect(counts).toEqual({
      succeeded: 2,
      failed: 1,
      unattributed: 2,
      duplicates: 0,
      usage: { inputTokens: 3 + 9, cachedTokens: 1, outputTokens: 6 + 10, reasoningTokens: 2, totalTokens: 9 + 19 },
    })
    const outLines = output
      .text()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    const errLines = error
      .text()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    for (const line of [...outLines, ...errLines]) schemas.assert('BatchRequestOutput', line)
    expect(outLines.map((line) => line.custom_id)).toEqual(['c', 'a'])
    expect(outLines[0].response.body.choices[0].message.content).toBe('第三の答え 🌸')
    expect(outLines[1].response.body.choices[0]).toMatchObject({
      message: { content: 'Première réponse — ça marche ✅' },
      finish_reason: 'length',
    })
    expect(errLines).toHaveLength(1)
    expect(errLines[0]).toMatchObject({
      custom_id: 'fail-b',
      response: {
        status_code: 400,
        body: { error: { message: 'Ungültige Anfrage — 無効', code: 'invalid_argument' } },
      },
      error: null,
    })
  })

  it('writes the output and error files apart, the same bytes every time', async () => {
    const convert = async () => {
      const [output, error] = [new PassThrough(), new PassThrough()]
      const texts = Promise.all([collect(output), collect(error)])
      await routeVertexOutput(Readable.from(chunked(fileOne + fileTwo, 5)), { output, error }, { idSeed: 'b' })
      output.end()
      error.end()
      return texts
    }
    const [output, errors] = await convert()
    expect(
      output
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).custom_id),
    ).toEqual(['c', 'a'])
    expect(
      errors
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).custom_id),
    ).toEqual(['fail-b'])
    // The same predictions convert to the same bytes.
    expect((await convert())[0]).toBe(output)
  })

  it('counts while it yields', async () => {
    const counts = emptyCounts()
    const seen: string[] = []
    for await (const converted of convertVertexOutput(Readable.from([Buffer.from(fileOne)]), {}, counts)) {
      seen.push(`${converted.route}:${converted.line.custom_id}`)
      expect(converted.text.endsWith('\n')).toBe(true)
    }
    expect(seen).toEqual(['output:c', 'error:fail-b'])
    expect(counts).toMatchObject({ succeeded: 1, failed: 1, unattributed: 0 })
  })

  it('writes each custom_id once, the first row of it winning, and counts the repeats', async () => {
    const counts = emptyCounts()
    const repeated = Readable.from([Buffer.from(fileOne + fileOne)])
    const seen: string[] = []
    for await (const converted of convertVertexOutput(repeated, {}, counts)) seen.push(converted.line.custom_id)
    expect(seen).toEqual(['c', 'fail-b'])
    expect(counts).toMatchObject({ succeeded: 1, failed: 1, duplicates: 2 })
    expect(counts.usage.inputTokens).toBe(9)
  })

  it('refuses a row longer than the limit', async () => {
    const drain = async () => {
      for await (const _ of convertVertexOutput(Readable.from([Buffer.from(fileOne)]), { maxLineBytes: 50 })) {
        // drain
      }
    }
    await expect(drain()).rejects.toMatchObject({ status: 502, code: 'upstream_error' })
  })
})
