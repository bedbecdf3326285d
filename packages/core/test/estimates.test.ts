import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { encode as cl100kEncode } from 'gpt-tokenizer/model/gpt-4-turbo'
import { countTokens as o200kChatTokens, encode as o200kEncode } from 'gpt-tokenizer/model/gpt-4o'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FileEstimator } from '../src/estimates/file-estimator.js'
import { loadTokenizers, tokenizerFor } from '../src/estimates/tokenizers.js'
import { ESTIMATE_HEADER } from '../src/http/wire.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { createPricing } from '../src/pricing/cost.js'
import { openai } from '../src/providers/openai/index.js'
import { serveKit } from './support/serve-kit.js'

/** Estimates of batch input files: how tokens are counted, and what an upload and a create carry. */

const pricing = createPricing({}, { onUnpricedModel: () => undefined })

function estimateOf(url: string, bodies: Record<string, unknown>[], sampling = {}) {
  const estimator = new FileEstimator(sampling)
  for (const body of bodies) estimator.add(url, body)
  return estimator.result(pricing)
}

const request = (id: string, body: Record<string, unknown>, url = '/v1/chat/completions') =>
  `${JSON.stringify({ custom_id: id, method: 'POST', url, body })}\n`

const SENTENCES = [
  'The quarterly report shows revenue of 4.2 million dollars, up twelve percent on the year before.',
  'Summarise the customer complaint below in one sentence and name the product it is about.',
  'Translate into French: the meeting has been moved to Thursday afternoon at three o’clock.',
  'List three risks of migrating the billing database during the holiday season, most serious first.',
]

beforeAll(() => loadTokenizers())

