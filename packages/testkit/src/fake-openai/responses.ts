import { createHash } from 'node:crypto'
import { isRecord } from './http.js'
import { newChatCompletionId, newCompletionId, newMessageId, newResponseId, nowSeconds } from './ids.js'
import type { FakeUsage } from './usage.js'

/** A parsed, validated batch input line. */
export interface InputLine {
  custom_id: string
  method: string
  url: string
  body: Record<string, unknown>
}

const DEFAULT_EMBEDDING_DIMENSIONS = 8
const MAX_EMBEDDING_DIMENSIONS = 3072

/** The body the fake's endpoint answers for one successful request; `usage` comes from `fakeUsage`. */
export function fakeResponseBody(line: InputLine, usage: FakeUsage): Record<string, unknown> {
  const model = typeof line.body.model === 'string' ? line.body.model : 'unknown'
  const text = replyText(line.body)
  // Azure OpenAI also accepts urls without the `/v1` prefix (`/chat/completions`).
  switch (line.url.startsWith('/v1/') ? line.url : `/v1${line.url}`) {
    case '/v1/chat/completions':
      return {
        id: newChatCompletionId(),
        object: 'chat.completion',
        created: nowSeconds(),
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage,
        service_tier: 'default',
        system_fingerprint: null,
      }
    case '/v1/completions':
      return {
        id: newCompletionId(),
        object: 'text_completion',
        created: nowSeconds(),
        model,
        choices: [{ text, index: 0, logprobs: null, finish_reason: 'stop' }],
        usage,
      }
    case '/v1/responses':
      return {
        id: newResponseId(),
        object: 'response',
        created_at: nowSeconds(),
        status: 'completed',
        error: null,
        incomplete_details: null,
        model,
        output: [
          {
            type: 'message',
            id: newMessageId(),
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: [] }],
          },
        ],
        usage: {
          input_tokens: usage.prompt_tokens,
          input_tokens_details: { cached_tokens: usage.prompt_tokens_details.cached_tokens },
          output_tokens: usage.completion_tokens,
          output_tokens_details: { reasoning_tokens: usage.completion_tokens_details.reasoning_tokens },
          total_tokens: usage.total_tokens,
        },
      }
    case '/v1/embeddings':
      return {
        object: 'list',
        data: embeddingInputs(line.body.input).map((input, index) => ({
          object: 'embedding',
          index,
          embedding: fakeEmbedding(input, line.body),
        })),
        model,
        usage: { prompt_tokens: usage.prompt_tokens, total_tokens: usage.total_tokens },
      }
    case '/v1/moderations':
      return {
        id: `modr-${digest(JSON.stringify(line.body.input ?? null))
          .toString('hex')
          .slice(0, 24)}`,
        model,
        results: embeddingInputs(line.body.input).map(() => ({ flagged: false, categories: {}, category_scores: {} })),
      }
    default:
      // Images and videos results are not modelled; a stable stub keeps such batches runnable.
      return { object: 'fake.result', created: nowSeconds(), model, usage }
  }
}

/** The body of an HTTP-level failure of one request (`fail-` custom ids). */
export function fakeFailureBody(line: InputLine): Record<string, unknown> {
  return {
    error: {
      message: `The fake rejects request '${line.custom_id}' because its custom_id starts with 'fail-'.`,
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  }
}

/** The body of a transient server error of one request (`flaky-N-` custom ids, their first N runs). */
export function fakeServerErrorBody(): Record<string, unknown> {
  return {
    error: {
      message: 'The server had an error while processing your request. Sorry about that!',
      type: 'server_error',
      param: null,
      code: null,
    },
  }
}

/** A deterministic reply quoting the last user text, so demos show which request a result belongs to. */
function replyText(body: Record<string, unknown>): string {
  const quoted = lastUserText(body)
  return quoted === undefined ? 'This is a fake response.' : `This is a fake response to: ${quoted.slice(0, 200)}`
}

function lastUserText(body: Record<string, unknown>): string | undefined {
  if (typeof body.prompt === 'string') return body.prompt
  if (typeof body.input === 'string') return body.input
  const messages = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : []
  for (let i = messages.length - 1; i >= 0; i--) {
    const message: unknown = messages[i]
    if (!isRecord(message) || message.role !== 'user') continue
    if (typeof message.content === 'string') return message.content
    if (Array.isArray(message.content)) {
      const part: unknown = message.content.find((p: unknown) => isRecord(p) && typeof p.text === 'string')
      if (isRecord(part) && typeof part.text === 'string') return part.text
    }
  }
  return undefined
}

/** The inputs an embeddings request embeds: a string, a token array, or a list of either. */
function embeddingInputs(input: unknown): unknown[] {
  if (Array.isArray(input) && input.length > 0 && typeof input[0] !== 'number') return input
  return [input]
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** A unit-free vector derived from the input's hash; base64 (float32) when the request asks for it. */
function fakeEmbedding(input: unknown, body: Record<string, unknown>): number[] | string {
  const requested = body.dimensions
  const dimensions =
    typeof requested === 'number' && Number.isInteger(requested) && requested > 0
      ? Math.min(requested, MAX_EMBEDDING_DIMENSIONS)
      : DEFAULT_EMBEDDING_DIMENSIONS
  const vector: number[] = []
  let block = digest(JSON.stringify(input ?? null))
  while (vector.length < dimensions) {
    for (let i = 0; i + 1 < block.length && vector.length < dimensions; i += 2) {
      vector.push(Math.round((block.readUInt16BE(i) / 0xffff - 0.5) * 2e6) / 1e6)
    }
    block = createHash('sha256').update(block).digest()
  }
  if (body.encoding_format === 'base64') return Buffer.from(new Float32Array(vector).buffer).toString('base64')
  return vector
}
