import { isRecord } from './http.js'
import type { BatchUsage } from './types.js'

/** Token usage of one fake response, in Chat Completions' shape. */
export interface FakeUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
  completion_tokens_details: { reasoning_tokens: number }
}

/** Endpoints whose responses produce no output tokens. */
const INPUT_ONLY_ENDPOINTS = new Set(['/v1/embeddings', '/v1/moderations'])

const DEFAULT_COMPLETION_TOKENS = 16
const MAX_COMPLETION_TOKENS = 64

/**
 * The deterministic token usage the fake reports for one batch input line (`{custom_id, method, url, body}`).
 *
 * - `prompt_tokens` = ceil(UTF-8 byte length of `JSON.stringify(body.messages ?? body.input ?? body.prompt)` / 4),
 *   0 when none of those is present.
 * - `completion_tokens` = min(64, first number among `body.max_tokens`, `body.max_completion_tokens`,
 *   `body.max_output_tokens`, else 16), floored and at least 0; always 0 for `/v1/embeddings` and `/v1/moderations`.
 * - `cached_tokens` = floor(prompt_tokens / 2) when prompt_tokens >= 8, else 0 (always 0 for embeddings/moderations).
 * - `reasoning_tokens` = floor(completion_tokens / 4) when `body.model` starts with `o` or `gpt-5`, else 0
 *   (counted inside completion_tokens, as OpenAI does).
 * - `total_tokens` = prompt_tokens + completion_tokens.
 *
 * Chat and legacy completions bodies carry exactly this object as `usage`; embeddings bodies carry
 * `{prompt_tokens, total_tokens}`; Responses bodies carry the same numbers under Responses' names.
 */
export function fakeUsage(line: unknown): FakeUsage {
  const url = isRecord(line) ? line.url : undefined
  const body = isRecord(line) && isRecord(line.body) ? line.body : {}
  const promptJson = JSON.stringify(body.messages ?? body.input ?? body.prompt)
  const promptTokens = promptJson === undefined ? 0 : Math.ceil(Buffer.byteLength(promptJson, 'utf8') / 4)

  if (typeof url === 'string' && INPUT_ONLY_ENDPOINTS.has(url)) {
    return usage(promptTokens, 0, 0, 0)
  }

  const requested = [body.max_tokens, body.max_completion_tokens, body.max_output_tokens].find(
    (value): value is number => typeof value === 'number' && Number.isFinite(value),
  )
  const completionTokens = Math.max(
    0,
    Math.floor(Math.min(requested ?? DEFAULT_COMPLETION_TOKENS, MAX_COMPLETION_TOKENS)),
  )
  const cachedTokens = promptTokens >= 8 ? Math.floor(promptTokens / 2) : 0
  const model = typeof body.model === 'string' ? body.model : ''
  const reasoningTokens = model.startsWith('o') || model.startsWith('gpt-5') ? Math.floor(completionTokens / 4) : 0
  return usage(promptTokens, completionTokens, cachedTokens, reasoningTokens)
}

function usage(prompt: number, completion: number, cached: number, reasoning: number): FakeUsage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
    completion_tokens_details: { reasoning_tokens: reasoning },
  }
}

/** A Batch `usage` of all zeros, to add request usages into. */
export const emptyBatchUsage = (): BatchUsage => ({
  input_tokens: 0,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 0,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 0,
})

/** Adds one request's usage into a Batch `usage` (mutates and returns `total`). */
export function addUsage(total: BatchUsage, request: FakeUsage): BatchUsage {
  total.input_tokens += request.prompt_tokens
  total.input_tokens_details.cached_tokens += request.prompt_tokens_details.cached_tokens
  total.output_tokens += request.completion_tokens
  total.output_tokens_details.reasoning_tokens += request.completion_tokens_details.reasoning_tokens
  total.total_tokens += request.total_tokens
  return total
}

/**
 * The `usage` a completed batch of these input lines reports: the sum of {@link fakeUsage} over the lines that
 * succeed (every line whose `custom_id` does not start with `fail-`).
 */
export function fakeBatchUsage(lines: readonly unknown[]): BatchUsage {
  const total = emptyBatchUsage()
  for (const line of lines) {
    if (isRecord(line) && typeof line.custom_id === 'string' && line.custom_id.startsWith('fail-')) continue
    addUsage(total, fakeUsage(line))
  }
  return total
}
