import { Transform, type TransformCallback } from 'node:stream'
import { ApiError, isApiError } from '../../errors.js'
import { DEFAULT_UPLOAD_LIMITS } from '../../files/upload-limits.js'
import { decodeUtf8, LineSplitter, toBytes } from '../../util/lines.js'
import { CUSTOM_ID_FIELD, customIdLabels } from './custom-id.js'
import { geminiVersion, modelIdOf } from './models.js'
import { responseSchemaProblem } from './response-schema.js'
import { thoughtSignatureOf } from './thought-signature.js'
import type {
  GeminiContent,
  GeminiFunctionDeclaration,
  GeminiGenerationConfig,
  GeminiPart,
  GeminiRequest,
  GeminiToolConfig,
  VertexInputLine,
} from './types.js'

/**
 * OpenAI chat completions batch lines → Vertex Gemini batch lines.
 *
 * Mapping of a chat completions `body` ({@link toGeminiRequest}):
 *
 * | OpenAI | Gemini |
 * |---|---|
 * | `system` / `developer` messages (any position, in order) | `systemInstruction.parts` (text only) |
 * | `user` / `assistant` messages | `contents` with role `user` / `model`; consecutive turns of one role merged |
 * | `tool` (and legacy `function`) messages | a `user` turn of `functionResponse {name, response: {output}}` parts, `name` taken from the assistant `tool_calls` entry with that id |
 * | assistant `tool_calls` (and legacy `function_call`) | `functionCall {name, args}` parts (`arguments` parsed as a JSON object), with the `thoughtSignature` the call's `id` carries (see `thought-signature.ts`) |
 * | text parts; empty text | `{text}`; `" "` (Gemini rejects empty text parts) |
 * | `image_url` with a base64 `data:` URL | `inlineData {mimeType, data}` |
 * | `image_url` with an `http(s)://` or `gs://` URL | `fileData {fileUri, mimeType}`, the type guessed from the extension (or `image_url.mime_type`) |
 * | `file` parts with `file_data` | `inlineData` (type from the data URL or the file name) |
 * | `max_completion_tokens`, else `max_tokens` | `generationConfig.maxOutputTokens` |
 * | `temperature`, `top_p`, `seed` (an int32), `n` | `temperature`, `topP`, `seed`, `candidateCount` |
 * | `presence_penalty`, `frequency_penalty` | `presencePenalty`, `frequencyPenalty`; left out when 0; refused when not 0 for Gemini 2.5 and later, which answer "Penalty is not enabled" |
 * | `stop` (string or array) | `stopSequences` (array) |
 * | `response_format: json_object` | `responseMimeType: application/json` |
 * | `response_format: json_schema` | `responseMimeType: application/json` + `responseJsonSchema` (the schema as JSON Schema, only `$schema` dropped; Gemini 2.0+ reads it natively, so no lossy conversion to the OpenAPI subset of `responseSchema`); a keyword Gemini does not support is refused (see `response-schema.ts`) |
 * | `tools` of type `function` (and legacy `functions`) | `tools: [{functionDeclarations: [{name, description, parametersJsonSchema}]}]` (`strict` dropped); names as tool.proto allows: a letter or `_` first, then letters, digits, `_`, `.`, `-`, 64 at most |
 * | `tool_choice` `none` / `auto` / `required` | `toolConfig.functionCallingConfig.mode` `NONE` / `AUTO` / `ANY` |
 * | `tool_choice {type: function, function: {name}}`, `allowed_tools` with mode `required` | mode `ANY` + `allowedFunctionNames` |
 * | `model` | dropped: a Vertex job runs one model, named at job creation |
 *
 * Accepted without effect: `user`, `metadata`, `store`, `service_tier`, `safety_identifier`, `prompt_cache_key`,
 * `stream: false`, `stream_options`, `parallel_tool_calls: true`, `logprobs: false`, `modalities: ["text"]`,
 * an empty `logit_bias`, message `name`s and assistant `refusal`s, image `detail`; any parameter set to `null`.
 *
 * What Vertex would refuse row by row, hours later, is refused at upload instead, naming the line: function
 * names, seeds and response schemas outside Gemini's rules, penalties on Gemini 2.5 and later. The Gemini
 * version is read from `model` (`gemini-2.5-flash`, `google/gemini-3-pro-preview`, …); a tuned model's name
 * says none, and its penalties are passed on.
 *
 * Refused with a 400 `unsupported_for_provider` naming the line and the parameter: audio (input parts,
 * `audio`, audio `modalities`), `logprobs: true` / `top_logprobs`, a non-empty `logit_bias`,
 * `parallel_tool_calls: false`, `reasoning_effort`, `verbosity`, `prediction`, `web_search_options`,
 * `file_id` parts, non-function tools, `allowed_tools` with mode `auto`, and any parameter not listed here.
 */

