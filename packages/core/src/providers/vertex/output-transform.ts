import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { ApiError } from '../../errors.js'
import type { BatchUsage } from '../../types.js'
import { decodeUtf8, LineSplitter, toBytes } from '../../util/lines.js'
import { customIdOfRow } from './custom-id.js'
import { RPC_CODE_NAMES, rfc3339ToSeconds } from './job-state.js'
import { withThoughtSignature } from './thought-signature.js'
import type { GeminiCandidate, GeminiPart, GeminiResponse, GeminiUsageMetadata } from './types.js'

/**
 * Vertex prediction rows → OpenAI batch output and error lines.
 *
 * A row whose `status` is empty and whose response has candidates becomes an output line:
 * `{"id":"batch_req_…","custom_id",…,"response":{"status_code":200,"request_id":"req_…","body":<chat.completion>},"error":null}`.
 *
 * - `custom_id` comes from the row itself (see `custom-id.ts`), never from its position: Vertex writes rows in
 *   no particular order and over several files.
 * - `body.id` is `chatcmpl-<responseId>`; `created` is the response's `createTime` (else the row's
 *   `processed_time`) in seconds; `model` is `modelVersion` without any `@version` suffix (else the job's model).
 * - Each candidate is a choice: text parts (but not `thought` parts) joined into `message.content` (null when
 *   there is none), `functionCall` parts as `message.tool_calls` (`arguments` = JSON of `args`; the part's
 *   `thoughtSignature`, which Gemini 3 needs back, carried in the call's `id`: see `thought-signature.ts`).
 * - `finish_reason` ({@link finishReasonOf}): `tool_calls` when the candidate calls a function (unless it was
 *   filtered); `STOP` → `stop`; `MAX_TOKENS` → `length`; `SAFETY`, `RECITATION`, `BLOCKLIST`,
 *   `PROHIBITED_CONTENT`, `SPII`, `MODEL_ARMOR`, `IMAGE_SAFETY`, `IMAGE_PROHIBITED_CONTENT`, `IMAGE_RECITATION`
 *   → `content_filter`; anything else (`OTHER`, `LANGUAGE`, `MALFORMED_FUNCTION_CALL`, `FINISH_REASON_UNSPECIFIED`,
 *   absent, …) → `stop`.
 * - `usage` ({@link usageOf}).
 *
 * Every other row becomes an error-file line, shaped like OpenAI's own for a failed request:
 * `{"id","custom_id","response":{"status_code":<4xx|5xx>,"request_id","body":{"error":{"message","type","param":null,"code"}}},"error":null}`.
 * ({@link rowError}). The HTTP status is the one the row's `status` names, when it names one (an HTTP code, or
 * a `google.rpc.Code` mapped the standard way: INVALID_ARGUMENT → 400, RESOURCE_EXHAUSTED → 429, INTERNAL →
 * 500, …); a `status` that names none is a 500 `vertex_error` (a failure we cannot blame on the request); a
 * response without candidates is a 400 `content_filter` when the prompt was blocked, else a 500 `empty_response`.
 *
 * Rows that cannot be read (not JSON, not UTF-8) or that carry no `custom_id` cannot be attributed to a request;
 * they are left out of both files (OpenAI's lines need a `custom_id`) and counted as `unattributed`. A row whose
 * `custom_id` came before (one request written twice, as prediction files can overlap) is skipped: the first
 * one counts, once.
 */

type Json = Record<string, unknown>

/** Options of the output conversion. */
export interface VertexOutputOptions {
  /** The model to report when a row has no `modelVersion` (the job's model id). */
  model?: string
  /**
   * Seed of the derived ids (`batch_req_…`, `req_…`, `call_…`, and `chatcmpl-…` when a row has no
   * `responseId`), such as the batch id: converting the same predictions twice gives the same bytes.
   * @default ''
   */
  idSeed?: string
  /** Longest prediction row, in bytes; bounds the memory one row may take. @default 64 MiB */
  maxLineBytes?: number
}

/** One OpenAI batch output or error line. */
export interface OpenAIBatchOutputLine {
  id: string
  custom_id: string
  response: { status_code: number; request_id: string; body: Json }
  error: null
}

