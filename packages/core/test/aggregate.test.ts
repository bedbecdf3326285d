import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createPricing } from '../src/pricing/cost.js'
import {
  aggregateUsage,
  mergeUsageSummaries,
  normalizeUsage,
  UNKNOWN_MODEL,
  UsageAggregator,
  type UsageSummary,
} from '../src/tracking/aggregate.js'
import { aggregateUsageByParsing } from './support/aggregate-reference.js'
import { embeddingsLine, mixedLine, seededRandom } from './support/output-lines.js'

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const unpriced: string[] = []
const pricing = createPricing({}, { onUnpricedModel: (model) => unpriced.push(model) })

/** `text` as chunks of `size` bytes (bytes, not characters: multibyte characters get split). */
function chunksOf(text: string | Buffer, size: number): Buffer[] {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text
  const chunks: Buffer[] = []
  for (let offset = 0; offset < bytes.length; offset += size) chunks.push(bytes.subarray(offset, offset + size))
  return chunks
}

/** `text` cut at random byte offsets, as a network stream would deliver it. */
function randomChunks(text: string, random: () => number, maxSize: number): Buffer[] {
  const bytes = Buffer.from(text, 'utf8')
  const chunks: Buffer[] = []
  for (let offset = 0; offset < bytes.length; ) {
    const size = 1 + Math.floor(random() * maxSize)
    chunks.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return chunks
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item
}

function jsonl(lines: unknown[]): string {
  return `${lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n')}\n`
}

function ok(body: Record<string, unknown>, customId = 'request'): Record<string, unknown> {
  return {
    id: `batch_req_${customId}`,
    custom_id: customId,
    response: { status_code: 200, request_id: `req_${customId}`, body },
    error: null,
  }
}

function chat(model: string, usage: Record<string, unknown>, content = 'Hello!'): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_754_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage,
  }
}

// ---------------------------------------------------------------------------------------------
// A file worked out by hand
// ---------------------------------------------------------------------------------------------

/**
 * One line of every kind, with the numbers each contributes (batch prices per 1M: gpt-4o-mini 0.075 / 0.075 /
 * 0.30, o4-mini 0.55 / 0.55 / 2.20, text-embedding-3-small 0.01, gemini-2.5-flash 0.15 / 0.03 / 1.25,
 * gemini-2.5-pro 0.625 / 0.125 / 5.00).
 */
const HAND_LINES = [
  // L1 Chat, a dated snapshot, multibyte and escaped content: 200 × 0.075 + 1,000 × 0.075 + 300 × 0.30 = 180 → $0.00018.
  ok(
    chat(
      'gpt-4o-mini-2024-07-18',
      {
        prompt_tokens: 1200,
        completion_tokens: 300,
        total_tokens: 1500,
        prompt_tokens_details: { cached_tokens: 1000, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
      'Grüße aus 東京 🚀 — "quoted" \\ back\\slash\nnew line {"usage": {"prompt_tokens": 999999}}',
    ),
    'l1',
  ),
  // L2 Chat: 800 × 0.075 + 200 × 0.30 = 120 → $0.00012.
  ok(chat('gpt-4o-mini', { prompt_tokens: 800, completion_tokens: 200, total_tokens: 1000 }), 'l2'),
  // L3 Responses with reasoning inside output: 2,952 × 0.55 + 2,048 × 0.55 + 4,000 × 2.20 = 11,550 → $0.01155.
  ok(
    {
      id: 'resp_1',
      object: 'response',
      model: 'o4-mini',
      output: [{ type: 'message', content: [{ type: 'output_text', text: 'Ответ' }] }],
      usage: {
        input_tokens: 5000,
        input_tokens_details: { cached_tokens: 2048 },
        output_tokens: 4000,
        output_tokens_details: { reasoning_tokens: 3500 },
        total_tokens: 9000,
      },
    },
    'l3',
  ),
  // L4 Embeddings: 1,000 × 0.01 = 10 → $0.00001.
  ok(
    {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.0023, -0.0094, 0.0151] }],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 1000, total_tokens: 1000 },
    },
    'l4',
  ),
  // L5 A rejected request: failed, no tokens, no model (→ defaultModel).
  {
    id: 'batch_req_l5',
    custom_id: 'l5',
    response: {
      status_code: 400,
      request_id: 'req_l5',
      body: { error: { message: 'Invalid model', type: 'invalid_request_error', param: null, code: null } },
    },
    error: null,
  },
  // L6 A request the batch's expiry skipped: failed.
  {
    id: 'batch_req_l6',
    custom_id: 'l6',
    response: null,
    error: {
      code: 'batch_expired',
      message: 'This request could not be executed before the completion window expired.',
    },
  },
  // L7 Gemini through OpenAI compatibility: 500 thinking tokens only in total_tokens, billed as output:
  // 1,000 × 0.15 + 600 × 1.25 = 900 → $0.0009.
  ok(chat('gemini-2.5-flash', { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1600 }), 'l7'),
  // L8 Gemini's own usageMetadata, thoughts apart from candidates:
  // 6,000 × 0.625 + 4,000 × 0.125 + (1,000 + 2,000) × 5 = 19,250 → $0.01925.
  ok(
    {
      candidates: [{ content: { role: 'model', parts: [{ text: 'Bonjour' }] } }],
      modelVersion: 'gemini-2.5-pro',
      usageMetadata: {
        promptTokenCount: 10000,
        cachedContentTokenCount: 4000,
        candidatesTokenCount: 1000,
        thoughtsTokenCount: 2000,
        totalTokenCount: 13000,
      },
    },
    'l8',
  ),
]

