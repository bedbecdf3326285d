import { randomBytes } from 'node:crypto'
import { fakeThoughtSignature, geminiVersion, requestRefusal } from './gemini-rules.js'

type Json = Record<string, unknown>

/** Gemini's `usageMetadata` as the fake reports it (zero counts omitted, as proto3 JSON does). */
export interface FakeGeminiUsage {
  promptTokenCount: number
  candidatesTokenCount: number
  totalTokenCount: number
  thoughtsTokenCount?: number
  cachedContentTokenCount?: number
  promptTokensDetails: Array<{ modality: 'TEXT'; tokenCount: number }>
  candidatesTokensDetails: Array<{ modality: 'TEXT'; tokenCount: number }>
  trafficType: 'ON_DEMAND'
}

const DEFAULT_CANDIDATE_TOKENS = 16
const MAX_CANDIDATE_TOKENS = 64

/**
 * The deterministic usage the fake reports for one Gemini batch `request` run by `model`:
 *
 * - `promptTokenCount` = ceil(UTF-8 byte length of `JSON.stringify({systemInstruction, contents})` / 4)
 *   (labels and other request fields do not count);
 * - per candidate, min(64, floor(`generationConfig.maxOutputTokens`), else 16) tokens;
 *   `candidatesTokenCount` = that × `candidateCount` (default 1);
 * - `thoughtsTokenCount` = floor(candidatesTokenCount / 4) when the model id contains `pro`, else absent;
 * - `cachedContentTokenCount` = floor(promptTokenCount / 2) when promptTokenCount ≥ 8, else absent;
 * - `totalTokenCount` = prompt + candidates + thoughts (thoughts are not inside the candidates).
 */
export function fakeGeminiUsage(request: unknown, model: string): FakeGeminiUsage {
  const req = isObject(request) ? request : {}
  const promptJson = JSON.stringify({ systemInstruction: req.systemInstruction, contents: req.contents })
  const prompt = Math.ceil(Buffer.byteLength(promptJson, 'utf8') / 4)
  const config = isObject(req.generationConfig) ? req.generationConfig : {}
  const candidates = perCandidateTokens(config) * candidateCount(config)
  const thoughts = modelId(model).includes('pro') ? Math.floor(candidates / 4) : 0
  const cached = prompt >= 8 ? Math.floor(prompt / 2) : 0
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: candidates,
    totalTokenCount: prompt + candidates + thoughts,
    ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
    ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: candidates }],
    trafficType: 'ON_DEMAND',
  }
}

/**
 * The text the fake answers a request with: multibyte on purpose (accents, CJK, an emoji outside the BMP),
 * quoting the last user text (its first 200 code points) so tests can tell answers apart.
 */
export function fakeGeminiText(request: unknown): string {
  const quoted = lastUserText(request)
  return `Réponse simulée — 模拟回答 🌍: ${quoted === undefined ? '(no text)' : Array.from(quoted).slice(0, 200).join('')}`
}

/** Microsecond RFC 3339, as Vertex writes times. */
export function rfc3339Micros(date = new Date()): string {
  const micros = String(Number(process.hrtime.bigint() % 1000n)).padStart(3, '0')
  return `${date.toISOString().slice(0, -1)}${micros}Z`
}

/** Finish reasons that end a candidate without content: the response was blocked. */
const BLOCKING_REASONS: ReadonlySet<string> = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'MODEL_ARMOR',
])

/**
 * The prediction row Vertex writes for one input line: `{status, processed_time, request, response}` on
 * success; with `fail`, for a line that is not a request, or for a request Vertex refuses (see
 * `requestRefusal`), an error `status` and no `response`. Top-level keys of the input line listed in
 * `excludedFields` are attached, as Vertex documents `instanceConfig.excludedFields` for custom models.
 * Gemini 3 function calls carry a `thoughtSignature`; a blocking `finishReason` gives a candidate without
 * content.
 */