/** OpenAI's chat completions `usage`. */
export interface ChatUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details: { cached_tokens: number }
  completion_tokens_details: { reasoning_tokens: number }
}

/** Where a converted row goes. */
export type OutputRoute = 'output' | 'error'

/** One converted row. */
export interface ConvertedRow {
  route: OutputRoute
  line: OpenAIBatchOutputLine
  /** The row's usage, for output lines. */
  usage: ChatUsage | null
}

/** What a conversion saw. */
export interface VertexOutputCounts {
  /** Rows written to the output file. */
  succeeded: number
  /** Rows written to the error file. */
  failed: number
  /** Rows left out: unreadable, or without a `custom_id`. */
  unattributed: number
  /** Rows left out because their `custom_id` came before. */
  duplicates: number
  /** The summed usage of the succeeded rows. */
  usage: BatchUsage
}

const CONTENT_FILTER_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'MODEL_ARMOR',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
])

/** HTTP status of each `google.rpc.Code`, by number (Google's standard mapping). */
const RPC_HTTP_STATUS = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]

const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024

/** OpenAI's `finish_reason` for a Gemini candidate. */
export function finishReasonOf(candidate: GeminiCandidate): 'stop' | 'length' | 'content_filter' | 'tool_calls' {
  const reason = candidate.finishReason
  if (typeof reason === 'string' && CONTENT_FILTER_REASONS.has(reason)) return 'content_filter'
  if (candidate.content?.parts?.some((part) => isObject(part) && isObject(part.functionCall))) return 'tool_calls'
  if (reason === 'MAX_TOKENS') return 'length'
  return 'stop'
}

/**
 * OpenAI's `usage` from Gemini's `usageMetadata`:
 * `prompt_tokens` = `promptTokenCount` + `toolUsePromptTokenCount`;
 * `completion_tokens` = `candidatesTokenCount` + `thoughtsTokenCount` (thinking is billed as output), except
 * when Vertex already counted the thoughts inside the candidates (prompt + candidates = total);
 * `total_tokens` = prompt + completion;
 * `cached_tokens` = `cachedContentTokenCount`; `reasoning_tokens` = `thoughtsTokenCount`. Absent counts are 0.
 */
export function usageOf(metadata: GeminiUsageMetadata | undefined): ChatUsage {
  const prompt = count(metadata?.promptTokenCount) + count(metadata?.toolUsePromptTokenCount)
  const candidates = count(metadata?.candidatesTokenCount)
  const thoughts = count(metadata?.thoughtsTokenCount)
  const total = metadata?.totalTokenCount
  const thoughtsInside = thoughts > 0 && typeof total === 'number' && prompt + candidates === total
  const completion = thoughtsInside ? candidates : candidates + thoughts
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: count(metadata?.cachedContentTokenCount) },
    completion_tokens_details: { reasoning_tokens: thoughts },
  }
}

/** The HTTP status, message and code of a failed row's `status` string. */
export function rowError(status: string): { statusCode: number; message: string; code: string } {
  const parsed = parseJsonObject(status) ?? parseJsonObject(status.slice(Math.max(status.indexOf('{'), 0)))
  const inner = parsed && isObject(parsed.error) ? parsed.error : parsed
  let statusCode: number | undefined
  let name: string | undefined
  let message: string | undefined
  if (inner) {
    if (typeof inner.message === 'string' && inner.message !== '') message = inner.message
    if (typeof inner.status === 'string' && RPC_CODE_NAMES.includes(inner.status)) name = inner.status
    const code = inner.code
    if (typeof code === 'number' && Number.isInteger(code)) {
      if (code >= 400 && code <= 599) statusCode = code
      else if (code >= 0 && code < RPC_HTTP_STATUS.length) {
        statusCode = RPC_HTTP_STATUS[code]
        name ??= RPC_CODE_NAMES[code]
      }
    }
  }
  if (!name) name = RPC_CODE_NAMES.find((candidate) => candidate.length > 2 && status.includes(candidate))
  if (statusCode === undefined && name) statusCode = RPC_HTTP_STATUS[RPC_CODE_NAMES.indexOf(name)]
  if (statusCode === undefined || statusCode < 400) statusCode = 500
  return {
    statusCode,
    message: message ?? (status.trim() || 'The request failed in the Vertex AI batch job.'),
    code: name ? name.toLowerCase() : 'vertex_error',
  }
}