type Json = Record<string, unknown>

const UNSUPPORTED = 'unsupported_for_provider'

/** Parameters accepted and dropped: they change nothing Gemini could honour. */
const NO_OP_PARAMS: Readonly<Record<string, (value: unknown) => boolean>> = {
  user: () => true,
  metadata: () => true,
  store: () => true,
  service_tier: () => true,
  safety_identifier: () => true,
  prompt_cache_key: () => true,
  stream: (value) => value === false,
  stream_options: () => true,
  parallel_tool_calls: (value) => value === true,
  logprobs: (value) => value === false,
  modalities: (value) => Array.isArray(value) && value.length === 1 && value[0] === 'text',
  logit_bias: (value) => isObject(value) && Object.keys(value).length === 0,
}

/** Why a known OpenAI parameter cannot be carried to Gemini. */
const UNSUPPORTED_PARAMS: Readonly<Record<string, string>> = {
  stream: 'the Batch API does not stream',
  parallel_tool_calls: 'Gemini cannot be told to call at most one function per turn',
  logprobs: 'log probabilities are not mapped to OpenAI’s format',
  top_logprobs: 'log probabilities are not mapped to OpenAI’s format',
  logit_bias: 'Gemini has no logit bias',
  modalities: 'only text output is supported',
  audio: 'audio output is not supported',
  reasoning_effort: 'Gemini models take a thinking budget, not a reasoning effort',
  verbosity: 'Gemini has no verbosity setting',
  prediction: 'Gemini has no predicted outputs',
  web_search_options: 'web search is not available in Vertex batch jobs',
}

/** Parameters {@link toGeminiRequest} maps. */
const MAPPED_PARAMS = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'n',
  'presence_penalty',
  'frequency_penalty',
  'response_format',
  'tools',
  'tool_choice',
  'functions',
  'function_call',
])

/** File types Gemini reads, by extension, for URLs whose type must be stated. */
const MIME_BY_EXTENSION: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  heif: 'image/heif',
  pdf: 'application/pdf',
  txt: 'text/plain',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  flac: 'audio/flac',
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  mpeg: 'video/mpeg',
  webm: 'video/webm',
}

/** Function names tool.proto allows. */
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

/** The range of Gemini's `seed`, an int32. */
const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 }

/** The first Gemini version that refuses penalties ("Penalty is not enabled"). */
const NO_PENALTY_VERSION = 2.5

const DATA_URL = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)((?:;[^;,]*)*?);base64,([A-Za-z0-9+/]*={0,2})$/i
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Converts an OpenAI chat completions request body into a Gemini `GenerateContentRequest`. */
export function toGeminiRequest(body: unknown): GeminiRequest {
  if (!isObject(body)) throw invalidType('body', 'an object', body)
  for (const [key, value] of Object.entries(body)) {
    if (MAPPED_PARAMS.has(key)) continue
    if (value === null) continue
    const noOp = NO_OP_PARAMS[key]
    if (noOp?.(value)) continue
    const why = UNSUPPORTED_PARAMS[key]
    throw unsupported(
      key,
      `'${key}'${why ? ` is not supported by the Vertex AI provider: ${why}` : ' is not supported by the Vertex AI provider'}.`,
    )
  }

  const { contents, system } = convertMessages(body.messages)
  const request: GeminiRequest = { contents }
  if (system.length > 0) request.systemInstruction = { parts: system }

  const generationConfig = convertGenerationConfig(body)
  if (Object.keys(generationConfig).length > 0) request.generationConfig = generationConfig

  const declarations = [
    ...(isSet(body.tools) ? convertTools(body.tools) : []),
    ...(isSet(body.functions) ? convertFunctions(body.functions) : []),
  ]
  if (declarations.length > 0) request.tools = [{ functionDeclarations: declarations }]
  const names = declarations.map((declaration) => declaration.name)
  const toolConfig = isSet(body.tool_choice)
    ? convertToolChoice(body.tool_choice, 'tool_choice', names)
    : isSet(body.function_call)
      ? convertFunctionCall(body.function_call, names)
      : undefined
  if (toolConfig) request.toolConfig = toolConfig
  return request
}