/** What HAND_LINES sum to, written out. */
const HAND_SUMMARY: UsageSummary = {
  byModel: {
    'gemini-2.5-flash': {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 1000,
      cachedTokens: 0,
      outputTokens: 600,
      reasoningTokens: 500,
      totalTokens: 1600,
      cost: 0.0009,
    },
    'gemini-2.5-pro': {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 10000,
      cachedTokens: 4000,
      outputTokens: 3000,
      reasoningTokens: 2000,
      totalTokens: 13000,
      cost: 0.01925,
    },
    'gpt-4o-mini': {
      requests: { succeeded: 1, failed: 2 },
      inputTokens: 800,
      cachedTokens: 0,
      outputTokens: 200,
      reasoningTokens: 0,
      totalTokens: 1000,
      cost: 0.00012,
    },
    'gpt-4o-mini-2024-07-18': {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 1200,
      cachedTokens: 1000,
      outputTokens: 300,
      reasoningTokens: 0,
      totalTokens: 1500,
      cost: 0.00018,
    },
    'o4-mini': {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 5000,
      cachedTokens: 2048,
      outputTokens: 4000,
      reasoningTokens: 3500,
      totalTokens: 9000,
      cost: 0.01155,
    },
    'text-embedding-3-small': {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 1000,
      cachedTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
      totalTokens: 1000,
      cost: 0.00001,
    },
  },
  totals: {
    requests: { succeeded: 6, failed: 2 },
    inputTokens: 19000,
    cachedTokens: 7048,
    outputTokens: 8100,
    reasoningTokens: 6000,
    totalTokens: 27100,
    // 0.00018 + 0.00012 + 0.01155 + 0.00001 + 0.0009 + 0.01925
    cost: 0.03201,
  },
  unpricedModels: [],
  lines: 8,
  malformedLines: 0,
}