/**
 * Converts one parsed prediction row. Undefined when the row carries no `custom_id` (it cannot be attributed).
 */
export function convertVertexRow(row: unknown, options: VertexOutputOptions = {}): ConvertedRow | undefined {
  const customId = customIdOfRow(row)
  if (customId === undefined || !isObject(row)) return undefined
  const seed = options.idSeed ?? ''
  const id = `batch_req_${derive(seed, 'line', customId)}`
  const requestId = `req_${derive(seed, 'request', customId)}`

  const status = typeof row.status === 'string' ? row.status : ''
  const response = isObject(row.response) ? (row.response as GeminiResponse) : undefined
  const candidates = Array.isArray(response?.candidates) ? response.candidates.filter(isObject) : []

  let failure: { statusCode: number; message: string; code: string } | undefined
  if (status.trim() !== '') {
    failure = rowError(status)
  } else if (candidates.length === 0) {
    const blocked = response?.promptFeedback?.blockReason
    failure = blocked
      ? {
          statusCode: 400,
          message: `Vertex AI blocked the prompt (${blocked})${response?.promptFeedback?.blockReasonMessage ? `: ${response.promptFeedback.blockReasonMessage}` : '.'}`,
          code: 'content_filter',
        }
      : { statusCode: 500, message: 'Vertex AI returned no candidates for this request.', code: 'empty_response' }
  }
  if (failure) {
    const body = {
      error: {
        message: failure.message,
        type: failure.statusCode >= 500 ? 'server_error' : 'invalid_request_error',
        param: null,
        code: failure.code,
      },
    }
    return {
      route: 'error',
      line: {
        id,
        custom_id: customId,
        response: { status_code: failure.statusCode, request_id: requestId, body },
        error: null,
      },
      usage: null,
    }
  }

  const usage = usageOf(isObject(response?.usageMetadata) ? response?.usageMetadata : undefined)
  const body = {
    id:
      typeof response?.responseId === 'string' && response.responseId !== ''
        ? `chatcmpl-${response.responseId}`
        : `chatcmpl-${derive(seed, 'completion', customId)}`,
    object: 'chat.completion',
    created:
      rfc3339ToSeconds(response?.createTime) ?? rfc3339ToSeconds(row.processed_time) ?? Math.floor(Date.now() / 1000),
    model: modelOf(response?.modelVersion) ?? options.model ?? 'unknown',
    choices: candidates.map((candidate, index) => choiceOf(candidate, index, seed, customId)),
    usage,
  }
  return {
    route: 'output',
    line: { id, custom_id: customId, response: { status_code: 200, request_id: requestId, body }, error: null },
    usage,
  }
}

/**
 * Converts a predictions byte stream (one or more files joined, e.g. with `concatJsonlSources`) row by row,
 * holding one row at a time. Yields each attributable row converted; unattributable rows are only counted,
 * in `counts` (read it after the generator finishes).
 */
export async function* convertVertexOutput(
  source: AsyncIterable<Uint8Array | string>,
  options: VertexOutputOptions = {},
  counts: VertexOutputCounts = emptyCounts(),
): AsyncGenerator<ConvertedRow & { text: string }> {
  const splitter = new LineSplitter(
    options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    (line, max) =>
      new ApiError(502, `Vertex AI wrote a prediction row (line ${line}) longer than ${max} bytes.`, {
        code: 'upstream_error',
      }),
  )
  const ready: Array<ConvertedRow & { text: string }> = []
  /** Digests of the custom_ids seen: 16 bytes each, whatever the ids' length. */
  const seen = new Set<string>()
  const onLine = (raw: Buffer): void => {
    const converted = convertRawRow(raw, options)
    if (converted === null) return
    if (converted === undefined) {
      counts.unattributed++
      return
    }
    const digest = createHash('sha256').update(converted.line.custom_id).digest('base64').slice(0, 22)
    if (seen.has(digest)) {
      counts.duplicates++
      return
    }
    seen.add(digest)
    if (converted.route === 'output') {
      counts.succeeded++
      addUsage(counts.usage, converted.usage)
    } else {
      counts.failed++
    }
    ready.push({ ...converted, text: `${JSON.stringify(converted.line)}\n` })
  }
  for await (const chunk of source) {
    splitter.push(toBytes(chunk), onLine)
    yield* ready.splice(0)
  }
  splitter.end(onLine)
  yield* ready.splice(0)
}