/**
 * Converts one parsed OpenAI batch line (`{custom_id, method, url, body}`) into a Vertex batch line carrying
 * the `custom_id` both verbatim and in `request.labels` (see `custom-id.ts`). Throws an {@link ApiError}
 * whose `param` locates the problem inside the line.
 */
export function toVertexInputLine(line: unknown): VertexInputLine {
  if (!isObject(line)) throw invalidType('line', 'an object', line)
  const { custom_id: customId, url, body } = line
  if (typeof customId !== 'string' || customId === '') throw invalidType('custom_id', 'a non-empty string', customId)
  if (url !== '/v1/chat/completions') {
    throw unsupported(
      'url',
      `The Vertex AI provider only runs '/v1/chat/completions' requests, not ${JSON.stringify(url)}.`,
    )
  }
  const labels = customIdLabels(customId)
  if (!labels) {
    throw unsupported('custom_id', "'custom_id' is too long to carry through a Vertex AI batch (at most 787 bytes).")
  }
  const request = toGeminiRequest(body)
  request.labels = labels
  return { [CUSTOM_ID_FIELD]: customId, request } as VertexInputLine
}

/**
 * Converts one raw line of an OpenAI batch input file into a Vertex line (with its newline), or undefined for
 * a blank line. Errors are 400 {@link ApiError}s with `param: 'file'` and a message naming the 1-based line.
 */
export function convertBatchLine(raw: Uint8Array, lineNumber: number): Buffer | undefined {
  const text = decodeUtf8(raw)
  if (text === undefined) throw lineError(lineNumber, 'is not valid UTF-8.', 'invalid_json_line')
  if (text.trim() === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw lineError(lineNumber, 'is not parseable as valid JSON.', 'invalid_json_line')
  }
  try {
    return Buffer.from(`${JSON.stringify(toVertexInputLine(parsed))}\n`, 'utf8')
  } catch (error) {
    if (isApiError(error)) throw lineError(lineNumber, `: ${error.message}`, error.code ?? 'invalid_request')
    throw error
  }
}

/** Options of {@link VertexRequestTransform} and {@link toVertexJsonl}. */
export interface VertexRequestTransformOptions {
  /** Longest input line, in bytes; bounds the memory one line may take. @default 16 MiB */
  maxLineBytes?: number
}

/**
 * A Transform from OpenAI batch input JSONL bytes to Vertex Gemini batch input JSONL bytes, one line at a time
 * (memory stays bounded by the longest line). Lines are cut at `\n` bytes before decoding, so multi-byte
 * characters split across chunks survive. The first line that cannot be mapped fails the stream with a 400
 * {@link ApiError} naming that line; an input without any request line fails with `empty_file`.
 */
export class VertexRequestTransform extends Transform {
  /** Request lines converted so far. */
  requests = 0
  private readonly splitter: LineSplitter

