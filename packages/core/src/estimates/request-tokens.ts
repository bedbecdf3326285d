import type { TextCounter } from './text-counter.js'
import type { TokenizerName } from './tokenizers.js'

type Json = Record<string, unknown>

/** What one request adds to a file's estimate beside the tokens of its texts. */
export interface RequestTally {
  /** Tokens known without tokenizing: message framing, images, token-id prompts. */
  fixedTokens: number
  /** Output tokens the request's own limits allow (`max_completion_tokens` …, times `n`). */
  boundedOutput: number
  /** Completions the request asks for with no limit of their own: each may run to the model's maximum. */
  unboundedOutputs: number
}

/** OpenAI's chat format: every message is framed by 3 tokens, a `name` costs 1 more, and the reply is primed with 3. */
const TOKENS_PER_MESSAGE = 3
const TOKENS_PER_NAME = 1
const REPLY_PRIMING = 3
/** OpenAI's default `max_tokens` of a legacy completion. */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16

/** The endpoints an estimate can be made for; images and videos are billed otherwise. */
export const ESTIMATED_ENDPOINTS: ReadonlySet<string> = new Set([
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/moderations',
])

/**
 * Adds one request of `url` to `text` and returns the rest of its tally. Chat and Responses
 * messages are counted as OpenAI's cookbook counts them (each message's string fields, plus 3
 * tokens a message, 1 a name, 3 to prime the reply); tool definitions, tool calls and response
 * schemas as the tokens of their JSON (OpenAI does not publish how it renders them); images at a
 * fixed size (see {@link imageTokens}); audio and file parts not at all.
 */
export function tallyRequest(url: string, body: Json, text: TextCounter, tokenizer: TokenizerName): RequestTally {
  const tally: RequestTally = { fixedTokens: 0, boundedOutput: 0, unboundedOutputs: 0 }
  const model = typeof body.model === 'string' ? body.model : ''
  switch (url) {
    case '/v1/chat/completions': {
      const framing = tokenizer === 'chars/4' ? 0 : 1
      if (Array.isArray(body.messages)) {
        for (const message of body.messages) addMessage(message, text, tally, model, tokenizer, framing)
      }
      tally.fixedTokens += REPLY_PRIMING * framing
      addJson(body.tools ?? body.functions, text)
      addJson(responseSchemaOf(body.response_format), text)
      addOutput(tally, limitOf(body.max_completion_tokens) ?? limitOf(body.max_tokens), choicesOf(body.n))
      break
    }
    case '/v1/responses': {
      const framing = tokenizer === 'chars/4' ? 0 : 1
      if (typeof body.instructions === 'string') {
        text.add(body.instructions)
        tally.fixedTokens += TOKENS_PER_MESSAGE * framing
      }
      if (typeof body.input === 'string') {
        text.add(body.input)
        tally.fixedTokens += TOKENS_PER_MESSAGE * framing
      } else if (Array.isArray(body.input)) {
        for (const item of body.input) {
          if (isObject(item) && (item.type === undefined || item.type === 'message'))
            addMessage(item, text, tally, model, tokenizer, framing)
          else addJson(item, text)
        }
      }
      tally.fixedTokens += REPLY_PRIMING * framing
      addJson(body.tools, text)
      addJson(isObject(body.text) ? responseSchemaOf(body.text.format) : undefined, text)
      addOutput(tally, limitOf(body.max_output_tokens), 1)
      break
    }
    case '/v1/completions': {
      const prompts = promptsOf(body.prompt, text, tally)
      const choices = Math.max(choicesOf(body.n), choicesOf(body.best_of))
      addOutput(tally, limitOf(body.max_tokens) ?? COMPLETIONS_DEFAULT_MAX_TOKENS, choices * prompts)
      break
    }
    case '/v1/embeddings':
      promptsOf(body.input, text, tally)
      break
    case '/v1/moderations':
      if (Array.isArray(body.input) && body.input.some(isObject)) addContent(body.input, text, tally, model, tokenizer)
      else promptsOf(body.input, text, tally)
      break
  }
  return tally
}

function addMessage(
  message: unknown,
  text: TextCounter,
  tally: RequestTally,
  model: string,
  tokenizer: TokenizerName,
  framing: number,
): void {
  if (!isObject(message)) return
  tally.fixedTokens += TOKENS_PER_MESSAGE * framing
  for (const key in message) {
    const value = message[key]
    if (key === 'content') addContent(value, text, tally, model, tokenizer)
    else if (typeof value === 'string') {
      text.add(value)
      if (key === 'name') tally.fixedTokens += TOKENS_PER_NAME * framing
    } else if (key === 'tool_calls' || key === 'function_call') addJson(value, text)
  }
}

function addContent(content: unknown, text: TextCounter, tally: RequestTally, model: string, tokenizer: TokenizerName) {
  if (typeof content === 'string') {
    text.add(content)
    return
  }
  if (!Array.isArray(content)) return
  for (const part of content) {
    if (!isObject(part)) continue
    if (typeof part.text === 'string') text.add(part.text)
    else if (part.type === 'image_url' || part.type === 'input_image') {
      const detail = isObject(part.image_url) ? part.image_url.detail : part.detail
      tally.fixedTokens += imageTokens(model, tokenizer, detail)
    }
  }
}

/**
 * The tokens of one image, whose size batchkit does not read: Gemini's 258 a tile; for OpenAI the
 * cost of `detail: low` (85 tokens, 2,833 on GPT-4o mini), else of a 1024×1024 image at high detail
 * (4 tiles: 765 tokens, 25,501 on GPT-4o mini).
 */
export function imageTokens(model: string, tokenizer: TokenizerName, detail: unknown): number {
  if (tokenizer === 'chars/4') return 258
  const [base, tile] = /gpt-4o-mini/.test(model) ? [2833, 5667] : [85, 170]
  return detail === 'low' ? base : base + 4 * tile
}

/** Adds the texts of a prompt or an embeddings input (string, strings, token ids, or lists of token ids); returns how many prompts it holds. */
function promptsOf(input: unknown, text: TextCounter, tally: RequestTally): number {
  if (typeof input === 'string') {
    text.add(input)
    return 1
  }
  if (!Array.isArray(input)) return 0
  if (input.every((item) => typeof item === 'number')) {
    tally.fixedTokens += input.length
    return 1
  }
  for (const item of input) {
    if (typeof item === 'string') text.add(item)
    else if (Array.isArray(item)) tally.fixedTokens += item.length
  }
  return input.length
}

function addJson(value: unknown, text: TextCounter): void {
  if (value !== undefined && value !== null) text.add(JSON.stringify(value))
}

/** The schema of a `json_schema` response format, which the model reads as part of its input. */
function responseSchemaOf(format: unknown): unknown {
  if (!isObject(format) || format.type !== 'json_schema') return undefined
  return isObject(format.json_schema) ? format.json_schema : format.schema
}

function addOutput(tally: RequestTally, limit: number | undefined, choices: number): void {
  if (limit === undefined) tally.unboundedOutputs += choices
  else tally.boundedOutput += limit * choices
}

function limitOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined
}

function choicesOf(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) && value > 1 ? value : 1
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