/**
 * Converts predictions into both files at once: output lines to `sinks.output`, error lines to `sinks.error`,
 * waiting for each sink to drain. The sinks are not ended. Resolves with the counts.
 */
export async function routeVertexOutput(
  source: AsyncIterable<Uint8Array | string>,
  sinks: { output: Writable; error: Writable },
  options: VertexOutputOptions = {},
): Promise<VertexOutputCounts> {
  const counts = emptyCounts()
  for await (const row of convertVertexOutput(source, options, counts)) {
    const sink = row.route === 'output' ? sinks.output : sinks.error
    if (!sink.write(row.text)) await once(sink, 'drain')
  }
  return counts
}

/** Counts with nothing counted yet. */
export function emptyCounts(): VertexOutputCounts {
  return {
    succeeded: 0,
    failed: 0,
    unattributed: 0,
    duplicates: 0,
    usage: { inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0, totalTokens: 0 },
  }
}

/** Null for a blank line; undefined for a row that cannot be attributed. */
function convertRawRow(raw: Buffer, options: VertexOutputOptions): ConvertedRow | undefined | null {
  const text = decodeUtf8(raw)
  if (text === undefined) return undefined
  if (text.trim() === '') return null
  let row: unknown
  try {
    row = JSON.parse(text)
  } catch {
    return undefined
  }
  return convertVertexRow(row, options)
}

function choiceOf(candidate: GeminiCandidate, position: number, seed: string, customId: string): Json {
  const index = typeof candidate.index === 'number' ? candidate.index : position
  const parts: GeminiPart[] = Array.isArray(candidate.content?.parts) ? candidate.content.parts.filter(isObject) : []
  const texts = parts.filter((part) => typeof part.text === 'string' && part.thought !== true).map((part) => part.text)
  const toolCalls = parts
    .filter((part) => isObject(part.functionCall) && typeof part.functionCall.name === 'string')
    .map((part, call) => ({
      id: withThoughtSignature(
        typeof part.functionCall?.id === 'string' && part.functionCall.id !== ''
          ? part.functionCall.id
          : `call_${derive(seed, `call:${index}:${call}`, customId).slice(0, 24)}`,
        part.thoughtSignature,
      ),
      type: 'function',
      function: { name: part.functionCall!.name, arguments: JSON.stringify(part.functionCall?.args ?? {}) },
    }))
  const message: Json = {
    role: 'assistant',
    content: texts.length > 0 ? texts.join('') : null,
    refusal: null,
    annotations: [],
  }
  if (toolCalls.length > 0) message.tool_calls = toolCalls
  return { index, message, logprobs: null, finish_reason: finishReasonOf(candidate) }
}

function modelOf(version: unknown): string | undefined {
  if (typeof version !== 'string' || version === '') return undefined
  return version.split('@')[0]
}

function addUsage(total: BatchUsage, usage: ChatUsage | null): void {
  if (!usage) return
  total.inputTokens += usage.prompt_tokens
  total.cachedTokens += usage.prompt_tokens_details.cached_tokens
  total.outputTokens += usage.completion_tokens
  total.reasoningTokens += usage.completion_tokens_details.reasoning_tokens
  total.totalTokens += usage.total_tokens
}

/** 32 hex digits derived from the seed, a purpose and the custom id. */
function derive(seed: string, purpose: string, customId: string): string {
  return createHash('sha256').update(`${seed}\n${purpose}\n${customId}`).digest('hex').slice(0, 32)
}

function parseJsonObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