export function fakePredictionRow(
  line: unknown,
  options: {
    model: string
    fail: boolean
    lineNumber: number
    excludedFields: readonly string[]
    finishReason?: string
  },
): Json {
  const input = isObject(line) ? line : {}
  const request = isObject(input.request) ? input.request : undefined
  const extra: Json = {}
  for (const field of options.excludedFields) if (field in input && field !== 'request') extra[field] = input[field]
  const processed = rfc3339Micros()
  const refusal = request ? requestRefusal(request, options.model) : undefined

  if (
    !request ||
    !Array.isArray(request.contents) ||
    request.contents.length === 0 ||
    options.fail ||
    refusal !== undefined
  ) {
    const message = !request
      ? 'Each line must be a JSON object with a "request" field.'
      : options.fail
        ? `The fake fails line ${options.lineNumber} on purpose — 失败 ❌.`
        : (refusal ?? 'Unable to submit request because it has no contents.')
    const status = `Bad Request: ${JSON.stringify({ error: { code: 400, message, status: 'INVALID_ARGUMENT' } })}`
    return { status, processed_time: processed, request: request ?? null, ...extra }
  }

  const config = isObject(request.generationConfig) ? request.generationConfig : {}
  const finishReason =
    options.finishReason ??
    (typeof config.maxOutputTokens === 'number' && config.maxOutputTokens < DEFAULT_CANDIDATE_TOKENS
      ? 'MAX_TOKENS'
      : 'STOP')
  const call = forcedCall(request)
  const signed = (geminiVersion(options.model) ?? 0) >= 3
  const parts = call
    ? [{ functionCall: { name: call, args: {} }, ...(signed ? { thoughtSignature: fakeThoughtSignature(call) } : {}) }]
    : [{ text: fakeGeminiText(request) }]
  const candidates = Array.from({ length: candidateCount(config) }, (_, index) => ({
    ...(index > 0 ? { index } : {}),
    ...(BLOCKING_REASONS.has(finishReason) ? {} : { content: { role: 'model', parts } }),
    finishReason,
    avgLogprobs: -0.25,
  }))
  return {
    status: '',
    processed_time: processed,
    request,
    response: {
      candidates,
      createTime: rfc3339Micros(),
      modelVersion: modelId(options.model),
      responseId: randomBytes(16).toString('base64url'),
      usageMetadata: fakeGeminiUsage(request, options.model),
    },
    ...extra,
  }
}

/** The model id of `publishers/google/models/<id>` (or any path ending in it). */
export function modelId(model: string): string {
  return model.slice(model.lastIndexOf('/') + 1)
}

/** The function a request forces (`toolConfig` mode ANY), if any. */
function forcedCall(request: Json): string | undefined {
  const config = isObject(request.toolConfig) ? request.toolConfig.functionCallingConfig : undefined
  if (!isObject(config) || config.mode !== 'ANY') return undefined
  if (Array.isArray(config.allowedFunctionNames) && typeof config.allowedFunctionNames[0] === 'string') {
    return config.allowedFunctionNames[0]
  }
  const tools = Array.isArray(request.tools) ? request.tools : []
  for (const tool of tools) {
    const declarations = isObject(tool) && Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : []
    const first: unknown = declarations[0]
    if (isObject(first) && typeof first.name === 'string') return first.name
  }
  return undefined
}

function perCandidateTokens(config: Json): number {
  const requested =
    typeof config.maxOutputTokens === 'number' && Number.isFinite(config.maxOutputTokens)
      ? config.maxOutputTokens
      : undefined
  return Math.max(0, Math.floor(Math.min(requested ?? DEFAULT_CANDIDATE_TOKENS, MAX_CANDIDATE_TOKENS)))
}

function candidateCount(config: Json): number {
  const count = config.candidateCount
  return typeof count === 'number' && Number.isInteger(count) && count > 0 ? Math.min(count, 8) : 1
}

function lastUserText(request: unknown): string | undefined {
  const contents = isObject(request) && Array.isArray(request.contents) ? request.contents : []
  for (let i = contents.length - 1; i >= 0; i--) {
    const content: unknown = contents[i]
    if (!isObject(content) || (content.role !== undefined && content.role !== 'user')) continue
    const parts = Array.isArray(content.parts) ? content.parts : []
    const texts = parts.flatMap((part: unknown) => (isObject(part) && typeof part.text === 'string' ? [part.text] : []))
    if (texts.length > 0) return texts.join(' ')
  }
  return undefined
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