describe('aggregateUsage: a file worked out by hand', () => {
  const file = jsonl(HAND_LINES)

  it('sums requests, tokens and cost per model and in total', async () => {
    expect(await aggregateUsage([file], pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
  })

  it('gives the same result however the bytes are chunked (1 byte, 7 bytes, whole, random, text)', async () => {
    const random = seededRandom(7)
    const feeds: Array<Array<Buffer | string>> = [
      chunksOf(file, 1),
      chunksOf(file, 7),
      chunksOf(file, 4096),
      [Buffer.from(file)],
      randomChunks(file, random, 50),
      randomChunks(file, random, 500),
      [file],
      [...file], // one character (not byte) at a time
    ]
    for (const feed of feeds) {
      expect(await aggregateUsage(iterate(feed), pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
    }
  })

  it('reads a Node Readable', async () => {
    const stream = Readable.from(chunksOf(file, 13))
    expect(await aggregateUsage(stream, pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
  })

  it('accepts CRLF line endings and blank lines, and a last line without a newline', async () => {
    const crlf = `\r\n${HAND_LINES.map((line) => JSON.stringify(line)).join('\r\n\r\n')}`
    expect(await aggregateUsage([crlf], pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
  })

  it('accepts whitespace between tokens', async () => {
    const spaced = jsonl(HAND_LINES.map((line) => JSON.stringify(line, null, '\t').replaceAll('\n', ' ')))
    expect(await aggregateUsage(chunksOf(spaced, 3), pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
  })

  it('agrees with whole-line JSON.parse', async () => {
    expect(await aggregateUsageByParsing([file], pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(HAND_SUMMARY)
  })
})

// ---------------------------------------------------------------------------------------------
// Unknown models, failures, malformed lines
// ---------------------------------------------------------------------------------------------

describe('aggregateUsage: unknown models', () => {
  it('cost null, make the total null, and are listed', async () => {
    const lines = [
      ...HAND_LINES,
      ok(chat('my-finetune', { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 })),
    ]
    const summary = await aggregateUsage([jsonl(lines)], pricing, { defaultModel: 'gpt-4o-mini' })
    expect(summary.byModel['my-finetune']).toEqual({
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 10,
      cachedTokens: 0,
      outputTokens: 5,
      reasoningTokens: 0,
      totalTokens: 15,
      cost: null,
    })
    expect(summary.byModel['o4-mini']!.cost).toBe(0.01155)
    expect(summary.totals).toEqual({
      requests: { succeeded: 7, failed: 2 },
      inputTokens: 19010,
      cachedTokens: 7048,
      outputTokens: 8105,
      reasoningTokens: 6000,
      totalTokens: 27115,
      cost: null,
    })
    expect(summary.unpricedModels).toEqual(['my-finetune'])
    expect(unpriced).toContain('my-finetune')
  })

  it('cost 0 when they used no tokens (only failed requests, moderations)', async () => {
    const file = jsonl([
      { id: 'a', custom_id: 'a', response: { status_code: 400, request_id: 'r', body: { error: {} } }, error: null },
      ok({ id: 'modr-1', model: 'omni-moderation-latest', results: [{ flagged: false }] }),
    ])
    const summary = await aggregateUsage([file], pricing)
    expect(summary.byModel[UNKNOWN_MODEL]).toMatchObject({ requests: { succeeded: 0, failed: 1 }, cost: 0 })
    expect(summary.byModel['omni-moderation-latest']).toMatchObject({ requests: { succeeded: 1, failed: 0 }, cost: 0 })
    expect(summary.totals.cost).toBe(0)
    expect(summary.unpricedModels).toEqual([])
  })
})

describe('aggregateUsage: failed requests', () => {
  it('counts a 400 line as failed, with no tokens', async () => {
    const summary = await aggregateUsage(
      [jsonl([HAND_LINES[4]])],
      createPricing({}, { onUnpricedModel: () => undefined }),
      { defaultModel: 'gpt-4.1' },
    )
    expect(summary.byModel).toEqual({
      'gpt-4.1': {
        requests: { succeeded: 0, failed: 1 },
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        reasoningTokens: 0,
        totalTokens: 0,
        cost: 0,
      },
    })
    expect(summary.lines).toBe(1)
  })

  it('counts 5xx, 3xx and lines with both a response and an error as failed', async () => {
    const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
    const file = jsonl([
      { response: { status_code: 500, body: { error: {} } }, error: null },
      { response: { status_code: 302, body: {} }, error: null },
      { response: { status_code: 200, body: chat('gpt-4o', usage) }, error: { code: 'x', message: 'y' } },
      { response: { status_code: 201, body: chat('gpt-4o', usage) } },
      { response: { status_code: 200, body: {} }, error: 0 }, // any error but null
    ])
    const summary = await aggregateUsage([file], pricing, { defaultModel: 'gpt-4o' })
    expect(summary.byModel['gpt-4o']!.requests).toEqual({ succeeded: 1, failed: 4 })
    // Tokens a line reports are summed whatever its status: 2 lines × (1 + 1).
    expect(summary.byModel['gpt-4o']!.totalTokens).toBe(4)
    expect(await aggregateUsageByParsing([file], pricing, { defaultModel: 'gpt-4o' })).toEqual(summary)
  })
})

describe('aggregateUsage: malformed lines', () => {
  const good = JSON.stringify(HAND_LINES[1])
  const MALFORMED = [
    'not json',
    '[1,2,3]',
    '"a string"',
    'null',
    good.slice(0, 40), // truncated
    good.slice(0, -1), // truncated at the last brace
    `${good} trailing`,
    `${good}}`,
    `x${good}`,
    '{"response":{"status_code":"200","body":{}},"error":null}', // status is not a number
    '{"response":{"body":{}},"error":null}', // no status
    '{"response":null,"error":null}', // neither
    '{"id":"x","custom_id":"y"}',
    '{"response":{"status_code":200,"body":{"model":"gpt-4o","usage":{"prompt_tokens":}}},"error":null}', // bad usage
    '{"response":{"status_code":200,"body":{"model":"gpt-4o","usage":{"prompt_tokens":1]}},"error":null}', // mismatch
    '{"response":{"status_code":200,"body":{"choices":[{"a":1}}]}},"error":null}', // mismatch in a skipped part
    '{"response":{"status_code":200,"body":{"model":"gpt-\\q"}},"error":null}', // bad escape in the model
    '{"response" {"status_code":200}}', // no colon
    '{"response":{"status_code":200},,"error":null}', // double comma
    '{"response":{"status_code":200} "error":null}', // no comma
    '{"response":{"status_code":200,"body":{"text":"unterminated}},"error":null}',
    '{"response":{"status_code":200,"body":{"choices":[1}},"error":null}}', // `}` closing an array, balanced after
    '{"response":{"status_code":200},"error":null,}', // trailing comma
    '{"response":{"status_code":200,"body":{x,"model":"gpt-4o"},"error":null}', // no key after `{` (balanced if `x` closed it)
    '["response":{"status_code":200},"error":null}', // an array opened, an object closed
    ...['0200', '2.', '2e', '0x10', '1e2.5', '200x', '2..0', '--2', 'n200', 'true', 'null'].map(
      (status) => `{"response":{"status_code":${status},"body":{}},"error":null}`, // not a JSON number
    ),
  ]

  it('counts them, never throws, and still sums the good lines', async () => {
    const file = jsonl([good, ...MALFORMED, '', '   ', good])
    const summary = await aggregateUsage(chunksOf(file, 5), pricing)
    expect(summary.malformedLines).toBe(MALFORMED.length)
    expect(summary.lines).toBe(MALFORMED.length + 2)
    expect(summary.byModel).toEqual({
      'gpt-4o-mini': {
        requests: { succeeded: 2, failed: 0 },
        inputTokens: 1600,
        cachedTokens: 0,
        outputTokens: 400,
        reasoningTokens: 0,
        totalTokens: 2000,
        cost: 0.00024,
      },
    })
    // The JSON.parse implementation sees the same lines as malformed.
    expect(await aggregateUsageByParsing([file], pricing)).toEqual(summary)
  })

  it('recovers at the next line after a malformed one split across chunks', async () => {
    const file = jsonl(['{"response":{"status_code":200,"body":{"text":"abc\\', good])
    for (const size of [1, 2, 3, 1000]) {
      const summary = await aggregateUsage(chunksOf(file, size), pricing)
      expect(summary).toMatchObject({ lines: 2, malformedLines: 1, totals: { inputTokens: 800 } })
    }
  })
})

// ---------------------------------------------------------------------------------------------
// JSON details the scanner must get right
// ---------------------------------------------------------------------------------------------

describe('aggregateUsage: JSON details', () => {
  const usage = { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 }

  it('reads only the response body’s own model and usage, not look-alikes nested deeper or in strings', async () => {
    const line = ok({
      choices: [
        {
          message: {
            content: '"model":"o1","usage":{"prompt_tokens":1000000}',
            tool_calls: [{ function: { arguments: '{"model":"o1","usage":{"prompt_tokens":5}}' } }],
          },
          nested: { model: 'o1', usage: { prompt_tokens: 7 }, response: { status_code: 500 } },
        },
      ],
      metadata: { model: 'o1', usage: { prompt_tokens: 9 } },
      model: 'gpt-4o',
      usage,
    })
    const file = jsonl([line])
    const summary = await aggregateUsage(chunksOf(file, 3), pricing)
    expect(Object.keys(summary.byModel)).toEqual(['gpt-4o'])
    expect(summary.byModel['gpt-4o']).toMatchObject({ inputTokens: 100, outputTokens: 10, requests: { succeeded: 1 } })
    expect(await aggregateUsageByParsing([file], pricing)).toEqual(summary)
  })

  it('skips containers at every depth, arrays and objects, empty or nested', async () => {
    const file = jsonl([
      {
        meta: { tags: [{ a: [1, [2, {}]] }, { b: {} }], x: [[]], y: {} },
        list: [],
        response: {
          headers: [{ k: 'v' }, []],
          status_code: 200,
          extra: { deep: [[[{ model: 'o1' }]]] },
          body: { choices: [], model: 'gpt-4o', empty: {}, usage, after: [{}, [], 'x', 1, true, null] },
          trailer: [],
        },
        error: null,
        end: [{}],
      },
    ])
    for (const size of [1, 5, 1000]) {
      const summary = await aggregateUsage(chunksOf(file, size), pricing)
      expect(summary).toEqual(await aggregateUsageByParsing([file], pricing))
      expect(summary.byModel['gpt-4o']).toMatchObject({ requests: { succeeded: 1 }, inputTokens: 100 })
    }
  })

  it('decodes keys and model names written with escapes', async () => {
    const file =
      '{"response":{"status_code":200,"b\\u006fdy":{"mod\\u0065l":"gpt-4o\\u002dmini","usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110}}},"error":null}\n'
    for (const size of [1, 4, 1000]) {
      const summary = await aggregateUsage(chunksOf(file, size), pricing)
      expect(Object.keys(summary.byModel)).toEqual(['gpt-4o-mini'])
      expect(summary.byModel['gpt-4o-mini']!.cost).toBe(0.0000105)
    }
  })

  it('handles strings ending in escaped backslashes and escaped quotes at every chunk boundary', async () => {
    const long = (text: string) => `${'x'.repeat(60)}${text}${'y'.repeat(60)}`
    const tricky = [
      '\\',
      '\\\\',
      '\\"',
      '"\\',
      'a\\\\"b',
      '\\\\\\"',
      `${'x'.repeat(100)}\\"${'y'.repeat(100)}\\`,
      // Past the first 48 bytes a string is searched natively: runs of backslashes, odd and even, before quotes.
      long('\\"'),
      long('\\\\"'),
      long('\\\\\\"'),
      long('\\\\'),
      `${long('"')}\\\\`,
    ]
    const line = ok({ model: 'gpt-4o', tricky, [tricky.join('')]: tricky, usage })
    const file = jsonl([line, line])
    const read = async (chunks: Buffer[]) => {
      const summary = await aggregateUsage(chunks, pricing)
      expect(summary.malformedLines).toBe(0)
      expect(summary.byModel['gpt-4o']).toMatchObject({ requests: { succeeded: 2 }, inputTokens: 200 })
    }
    for (let size = 1; size <= 12; size++) await read(chunksOf(file, size))
    // Cut once at every offset, so that a long string's piece ends on every byte of it.
    const bytes = Buffer.from(file)
    for (let cut = 1; cut < bytes.length; cut++) await read([bytes.subarray(0, cut), bytes.subarray(cut)])
  })

  it('takes the last of duplicated keys, like JSON.parse', async () => {
    const file = jsonl([
      '{"response":{"status_code":500,"status_code":200,"body":{"model":"o3","model":"gpt-4o","usage":{"prompt_tokens":1},"usage":{"prompt_tokens":100,"completion_tokens":10}}},"error":{"x":1},"error":null}',
    ])
    const summary = await aggregateUsage([file], pricing)
    expect(summary).toEqual(await aggregateUsageByParsing([file], pricing))
    expect(summary.byModel['gpt-4o']).toMatchObject({ requests: { succeeded: 1, failed: 0 }, inputTokens: 100 })
  })

  it('forgets a model or usage that a later duplicate of its key replaces with something unreadable', async () => {
    const file = jsonl([
      '{"response":{"status_code":200,"body":{"modelVersion":"gemini-2.5-pro","modelVersion":5,"usageMetadata":{"promptTokenCount":7},"usageMetadata":null}},"error":null}',
    ])
    const summary = await aggregateUsage([file], pricing, { defaultModel: 'gpt-4o' })
    expect(summary).toEqual(await aggregateUsageByParsing([file], pricing, { defaultModel: 'gpt-4o' }))
    expect(summary.byModel).toEqual({
      'gpt-4o': expect.objectContaining({ requests: { succeeded: 1, failed: 0 }, inputTokens: 0, cost: 0 }),
    })
  })

  it('reads status codes written as any JSON number', async () => {
    const line = (status: string) => `{"response":{"status_code":${status},"body":{"model":"gpt-4o"}},"error":null}`
    const file = jsonl(['2e2', '200.0', '2.5e+2', '20E1', '299.9', '-0', '199.99', '3e2'].map(line))
    const summary = await aggregateUsage([file], pricing)
    expect(summary).toEqual(await aggregateUsageByParsing([file], pricing))
    expect(summary).toMatchObject({ lines: 8, malformedLines: 0 })
    expect(summary.byModel['gpt-4o']!.requests).toEqual({ succeeded: 5, failed: 3 })
  })

  it('tells apart consecutive model names of the same length', async () => {
    const usage = { prompt_tokens: 1, completion_tokens: 1 }
    const file = jsonl([ok({ model: 'abc', usage }), ok({ model: 'xyz', usage }), ok({ model: 'xyz', usage })])
    const summary = await aggregateUsage([file], pricing)
    expect(Object.keys(summary.byModel)).toEqual(['abc', 'xyz'])
    expect(summary.byModel.xyz!.requests.succeeded).toBe(2)
  })

  it('reads a line far longer than any chunk (a large embeddings response) without holding it', async () => {
    const random = seededRandom(3)
    const line = `${JSON.stringify(embeddingsLine(random, 'text-embedding-3-large', 200, 3072))}\n`
    expect(line.length).toBeGreaterThan(5_000_000)
    const summary = await aggregateUsage(chunksOf(line, 64 * 1024), pricing)
    const reference = await aggregateUsageByParsing([line], pricing)
    expect(summary).toEqual(reference)
    expect(summary.byModel['text-embedding-3-large']!.requests.succeeded).toBe(1)
  })

  it('finds the end of a string after a long run of escaped backslashes, a chunk starting or ending anywhere in it', async () => {
    const line = ok({ model: 'gpt-4o', note: '\\'.repeat(150), usage })
    const file = jsonl([line, line])
    for (let size = 40; size <= 160; size++) {
      const summary = await aggregateUsage(chunksOf(file, size), pricing)
      expect(summary.malformedLines).toBe(0)
      expect(summary.byModel['gpt-4o']).toMatchObject({ requests: { succeeded: 2 }, inputTokens: 200 })
    }
  })

  it('reads a model name of up to 64 KiB, and treats a longer one as malformed, wherever a chunk ends in it', async () => {
    for (const [length, fits] of [
      [64 * 1024, true],
      [64 * 1024 + 1, false],
    ] as const) {
      const model = 'm'.repeat(length)
      const line = Buffer.from(jsonl([ok({ model, usage })]))
      const close = line.indexOf('"', line.indexOf('"model":"') + '"model":"'.length)
      for (const cut of [1000, close - 1, close, close + 1]) {
        const summary = await aggregateUsage([line.subarray(0, cut), line.subarray(cut)], pricing)
        expect(summary.malformedLines).toBe(fits ? 0 : 1)
        expect(Object.keys(summary.byModel)).toEqual(fits ? [model] : [])
      }
    }
  })

  it('reads a usage object of up to 64 KiB, and treats a larger one as malformed, however it is chunked', async () => {
    /** A usage object of exactly `bytes` bytes of JSON. */
    const usageOf = (bytes: number) => {
      const padded = { ...usage, note: '' }
      padded.note = 'x'.repeat(bytes - JSON.stringify(padded).length)
      expect(JSON.stringify(padded)).toHaveLength(bytes)
      return padded
    }
    const fits = jsonl([ok({ model: 'gpt-4o', usage: usageOf(64 * 1024) })])
    const over = jsonl([ok({ model: 'gpt-4o', usage: usageOf(64 * 1024 + 1) })])
    for (const size of [7, 1000, 40_000, 1_000_000]) {
      const read = await aggregateUsage(chunksOf(fits, size), pricing)
      expect(read).toMatchObject({ lines: 1, malformedLines: 0 })
      expect(read.byModel['gpt-4o']).toMatchObject({ inputTokens: 100, outputTokens: 10 })
      expect(await aggregateUsage(chunksOf(over, size), pricing)).toMatchObject({ lines: 1, malformedLines: 1 })
    }
  })

  it('treats a model name, status code or error longer than 64 KiB, or nesting deeper than 1,024, as malformed', async () => {
    const file = jsonl([
      ok({ model: 'm'.repeat(70_000), usage }),
      `{"response":{"status_code":2${'0'.repeat(70_000)},"body":{}},"error":null}`,
      `{"response":{"status_code":200,"body":{"deep":${'['.repeat(2_000)}${']'.repeat(2_000)}}},"error":null}`,
      `{"response":{"status_code":200,"body":{}},"error":1${'0'.repeat(70_000)}}`,
      ok({ model: 'gpt-4o', usage }),
    ])
    for (const size of [1000, 1_000_000]) {
      const summary = await aggregateUsage(chunksOf(file, size), pricing)
      expect(summary).toMatchObject({ lines: 5, malformedLines: 4 })
      expect(Object.keys(summary.byModel)).toEqual(['gpt-4o'])
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Against the JSON.parse implementation, on random files
// ---------------------------------------------------------------------------------------------

describe('aggregateUsage: random files agree with whole-line JSON.parse', () => {
  /** A random mix of realistic lines, some spaced out, some broken. */
  function randomFile(random: () => number, lines: number): string {
    const out: string[] = []
    for (let i = 0; i < lines; i++) {
      let line = mixedLine(random)
      const roll = random()
      if (roll < 0.1) line = JSON.stringify(JSON.parse(line), null, ' ').replaceAll('\n', random() < 0.5 ? ' ' : '\t')
      else if (roll < 0.15)
        line = line.slice(0, Math.floor(random() * (line.length - 1))) // truncated
      else if (roll < 0.17) line = `${line} {}`
      else if (roll < 0.19) line = ''
      out.push(line)
    }
    return out.join(random() < 0.5 ? '\n' : '\r\n')
  }

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}`, async () => {
      const random = seededRandom(seed)
      const file = randomFile(random, 150)
      const expected = await aggregateUsageByParsing([file], pricing, { defaultModel: 'gpt-4o-mini' })
      expect(expected.lines).toBeGreaterThan(100)
      expect(expected.malformedLines).toBeGreaterThan(0)
      for (const maxSize of [8, 64, 100_000]) {
        const feed = randomChunks(file, random, maxSize)
        expect(await aggregateUsage(iterate(feed), pricing, { defaultModel: 'gpt-4o-mini' })).toEqual(expected)
      }
      // Byte by byte, pushed synchronously (an async iteration per byte would only slow the test down).
      const aggregator = new UsageAggregator(pricing, { defaultModel: 'gpt-4o-mini' })
      for (const chunk of chunksOf(file, 1)) aggregator.write(chunk)
      expect(aggregator.finish()).toEqual(expected)
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Usage shapes, merging, the push form
// ---------------------------------------------------------------------------------------------

describe('normalizeUsage', () => {
  it('reads Chat Completions usage: reasoning inside completion tokens', () => {
    expect(
      normalizeUsage({
        prompt_tokens: 500,
        completion_tokens: 900,
        total_tokens: 1400,
        prompt_tokens_details: { cached_tokens: 128 },
        completion_tokens_details: { reasoning_tokens: 640 },
      }),
    ).toEqual({ inputTokens: 500, cachedTokens: 128, outputTokens: 900, reasoningTokens: 640 })
  })

  it('reads Responses usage', () => {
    expect(
      normalizeUsage({
        input_tokens: 300,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 50,
        output_tokens_details: { reasoning_tokens: 20 },
        total_tokens: 350,
      }),
    ).toEqual({ inputTokens: 300, cachedTokens: 0, outputTokens: 50, reasoningTokens: 20 })
  })

  it('reads Embeddings usage', () => {
    expect(normalizeUsage({ prompt_tokens: 42, total_tokens: 42 })).toEqual({
      inputTokens: 42,
      cachedTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
    })
  })

  it('adds Gemini thinking to output, once', () => {
    // usageMetadata: thoughts apart from candidates.
    expect(
      normalizeUsage({
        promptTokenCount: 100,
        toolUsePromptTokenCount: 20,
        cachedContentTokenCount: 50,
        candidatesTokenCount: 30,
        thoughtsTokenCount: 70,
        totalTokenCount: 220,
      }),
    ).toEqual({ inputTokens: 120, cachedTokens: 50, outputTokens: 100, reasoningTokens: 70 })
    // usageMetadata whose total shows the thoughts already inside the candidates: not added twice.
    expect(
      normalizeUsage({
        promptTokenCount: 100,
        candidatesTokenCount: 100,
        thoughtsTokenCount: 70,
        totalTokenCount: 200,
      }),
    ).toEqual({ inputTokens: 100, cachedTokens: 0, outputTokens: 100, reasoningTokens: 70 })
    // OpenAI-compatible, thoughts reported but left out of completion_tokens (total = prompt + completion + thoughts).
    expect(
      normalizeUsage({
        prompt_tokens: 100,
        completion_tokens: 30,
        total_tokens: 200,
        completion_tokens_details: { reasoning_tokens: 70 },
      }),
    ).toEqual({ inputTokens: 100, cachedTokens: 0, outputTokens: 100, reasoningTokens: 70 })
    // OpenAI-compatible, thoughts only in the total.
    expect(normalizeUsage({ prompt_tokens: 100, completion_tokens: 30, total_tokens: 200 })).toEqual({
      inputTokens: 100,
      cachedTokens: 0,
      outputTokens: 100,
      reasoningTokens: 70,
    })
    // Tokens only in the total, reasoning reported: billed as output, the reported reasoning kept.
    expect(
      normalizeUsage({
        prompt_tokens: 100,
        completion_tokens: 30,
        total_tokens: 200,
        completion_tokens_details: { reasoning_tokens: 20 },
      }),
    ).toEqual({ inputTokens: 100, cachedTokens: 0, outputTokens: 100, reasoningTokens: 20 })
    // Already converted (as the Vertex provider does): thoughts inside completion_tokens, total = prompt + completion.
    expect(
      normalizeUsage({
        prompt_tokens: 100,
        completion_tokens: 100,
        total_tokens: 200,
        completion_tokens_details: { reasoning_tokens: 70 },
      }),
    ).toEqual({ inputTokens: 100, cachedTokens: 0, outputTokens: 100, reasoningTokens: 70 })
  })

  it('ignores missing, negative and non-numeric counts, clamps cached to input, and rejects unknown shapes', () => {
    expect(
      normalizeUsage({ prompt_tokens: 10, completion_tokens: -3, prompt_tokens_details: { cached_tokens: 99 } }),
    ).toEqual({ inputTokens: 10, cachedTokens: 10, outputTokens: 0, reasoningTokens: 0 })
    expect(normalizeUsage({ input_tokens: '7', output_tokens: null })).toEqual({
      inputTokens: 0,
      cachedTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
    })
    // Any one field of a shape names it.
    const tokens = (input: number, output: number) => ({
      inputTokens: input,
      cachedTokens: 0,
      outputTokens: output,
      reasoningTokens: 0,
    })
    expect(normalizeUsage({ completion_tokens: 5 })).toEqual(tokens(0, 5))
    expect(normalizeUsage({ input_tokens: 4 })).toEqual(tokens(4, 0))
    expect(normalizeUsage({ output_tokens: 6 })).toEqual(tokens(0, 6))
    expect(normalizeUsage({ promptTokenCount: 3 })).toEqual(tokens(3, 0))
    expect(normalizeUsage({ candidatesTokenCount: 2 })).toEqual(tokens(0, 2))
    expect(normalizeUsage({ totalTokenCount: 0 })).toEqual(tokens(0, 0))
    expect(normalizeUsage({ tokens: 5 })).toBeUndefined()
    expect(normalizeUsage(null)).toBeUndefined()
    expect(normalizeUsage([1])).toBeUndefined()
  })
})

describe('mergeUsageSummaries', () => {
  it('sums an output file and an error file', async () => {
    const output = await aggregateUsage([jsonl([HAND_LINES[1], HAND_LINES[2]])], pricing, {
      defaultModel: 'gpt-4o-mini',
    })
    const errors = await aggregateUsage([jsonl([HAND_LINES[4], HAND_LINES[5], 'garbage'])], pricing, {
      defaultModel: 'gpt-4o-mini',
    })
    const merged = mergeUsageSummaries(output, errors)
    expect(merged.byModel['gpt-4o-mini']).toEqual({
      requests: { succeeded: 1, failed: 2 },
      inputTokens: 800,
      cachedTokens: 0,
      outputTokens: 200,
      reasoningTokens: 0,
      totalTokens: 1000,
      cost: 0.00012,
    })
    expect(merged.totals).toMatchObject({ requests: { succeeded: 2, failed: 2 }, totalTokens: 10000, cost: 0.01167 })
    expect(merged).toMatchObject({ lines: 5, malformedLines: 1, unpricedModels: [] })
    // The inputs are not modified.
    expect(output.byModel['gpt-4o-mini']!.requests).toEqual({ succeeded: 1, failed: 0 })
  })

  it('is null in cost when a part is', async () => {
    const a = await aggregateUsage([jsonl([HAND_LINES[1]])], pricing)
    const b = await aggregateUsage(
      [jsonl([ok(chat('gpt-4o-mini', {}, 'x')), ok(chat('mystery', { prompt_tokens: 1, completion_tokens: 1 }))])],
      pricing,
    )
    const merged = mergeUsageSummaries(a, b)
    expect(merged.byModel['gpt-4o-mini']!.cost).toBe(0.00012)
    expect(merged.byModel.mystery!.cost).toBeNull()
    expect(merged.totals.cost).toBeNull()
    expect(merged.unpricedModels).toEqual(['mystery'])
    expect(mergeUsageSummaries(a, a).totals.cost).toBe(0.00024)
    expect(mergeUsageSummaries().totals).toMatchObject({ requests: { succeeded: 0, failed: 0 }, cost: 0 })
  })
})

describe('UsageAggregator', () => {
  it('takes chunks pushed to it', () => {
    const aggregator = new UsageAggregator(pricing, { defaultModel: 'gpt-4o-mini' })
    for (const chunk of chunksOf(jsonl(HAND_LINES), 11)) aggregator.write(chunk)
    expect(aggregator.finish()).toEqual(HAND_SUMMARY)
    expect(() => aggregator.write('x')).toThrow(/after finish/)
  })
})