describe('counting tokens', () => {
  it('picks the encoding each OpenAI model uses, and Google’s approximation for Gemini', () => {
    for (const model of [
      'gpt-4o',
      'gpt-4o-mini-2024-07-18',
      'gpt-4.1-nano',
      'gpt-5',
      'o3-mini',
      'o1',
      'ft:gpt-4o-mini:acme::x1',
    ])
      expect(tokenizerFor(model), model).toBe('o200k_base')
    for (const model of [
      'gpt-4-turbo',
      'gpt-4',
      'gpt-3.5-turbo-0125',
      'text-embedding-3-small',
      'text-embedding-ada-002',
    ])
      expect(tokenizerFor(model), model).toBe('cl100k_base')
    for (const model of ['gemini-2.5-flash', 'google/gemini-2.0-flash-001', 'publishers/google/models/gemini-2.5-pro'])
      expect(tokenizerFor(model), model).toBe('chars/4')
  })

  it('counts chat input as OpenAI frames it: 3 tokens a message, 3 to prime the reply', () => {
    const messages = [
      { role: 'system', content: 'You are a careful analyst.' },
      { role: 'user', content: SENTENCES[0] as string },
      { role: 'assistant', content: 'Revenue grew 12% to $4.2M.' },
      { role: 'user', content: SENTENCES[3] as string },
    ]
    const estimate = estimateOf('/v1/chat/completions', [{ model: 'gpt-4o', messages, max_completion_tokens: 50 }])
    // gpt-tokenizer's own chat encoding of the same messages, reply primer included.
    expect(estimate?.inputTokens).toBe(o200kChatTokens(messages as never))
    const byHand = messages.reduce((n, m) => n + 3 + o200kEncode(m.role).length + o200kEncode(m.content).length, 3)
    expect(estimate?.inputTokens).toBe(byHand)
    expect(estimate?.tokenizer).toBe('o200k_base')
    expect(estimate?.sampledShare).toBe(0)
  })

  it('counts a name as 1 token more, text parts, and images at their documented size', () => {
    const text = SENTENCES[1] as string
    const [estimate] = [
      estimateOf('/v1/chat/completions', [
        {
          model: 'gpt-4o',
          messages: [
            {
              role: 'user',
              name: 'ann',
              content: [
                { type: 'text', text },
                { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'low' } },
              ],
            },
          ],
        },
      ]),
    ]
    expect(estimate?.inputTokens).toBe(
      3 + o200kEncode('user').length + o200kEncode('ann').length + 1 + o200kEncode(text).length + 85 + 3,
    )
  })

  it('counts embeddings input without framing, on the model’s encoding, and bounds no output', () => {
    const input = [SENTENCES[0] as string, SENTENCES[2] as string]
    const estimate = estimateOf('/v1/embeddings', [{ model: 'text-embedding-3-small', input }], {})
    expect(estimate).toMatchObject({
      tokenizer: 'cl100k_base',
      inputTokens: cl100kEncode(input[0] as string).length + cl100kEncode(input[1] as string).length,
      maxOutputTokens: 0,
    })
    expect(estimate?.minCost).toBe(estimate?.maxCost)
  })

  it('bounds output by each request’s own limit times its choices, else by the model’s maximum', () => {
    const messages = [{ role: 'user', content: 'hi' }]
    const estimate = estimateOf('/v1/chat/completions', [
      { model: 'gpt-4o-mini', messages, max_completion_tokens: 100 },
      { model: 'gpt-4o-mini', messages, max_tokens: 30, n: 3 },
      { model: 'gpt-4o-mini', messages },
    ])
    expect(estimate?.maxOutputTokens).toBe(100 + 90 + 16_384)
    expect(
      estimateOf('/v1/completions', [{ model: 'gpt-3.5-turbo-instruct', prompt: ['a', 'b'] }])?.maxOutputTokens,
    ).toBe(32)
  })

  it('counts Gemini at four characters a token, unframed, and bounds its output as Vertex will run it', () => {
    const estimate = estimateOf('/v1/chat/completions', [
      {
        model: 'gemini-2.5-flash',
        messages: [
          { role: 'user', content: 'x'.repeat(401) },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'gs://b/i.png' } }] },
        ],
        max_completion_tokens: 100, // generationConfig.maxOutputTokens
        n: 2, // candidateCount
      },
    ])
    // 'user' twice (1 token each), 401 characters (101 tokens), one image (258 tokens).
    expect(estimate).toMatchObject({ tokenizer: 'chars/4', inputTokens: 1 + 101 + 1 + 258, maxOutputTokens: 200 })
    // gemini-2.5-flash at batch prices: $0.15 input, $0.03 cached input, $1.25 output per 1M tokens.
    expect(estimate?.maxCost).toBeCloseTo((361 * 0.15 + 200 * 1.25) / 1e6, 12)
  })

  it('prices the range at batch prices: all input cached and no output, to no cache and every output', () => {
    const estimate = estimateOf('/v1/chat/completions', [
      { model: 'gpt-5-mini', messages: [{ role: 'user', content: SENTENCES[2] }], max_completion_tokens: 1000 },
    ])
    const input = estimate?.inputTokens as number
    // gpt-5-mini at batch prices: $0.125 input, $0.0125 cached input, $1 output per 1M tokens.
    expect(estimate?.minCost).toBeCloseTo((input * 0.0125) / 1e6, 12)
    expect(estimate?.maxCost).toBeCloseTo((input * 0.125 + 1000 * 1) / 1e6, 12)
    expect(estimateOf('/v1/chat/completions', [{ model: 'my-own-model', messages: [] }])).toMatchObject({
      minCost: null,
      maxCost: null,
    })
  })

  it('samples long texts past its budget and stays within 1% of tokenizing them all', () => {
    const bodies = Array.from({ length: 600 }, (_, i) => ({
      model: 'gpt-4o-mini',
      messages: [
        {
          role: 'user',
          content: `${i}: ${SENTENCES.map((s, k) => SENTENCES[(i + k) % 4] ?? s)
            .join(' ')
            .repeat(1 + (i % 5))}`,
        },
      ],
    }))
    const exact = estimateOf('/v1/chat/completions', bodies, { sampleEvery: 1 })
    const sampled = estimateOf('/v1/chat/completions', bodies, { exactChars: 20_000, sampleEvery: 16 })
    expect(exact?.sampledShare).toBe(0)
    expect(sampled?.sampledShare).toBeGreaterThan(0.8)
    const error =
      Math.abs((sampled?.inputTokens as number) - (exact?.inputTokens as number)) / (exact?.inputTokens as number)
    expect(error).toBeLessThan(0.01)
  })
})

