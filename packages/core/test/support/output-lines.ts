/**
 * Realistic lines of OpenAI batch output and error files, for the aggregation tests and the throughput script.
 * Deterministic for a given `random`.
 */

/** A seeded PRNG (mulberry32): the same seed gives the same lines. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = [
  'the',
  'batch',
  'result',
  'token',
  'naïve',
  'café',
  'Straße',
  '東京',
  'データ',
  '🚀',
  'ünïcödé',
  '"quoted"',
  'back\\slash',
  'tab\there',
  'line\nbreak',
  'json {"model": "gpt-4o", "usage": {"prompt_tokens": 999}}',
  'price',
  'model',
  'usage',
  'summary',
]

function text(random: () => number, words: number): string {
  const out: string[] = []
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(random() * WORDS.length)]!)
  return out.join(' ')
}

function int(random: () => number, max: number): number {
  return Math.floor(random() * max)
}

let sequence = 0
const nextId = (prefix: string): string => `${prefix}_${(++sequence).toString(36).padStart(10, '0')}`

/** A succeeded Chat Completions line. */
export function chatLine(random: () => number, model = 'gpt-4o-mini', words = 150): Record<string, unknown> {
  const prompt = 50 + int(random, 3000)
  const completion = 10 + int(random, 800)
  const reasoning = model.startsWith('o') || model.startsWith('gpt-5') ? int(random, completion) : 0
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: {
      status_code: 200,
      request_id: nextId('req'),
      body: {
        id: nextId('chatcmpl'),
        object: 'chat.completion',
        created: 1_754_000_000 + sequence,
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text(random, words), refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
          prompt_tokens_details: { cached_tokens: int(random, prompt), audio_tokens: 0 },
          completion_tokens_details: {
            reasoning_tokens: reasoning,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
          },
        },
        service_tier: 'default',
        system_fingerprint: 'fp_0123456789',
      },
    },
    error: null,
  }
}

/** A succeeded Responses line. */
export function responsesLine(random: () => number, model = 'o4-mini', words = 120): Record<string, unknown> {
  const input = 50 + int(random, 3000)
  const output = 10 + int(random, 2000)
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: {
      status_code: 200,
      request_id: nextId('req'),
      body: {
        id: nextId('resp'),
        object: 'response',
        created_at: 1_754_000_000 + sequence,
        status: 'completed',
        error: null,
        incomplete_details: null,
        model,
        output: [
          { type: 'reasoning', id: nextId('rs'), summary: [] },
          {
            type: 'message',
            id: nextId('msg'),
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text: text(random, words), annotations: [] }],
          },
        ],
        usage: {
          input_tokens: input,
          input_tokens_details: { cached_tokens: int(random, input) },
          output_tokens: output,
          output_tokens_details: { reasoning_tokens: int(random, output) },
          total_tokens: input + output,
        },
      },
    },
    error: null,
  }
}

/** A succeeded Embeddings line with `inputs` vectors of `dimensions` floats. */
export function embeddingsLine(
  random: () => number,
  model = 'text-embedding-3-small',
  inputs = 1,
  dimensions = 1536,
): Record<string, unknown> {
  const prompt = inputs * (5 + int(random, 500))
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: {
      status_code: 200,
      request_id: nextId('req'),
      body: {
        object: 'list',
        data: Array.from({ length: inputs }, (_, index) => ({
          object: 'embedding',
          index,
          embedding: Array.from({ length: dimensions }, () => Math.round((random() - 0.5) * 2e9) / 1e10),
        })),
        model,
        usage: { prompt_tokens: prompt, total_tokens: prompt },
      },
    },
    error: null,
  }
}

/** A Chat Completions line as Gemini's OpenAI-compatible endpoint reports thinking: in the total only. */
export function geminiCompatLine(random: () => number, model = 'gemini-2.5-flash'): Record<string, unknown> {
  const line = chatLine(random, model, 60)
  const usage = (line.response as { body: { usage: Record<string, unknown> } }).body.usage
  const thoughts = int(random, 500)
  usage.total_tokens = (usage.prompt_tokens as number) + (usage.completion_tokens as number) + thoughts
  usage.completion_tokens_details = undefined
  return line
}

/** A line whose body carries Gemini's own `usageMetadata` and `modelVersion`. */
export function geminiNativeLine(random: () => number, model = 'gemini-2.5-pro'): Record<string, unknown> {
  const prompt = 50 + int(random, 3000)
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: {
      status_code: 200,
      request_id: nextId('req'),
      body: {
        candidates: [{ content: { role: 'model', parts: [{ text: text(random, 40) }] }, finishReason: 'STOP' }],
        modelVersion: model,
        usageMetadata: {
          promptTokenCount: prompt,
          cachedContentTokenCount: int(random, prompt),
          candidatesTokenCount: 10 + int(random, 500),
          thoughtsTokenCount: int(random, 900),
          totalTokenCount: 0,
        },
      },
    },
    error: null,
  }
}

/** A request the provider rejected: a 400 in the error file, no usage. */
export function failedLine(random: () => number): Record<string, unknown> {
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: {
      status_code: 400,
      request_id: nextId('req'),
      body: {
        error: {
          message: `Invalid 'messages[0].content': ${text(random, 8)}`,
          type: 'invalid_request_error',
          param: 'messages',
          code: null,
        },
      },
    },
    error: null,
  }
}

/** A request that never ran (batch cancelled or expired): `response: null`, `error` set. */
export function skippedLine(): Record<string, unknown> {
  return {
    id: nextId('batch_req'),
    custom_id: `request-${sequence}`,
    response: null,
    error: {
      code: 'batch_expired',
      message: 'This request could not be executed before the completion window expired.',
    },
  }
}

/** A random mix of the shapes above, as it comes out of real batches (one line of JSON, no newline). */
export function mixedLine(random: () => number): string {
  const pick = random()
  if (pick < 0.55) return JSON.stringify(chatLine(random, random() < 0.5 ? 'gpt-4o-mini' : 'gpt-4.1-2025-04-14'))
  if (pick < 0.7) return JSON.stringify(responsesLine(random))
  if (pick < 0.8) return JSON.stringify(embeddingsLine(random))
  if (pick < 0.85) return JSON.stringify(geminiCompatLine(random))
  if (pick < 0.9) return JSON.stringify(geminiNativeLine(random))
  if (pick < 0.96) return JSON.stringify(failedLine(random))
  return JSON.stringify(skippedLine())
}