  constructor(options: VertexRequestTransformOptions = {}) {
    super()
    this.splitter = newSplitter(options)
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.splitter.push(toBytes(chunk), this.onLine)
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.splitter.end(this.onLine)
      if (this.requests === 0) throw emptyFile()
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  private readonly onLine = (line: Buffer, lineNumber: number): void => {
    const converted = convertBatchLine(line, lineNumber)
    if (converted === undefined) return
    this.requests++
    this.push(converted)
  }
}

function newSplitter(options: VertexRequestTransformOptions): LineSplitter {
  return new LineSplitter(
    options.maxLineBytes ?? DEFAULT_UPLOAD_LIMITS.maxLineBytes,
    (line, max) =>
      new ApiError(400, `Line ${line} is longer than ${max} bytes.`, { param: 'file', code: 'line_too_large' }),
  )
}

function emptyFile(): ApiError {
  return new ApiError(400, 'The file is empty: a batch input file needs at least one request line.', {
    param: 'file',
    code: 'empty_file',
  })
}

function lineError(lineNumber: number, rest: string, code: string): ApiError {
  const separator = rest.startsWith(':') ? '' : ' '
  return new ApiError(400, `Line ${lineNumber}${separator}${rest}`, { param: 'file', code })
}

// ---------------------------------------------------------------------------------------------------------
// messages

type Turn = 'user' | 'model' | 'tool'

function convertMessages(messages: unknown): { contents: GeminiContent[]; system: GeminiPart[] } {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidValue('messages', "'messages' must be a non-empty array.")
  }
  const contents: GeminiContent[] = []
  const turns: Turn[] = []
  const system: GeminiPart[] = []
  /** Function names of the assistant tool calls seen so far, by call id. */
  const calls = new Map<string, string>()

  const append = (turn: Turn, parts: GeminiPart[]): void => {
    // Consecutive turns of one kind merge; function responses stay apart from plain user text, as Gemini
    // expects the responses to a call turn in a turn of their own.
    const last = contents.at(-1)
    if (last && turns.at(-1) === turn) {
      last.parts.push(...parts)
      return
    }
    contents.push({ role: turn === 'model' ? 'model' : 'user', parts })
    turns.push(turn)
  }

  messages.forEach((message: unknown, index) => {
    const path = `messages[${index}]`
    if (!isObject(message)) throw invalidType(path, 'an object', message)
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textOnlyParts(message.content, `${path}.content`))
        return
      case 'user':
        append('user', userParts(message.content, `${path}.content`))
        return
      case 'assistant':
        append('model', assistantParts(message, path, calls))
        return
      case 'tool':
        append('tool', [toolResultPart(message, path, calls)])
        return
      case 'function':
        append('tool', [functionResultPart(message, path)])
        return
      default:
        throw invalidValue(
          `${path}.role`,
          `'${path}.role' must be one of 'system', 'developer', 'user', 'assistant', 'tool' or 'function'.`,
        )
    }
  })
  if (contents.length === 0) {
    throw invalidValue('messages', "'messages' needs at least one user or assistant message besides system messages.")
  }
  return { contents, system }
}

function textPart(text: string): GeminiPart {
  return { text: text === '' ? ' ' : text }
}

/** System, developer and tool contents: a string or text parts. */
function textOnlyParts(content: unknown, path: string): GeminiPart[] {
  if (typeof content === 'string') return [textPart(content)]
  if (!Array.isArray(content)) throw invalidType(path, 'a string or an array of text parts', content)
  return content.map((part: unknown, index) => {
    const partPath = `${path}[${index}]`
    if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
      throw unsupported(partPath, `'${partPath}' must be a text part here.`)
    }
    return textPart(part.text)
  })
}

function userParts(content: unknown, path: string): GeminiPart[] {
  if (typeof content === 'string') return [textPart(content)]
  if (!Array.isArray(content) || content.length === 0) {
    throw invalidType(path, 'a string or a non-empty array of content parts', content)
  }
  return content.map((part: unknown, index) => contentPart(part, `${path}[${index}]`))
}

function contentPart(part: unknown, path: string): GeminiPart {
  if (!isObject(part)) throw invalidType(path, 'an object', part)
  switch (part.type) {
    case 'text':
      if (typeof part.text !== 'string') throw invalidType(`${path}.text`, 'a string', part.text)
      return textPart(part.text)
    case 'image_url': {
      const image = part.image_url
      const url = isObject(image) ? image.url : undefined
      if (typeof url !== 'string' || url === '') throw invalidType(`${path}.image_url.url`, 'a URL string', url)
      const hint = isObject(image) && typeof image.mime_type === 'string' ? image.mime_type : undefined
      return mediaPart(url, `${path}.image_url.url`, hint)
    }
    case 'file':
      return filePart(part.file, `${path}.file`)
    case 'input_audio':
      throw unsupported(path, `'${path}' is an input_audio part; the Vertex AI provider does not take audio input.`)
    default:
      throw unsupported(
        path,
        `'${path}' has type ${JSON.stringify(part.type)}, which the Vertex AI provider does not support.`,
      )
  }
}