describe('estimates on the wire and in process', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  const owners: Record<string, string> = { 'key-ann': 'ann', 'key-bob': 'bob' }

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    kit = createBatchKit({
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      authenticate: ({ headers }) => {
        const key = String(headers.authorization ?? '').replace(/^Bearer /, '')
        return owners[key] ? { owner: owners[key] } : undefined
      },
      tracking: { initialIntervalMs: 20, maxIntervalMs: 50, tickMs: 20 },
      freshnessMs: 0,
    })
  })
  afterAll(async () => {
    await kit?.close()
    await fake?.close()
  })

  const lines = SENTENCES.map((content, i) =>
    request(`r${i}`, {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer briefly.' },
        { role: 'user', content },
      ],
      max_tokens: 100,
    }),
  ).join('')

  it('answers the upload and the create with a batchkit-estimate header that kit.files.estimate repeats, and brackets the billed cost', async () => {
    const served = await serveKit(kit, 'key-ann')
    try {
      const upload = await served.client.files
        .create({ file: await toFile(Buffer.from(lines), 'in.jsonl'), purpose: 'batch' })
        .withResponse()
      const header = JSON.parse(upload.response.headers.get(ESTIMATE_HEADER) ?? 'null')
      const estimate = await kit.files.estimate({ owner: 'ann' }, upload.data.id)
      expect(estimate).not.toBeNull()
      expect(header).toEqual({
        model: 'gpt-4o-mini',
        requests: 4,
        input_tokens: estimate?.inputTokens,
        max_output_tokens: 400,
        min_cost_usd: estimate?.minCost,
        max_cost_usd: estimate?.maxCost,
        tokenizer: 'o200k_base',
        sampled_share: 0,
      })
      // The File object itself is OpenAI's, unchanged.
      expect(Object.keys(upload.data).sort()).toEqual(
        ['bytes', 'created_at', 'expires_at', 'filename', 'id', 'object', 'purpose', 'status', 'status_details'].sort(),
      )
      await expect(kit.files.estimate({ owner: 'bob' }, upload.data.id)).rejects.toMatchObject({ status: 404 })

      const created = await served.client.batches
        .create({ input_file_id: upload.data.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
        .withResponse()
      expect(JSON.parse(created.response.headers.get(ESTIMATE_HEADER) ?? 'null')).toEqual(header)

      await expect
        .poll(async () => (await served.client.batches.retrieve(created.data.id)).status, { timeout: 10_000 })
        .toBe('completed')
      const billed = (await kit.batches.retrieve({ owner: 'ann' }, created.data.id)).billing
      // The fake publishes usage from the request itself (see fakeUsage): 4 requests, 64 output tokens at most each.
      expect(billed?.totals.outputTokens).toBe(4 * 64)
      expect(billed?.totals.cost).toBeGreaterThanOrEqual(estimate?.minCost as number)
      expect(billed?.totals.cost).toBeLessThanOrEqual(estimate?.maxCost as number)
    } finally {
      await served.close()
    }
  })

  it('estimates nothing with estimates off, and nothing for a file that is not batch input', async () => {
    const off = createBatchKit({
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      estimates: { enabled: false },
    })
    try {
      const file = await off.files.create({ owner: 'default' }, { file: Readable.from([lines]), purpose: 'batch' })
      expect(await off.files.estimate({ owner: 'default' }, file.id)).toBeNull()
    } finally {
      await off.close()
    }
    const notes = await kit.files.create(
      { owner: 'ann' },
      { file: Readable.from(['just notes']), purpose: 'user_data' },
    )
    expect(await kit.files.estimate({ owner: 'ann' }, notes.id)).toBeNull()
  })
})