function mediaPart(url: string, path: string, mimeHint?: string): GeminiPart {
  if (url.startsWith('data:')) {
    const match = DATA_URL.exec(url)
    if (!match) throw invalidValue(path, `'${path}' must be a base64 data URL (data:<type>;base64,<data>).`)
    return { inlineData: { mimeType: match[1]!.toLowerCase(), data: match[3]! } }
  }
  if (/^(https?|gs):\/\//i.test(url)) {
    const mimeType = mimeHint ?? guessMimeType(url)
    if (!mimeType) {
      throw unsupported(
        path,
        `The type of ${clip(url)} cannot be told from its name; Vertex needs it. Use a URL ending in a known extension (.png, .jpg, .webp, .pdf, …) or a data: URL.`,
      )
    }
    return { fileData: { fileUri: url, mimeType } }
  }
  throw invalidValue(path, `'${path}' must be an http(s):// or gs:// URL or a base64 data: URL.`)
}

function filePart(file: unknown, path: string): GeminiPart {
  if (!isObject(file)) throw invalidType(path, 'an object', file)
  if (typeof file.file_data === 'string' && file.file_data !== '') {
    if (file.file_data.startsWith('data:')) return mediaPart(file.file_data, `${path}.file_data`)
    const mimeType = typeof file.filename === 'string' ? guessMimeType(file.filename) : undefined
    if (!mimeType || !BASE64.test(file.file_data)) {
      throw invalidValue(
        `${path}.file_data`,
        `'${path}.file_data' must be a base64 data URL, or base64 with a 'filename' of a known type.`,
      )
    }
    return { inlineData: { mimeType, data: file.file_data } }
  }
  if (file.file_id !== undefined) {
    throw unsupported(
      `${path}.file_id`,
      `'${path}.file_id' is not supported by the Vertex AI provider; send the file as file_data.`,
    )
  }
  throw invalidValue(path, `'${path}' needs 'file_data'.`)
}

function guessMimeType(url: string): string | undefined {
  let path = url
  try {
    path = new URL(url).pathname
  } catch {
    // A bare file name.
  }
  const dot = path.lastIndexOf('.')
  if (dot === -1 || dot < path.lastIndexOf('/')) return undefined
  return MIME_BY_EXTENSION[path.slice(dot + 1).toLowerCase()]
}

function assistantParts(message: Json, path: string, calls: Map<string, string>): GeminiPart[] {
  if (isSet(message.audio)) {
    throw unsupported(`${path}.audio`, `'${path}.audio' is not supported by the Vertex AI provider.`)
  }
  const parts: GeminiPart[] = []
  const { content } = message
  if (typeof content === 'string') {
    // An empty text beside tool calls says nothing; alone it becomes the single space Gemini needs (below).
    if (content !== '') parts.push(textPart(content))
  } else if (Array.isArray(content)) {
    content.forEach((part: unknown, index) => {
      const partPath = `${path}.content[${index}]`
      if (isObject(part) && part.type === 'text' && typeof part.text === 'string') parts.push(textPart(part.text))
      else if (isObject(part) && part.type === 'refusal' && typeof part.refusal === 'string')
        parts.push(textPart(part.refusal))
      else throw unsupported(partPath, `'${partPath}' must be a text or refusal part.`)
    })
  } else if (isSet(content)) {
    throw invalidType(`${path}.content`, 'a string, an array of text parts or null', content)
  }

  if (isSet(message.tool_calls)) {
    if (!Array.isArray(message.tool_calls)) throw invalidType(`${path}.tool_calls`, 'an array', message.tool_calls)
    message.tool_calls.forEach((call: unknown, index) => {
      const callPath = `${path}.tool_calls[${index}]`
      if (!isObject(call) || call.type !== 'function') {
        throw unsupported(callPath, `'${callPath}' must be a function tool call.`)
      }
      const part = functionCallPart(call.function, `${callPath}.function`)
      const signature = thoughtSignatureOf(call.id)
      if (signature) part.thoughtSignature = signature
      if (typeof call.id === 'string') calls.set(call.id, part.functionCall!.name)
      parts.push(part)
    })
  }
  if (isSet(message.function_call)) parts.push(functionCallPart(message.function_call, `${path}.function_call`))
  if (parts.length === 0 && content === '') parts.push(textPart(''))
  if (parts.length === 0) {
    throw invalidValue(path, `'${path}' needs 'content' or 'tool_calls'.`)
  }
  return parts
}

function functionCallPart(fn: unknown, path: string): GeminiPart {
  if (!isObject(fn) || typeof fn.name !== 'string' || fn.name === '') {
    throw invalidType(`${path}.name`, 'a non-empty string', isObject(fn) ? fn.name : fn)
  }
  let args: unknown = {}
  if (typeof fn.arguments === 'string' && fn.arguments.trim() !== '') {
    try {
      args = JSON.parse(fn.arguments)
    } catch {
      throw invalidValue(`${path}.arguments`, `'${path}.arguments' is not valid JSON.`)
    }
  } else if (isSet(fn.arguments) && typeof fn.arguments !== 'string') {
    throw invalidType(`${path}.arguments`, 'a JSON string', fn.arguments)
  }
  if (!isObject(args)) throw invalidValue(`${path}.arguments`, `'${path}.arguments' must encode a JSON object.`)
  return { functionCall: { name: fn.name, args } }
}

function toolResultPart(message: Json, path: string, calls: Map<string, string>): GeminiPart {
  const id = message.tool_call_id
  if (typeof id !== 'string' || id === '') throw invalidType(`${path}.tool_call_id`, 'a non-empty string', id)
  const name = calls.get(id) ?? (typeof message.name === 'string' && message.name !== '' ? message.name : undefined)
  if (name === undefined) {
    throw invalidValue(
      `${path}.tool_call_id`,
      `'${path}.tool_call_id' (${clip(id)}) answers no tool call of an earlier assistant message; Gemini needs the function's name.`,
    )
  }
  return { functionResponse: { name, response: { output: toolOutput(message.content, `${path}.content`) } } }
}

function functionResultPart(message: Json, path: string): GeminiPart {
  if (typeof message.name !== 'string' || message.name === '') {
    throw invalidType(`${path}.name`, 'a non-empty string', message.name)
  }
  return {
    functionResponse: { name: message.name, response: { output: toolOutput(message.content, `${path}.content`) } },
  }
}

/** A tool result as the text Gemini's `response.output` carries. */
function toolOutput(content: unknown, path: string): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) throw invalidType(path, 'a string or an array of text parts', content)
  return content
    .map((part: unknown, index) => {
      if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
        throw unsupported(`${path}[${index}]`, `'${path}[${index}]' must be a text part here.`)
      }
      return part.text
    })
    .join('')
}

// ---------------------------------------------------------------------------------------------------------
// generation config

function convertGenerationConfig(body: Json): GeminiGenerationConfig {
  const config: GeminiGenerationConfig = {}
  const maxTokens = isSet(body.max_completion_tokens)
    ? integer(body.max_completion_tokens, 'max_completion_tokens', 1)
    : isSet(body.max_tokens)
      ? integer(body.max_tokens, 'max_tokens', 1)
      : undefined
  if (maxTokens !== undefined) config.maxOutputTokens = maxTokens
  if (isSet(body.temperature)) config.temperature = finite(body.temperature, 'temperature')
  if (isSet(body.top_p)) config.topP = finite(body.top_p, 'top_p')
  if (isSet(body.stop)) {
    const stop = stopSequences(body.stop)
    if (stop.length > 0) config.stopSequences = stop
  }
  if (isSet(body.seed)) {
    const seed = integer(body.seed, 'seed')
    if (seed < INT32.min || seed > INT32.max) {
      throw invalidValue(
        'seed',
        `'seed' must be from ${INT32.min} to ${INT32.max} on Vertex AI (Gemini's seed is an int32).`,
      )
    }
    config.seed = seed
  }
  if (isSet(body.n)) {
    const n = integer(body.n, 'n', 1)
    if (n !== 1) config.candidateCount = n
  }
  const presence = penalty(body, 'presence_penalty')
  if (presence !== undefined) config.presencePenalty = presence
  const frequency = penalty(body, 'frequency_penalty')
  if (frequency !== undefined) config.frequencyPenalty = frequency
  if (isSet(body.response_format)) Object.assign(config, responseFormat(body.response_format))
  return config
}

/** A penalty to send: none when absent or 0; refused when the model refuses penalties. */
function penalty(body: Json, param: 'presence_penalty' | 'frequency_penalty'): number | undefined {
  if (!isSet(body[param])) return undefined
  const value = finite(body[param], param)
  if (value === 0) return undefined
  const version = geminiVersion(body.model)
  if (version !== undefined && version >= NO_PENALTY_VERSION) {
    throw unsupported(
      param,
      `'${param}' is not supported by ${modelIdOf(String(body.model))} on Vertex AI (Gemini ${NO_PENALTY_VERSION} and later refuse penalties); remove it or set it to 0.`,
    )
  }
  return value
}

function stopSequences(stop: unknown): string[] {
  if (typeof stop === 'string') return [stop]
  if (Array.isArray(stop) && stop.every((item) => typeof item === 'string')) return stop as string[]
  throw invalidType('stop', 'a string or an array of strings', stop)
}

function responseFormat(format: unknown): GeminiGenerationConfig {
  if (!isObject(format)) throw invalidType('response_format', 'an object', format)
  switch (format.type) {
    case 'text':
      return {}
    case 'json_object':
      return { responseMimeType: 'application/json' }
    case 'json_schema': {
      const spec = format.json_schema
      if (!isObject(spec)) throw invalidType('response_format.json_schema', 'an object', spec)
      if (!isSet(spec.schema)) return { responseMimeType: 'application/json' }
      if (!isObject(spec.schema)) throw invalidType('response_format.json_schema.schema', 'an object', spec.schema)
      const schema = jsonSchema(spec.schema)
      const problem = responseSchemaProblem(schema)
      if (problem) {
        const param = `response_format.json_schema.schema${problem.path}`
        throw unsupported(param, `'${param}' ${problem.message} in a response schema on Vertex AI.`)
      }
      return { responseMimeType: 'application/json', responseJsonSchema: schema }
    }
    default:
      throw unsupported(
        'response_format.type',
        `'response_format.type' ${JSON.stringify(format.type)} is not supported by the Vertex AI provider.`,
      )
  }
}

/** A JSON Schema as Gemini's `*JsonSchema` fields take it: unchanged but for the `$schema` meta keyword. */
function jsonSchema(schema: Json): Json {
  const { $schema: _meta, ...rest } = schema
  return rest
}

// ---------------------------------------------------------------------------------------------------------
// tools

function convertTools(tools: unknown): GeminiFunctionDeclaration[] {
  if (!Array.isArray(tools)) throw invalidType('tools', 'an array', tools)
  return tools.map((tool: unknown, index) => {
    const path = `tools[${index}]`
    if (!isObject(tool) || tool.type !== 'function') {
      throw unsupported(
        path,
        `'${path}' has type ${JSON.stringify(isObject(tool) ? tool.type : tool)}; the Vertex AI provider supports function tools only.`,
      )
    }
    return functionDeclaration(tool.function, `${path}.function`)
  })
}

function convertFunctions(functions: unknown): GeminiFunctionDeclaration[] {
  if (!Array.isArray(functions)) throw invalidType('functions', 'an array', functions)
  return functions.map((fn: unknown, index) => functionDeclaration(fn, `functions[${index}]`))
}

function functionDeclaration(fn: unknown, path: string): GeminiFunctionDeclaration {
  if (!isObject(fn) || typeof fn.name !== 'string' || fn.name === '') {
    throw invalidType(`${path}.name`, 'a non-empty string', isObject(fn) ? fn.name : fn)
  }
  if (!FUNCTION_NAME.test(fn.name)) {
    throw invalidValue(
      `${path}.name`,
      `'${path}.name' (${clip(fn.name)}) must start with a letter or an underscore and hold only letters, digits, '_', '.' and '-', at most 64 of them, on Vertex AI.`,
    )
  }
  const declaration: GeminiFunctionDeclaration = { name: fn.name }
  if (typeof fn.description === 'string') declaration.description = fn.description
  if (isSet(fn.parameters)) {
    if (!isObject(fn.parameters)) throw invalidType(`${path}.parameters`, 'an object', fn.parameters)
    declaration.parametersJsonSchema = jsonSchema(fn.parameters)
  }
  return declaration
}

function convertToolChoice(choice: unknown, path: string, names: string[]): GeminiToolConfig | undefined {
  if (choice === 'none' || choice === 'auto') {
    return names.length === 0 ? undefined : { functionCallingConfig: { mode: choice === 'none' ? 'NONE' : 'AUTO' } }
  }
  if (choice === 'required') return forced(path, names, names)
  if (isObject(choice) && choice.type === 'function') {
    const fn = choice.function
    const name = isObject(fn) ? fn.name : undefined
    if (typeof name !== 'string' || name === '') throw invalidType(`${path}.function.name`, 'a non-empty string', name)
    return forced(path, names, [name])
  }
  if (isObject(choice) && choice.type === 'allowed_tools') {
    const allowed = choice.allowed_tools
    if (!isObject(allowed) || !Array.isArray(allowed.tools)) {
      throw invalidType(`${path}.allowed_tools.tools`, 'an array', isObject(allowed) ? allowed.tools : allowed)
    }
    if (allowed.mode !== 'required') {
      throw unsupported(
        `${path}.allowed_tools.mode`,
        `'${path}.allowed_tools.mode' ${JSON.stringify(allowed.mode)} is not supported by the Vertex AI provider; Gemini restricts functions only when a call is required.`,
      )
    }
    const picked = allowed.tools.map((tool: unknown, index) => {
      const fn = isObject(tool) && tool.type === 'function' ? tool.function : undefined
      const name = isObject(fn) ? fn.name : undefined
      if (typeof name !== 'string') {
        throw unsupported(`${path}.allowed_tools.tools[${index}]`, 'Only function tools can be allowed.')
      }
      return name
    })
    return forced(path, names, picked)
  }
  throw unsupported(path, `'${path}' ${clip(JSON.stringify(choice) ?? '')} is not supported by the Vertex AI provider.`)
}

function convertFunctionCall(call: unknown, names: string[]): GeminiToolConfig | undefined {
  if (call === 'none' || call === 'auto') return convertToolChoice(call, 'function_call', names)
  if (isObject(call) && typeof call.name === 'string') return forced('function_call', names, [call.name])
  throw unsupported('function_call', `'function_call' ${clip(JSON.stringify(call) ?? '')} is not supported.`)
}

/** Mode `ANY`, limited to `picked` unless that is every declared function. */
function forced(path: string, declared: string[], picked: string[]): GeminiToolConfig {
  if (declared.length === 0) throw invalidValue(path, `'${path}' requires tools.`)
  for (const name of picked) {
    if (!declared.includes(name))
      throw invalidValue(path, `'${path}' names '${clip(name)}', which is not among the tools.`)
  }
  const config: GeminiToolConfig = { functionCallingConfig: { mode: 'ANY' } }
  if (picked !== declared) config.functionCallingConfig.allowedFunctionNames = [...picked]
  return config
}

// ---------------------------------------------------------------------------------------------------------
// helpers

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** OpenAI treats `null` as "not set". */
function isSet(value: unknown): boolean {
  return value !== undefined && value !== null
}

function finite(value: unknown, param: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidType(param, 'a number', value)
  return value
}

function integer(value: unknown, param: string, min?: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw invalidType(param, 'an integer', value)
  if (min !== undefined && value < min) throw invalidValue(param, `'${param}' must be at least ${min}.`)
  return value
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

function unsupported(param: string, message: string): ApiError {
  return new ApiError(400, message, { param, code: UNSUPPORTED })
}

function invalidValue(param: string, message: string): ApiError {
  return new ApiError(400, message, { param, code: 'invalid_value' })
}

function invalidType(param: string, expected: string, got: unknown): ApiError {
  const kind =
    got === null ? 'null' : Array.isArray(got) ? 'an array' : got === undefined ? 'nothing' : `a ${typeof got}`
  return new ApiError(400, `'${param}' must be ${expected}, but got ${kind}.`, { param, code: 'invalid_type' })
}
