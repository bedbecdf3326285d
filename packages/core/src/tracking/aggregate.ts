import type { Readable } from 'node:stream'
import { type Pricing, roundUsd, type TokenUsage } from '../pricing/cost.js'
import type { ModelUsage } from '../types.js'

/** What a batch output (or error) file used, per model and in total. */
export interface UsageSummary {
  byModel: Record<string, ModelUsage>
  totals: ModelUsage
  /** Models whose tokens could not be priced (their `cost`, and the total cost, are null); sorted. */
  unpricedModels: string[]
  /** Non-blank lines read, malformed ones included. */
  lines: number
  /** Lines that are not a batch result (not JSON, truncated, neither `response` object nor `error`, …). */
  malformedLines: number
}

/** Options of {@link aggregateUsage}. */
export interface AggregateOptions {
  /**
   * The model of lines whose `response.body` names none (failed requests, error-file lines): typically the
   * batch's model. Without it such lines count under {@link UNKNOWN_MODEL}.
   */
  defaultModel?: string
}

/** The model of lines that name none when no `defaultModel` is given. */
export const UNKNOWN_MODEL = 'unknown'

/** A chunk of a batch output file. */
export type UsageChunk = Buffer | Uint8Array | string

/** What {@link aggregateUsage} reads: a Node stream, or any (async) iterable of bytes or text. */
export type UsageSource = AsyncIterable<UsageChunk> | Iterable<UsageChunk> | Readable

/**
 * Sums a batch output (or error) file per model, streaming it once in constant memory.
 *
 * Each line is an OpenAI batch result, `{"id","custom_id","response":{"status_code","request_id","body"},"error"}`.
 * A line counts as succeeded when `response.status_code` is 2xx and `error` is null, failed otherwise. Tokens come
 * from `response.body.usage` in any of these shapes, whatever the status:
 *
 * - Chat Completions / Completions: `prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`,
 *   `completion_tokens_details.reasoning_tokens` (reasoning is inside `completion_tokens`, as OpenAI bills it);
 * - Responses: `input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens`,
 *   `output_tokens_details.reasoning_tokens`;
 * - Embeddings: `prompt_tokens`, `total_tokens`;
 * - Gemini `usageMetadata` (when there is no `usage`): `promptTokenCount` (+ `toolUsePromptTokenCount`) as input,
 *   `cachedContentTokenCount` as cached, `candidatesTokenCount` + `thoughtsTokenCount` as output: Gemini counts
 *   thinking apart from the candidates but bills it as output (unless `totalTokenCount` = prompt + candidates
 *   shows the thoughts already inside the candidates).
 *
 * When a usage reports `total_tokens` above input + output (Gemini's OpenAI-compatible endpoint leaves thinking
 * tokens out of `completion_tokens` but counts them in `total_tokens`), the difference is billed as output and
 * counted as reasoning. OpenAI's own usage always has total = input + output, so this never changes its figures.
 *
 * The model is `response.body.model` (or Gemini's `modelVersion`), else `options.defaultModel`, else
 * {@link UNKNOWN_MODEL}. Costs come from `pricing.costOf` on each model's sums; a model with tokens but no price
 * costs `null`, makes the total `null`, and is listed in `unpricedModels`. A model with no tokens costs 0.
 *
 * Cancelled, expired and partially failed batches: their output files hold the requests that completed, and
 * those are exactly what is summed; the error file's lines count as failed (sum both with
 * {@link mergeUsageSummaries}).
 *
 * How it reads: the bytes are scanned once, never decoded or parsed as a whole. Lines end at `\n` (a byte that
 * never occurs inside a UTF-8 sequence or a JSON string). The scanner follows each line's JSON structure (nesting,
 * strings and escapes, keys, colons and commas of the top-level, `response` and `body` objects) and copies out
 * only `response.status_code`, `response.body.model` and the `usage` object, which is then parsed with
 * `JSON.parse`. So memory does not grow with the file or with a line's length (an embeddings line of many
 * megabytes included), and the result does not depend on how the input is chunked. Malformed lines (not an
 * object, truncated, unbalanced, a bad `usage`, a model, status, `error` or `usage` over 64 KiB, nesting past
 * 1,024) are counted, never thrown; numbers and literals that are not read are not checked (such a line counts).
 */
export async function aggregateUsage(
  source: UsageSource,
  pricing: Pick<Pricing, 'costOf'>,
  options: AggregateOptions = {},
): Promise<UsageSummary> {
  const aggregator = new UsageAggregator(pricing, options)
  for await (const chunk of source as AsyncIterable<UsageChunk>) aggregator.write(chunk)
  return aggregator.finish()
}

/**
 * Sums several summaries of the same batch (its output file and its error file) into one. Costs add up per model
 * (null if any part is null); the totals are recomputed.
 */
export function mergeUsageSummaries(...summaries: UsageSummary[]): UsageSummary {
  const byModel = new Map<string, ModelUsage>()
  let lines = 0
  let malformedLines = 0
  for (const summary of summaries) {
    lines += summary.lines
    malformedLines += summary.malformedLines
    for (const [model, usage] of Object.entries(summary.byModel)) {
      const sum = byModel.get(model)
      byModel.set(model, sum === undefined ? copyUsage(usage) : addModelUsage(sum, usage))
    }
  }
  return summarize(byModel, lines, malformedLines)
}

/** The tokens of one response body's `usage` (or Gemini `usageMetadata`), normalized; see {@link aggregateUsage}. */
export function normalizeUsage(usage: unknown): TokenUsage | undefined {
  if (!isRecord(usage)) return undefined
  let input: number
  let cached: number
  let output: number
  let reasoning: number
  let total: unknown
  if ('prompt_tokens' in usage || 'completion_tokens' in usage) {
    input = count(usage.prompt_tokens)
    output = count(usage.completion_tokens)
    cached = count(field(usage.prompt_tokens_details, 'cached_tokens'))
    reasoning = count(field(usage.completion_tokens_details, 'reasoning_tokens'))
    total = usage.total_tokens
  } else if ('input_tokens' in usage || 'output_tokens' in usage) {
    input = count(usage.input_tokens)
    output = count(usage.output_tokens)
    cached = count(field(usage.input_tokens_details, 'cached_tokens'))
    reasoning = count(field(usage.output_tokens_details, 'reasoning_tokens'))
    total = usage.total_tokens
  } else if ('promptTokenCount' in usage || 'candidatesTokenCount' in usage || 'totalTokenCount' in usage) {
    input = count(usage.promptTokenCount) + count(usage.toolUsePromptTokenCount)
    cached = count(usage.cachedContentTokenCount)
    reasoning = count(usage.thoughtsTokenCount)
    const candidates = count(usage.candidatesTokenCount)
    // Thoughts are apart from the candidates, except where a total of prompt + candidates shows them inside.
    const inside = reasoning > 0 && usage.totalTokenCount === input + candidates
    output = inside ? candidates : candidates + reasoning
  } else {
    return undefined
  }
  if (typeof total === 'number' && total > input + output) {
    const unreported = total - input - output
    output += unreported
    if (reasoning === 0) reasoning = unreported
  }
  return { inputTokens: input, cachedTokens: Math.min(cached, input), outputTokens: output, reasoningTokens: reasoning }
}

// ---------------------------------------------------------------------------------------------
// The streaming aggregator
// ---------------------------------------------------------------------------------------------

/** Scanner states. */
const S_LINE_START = 0 // nothing but whitespace yet
const S_KEY_OR_CLOSE = 1 // just after `{` of a watched object
const S_KEY = 2 // after `,` in a watched object
const S_COLON = 3 // after a key
const S_VALUE = 4 // after `:` in a watched object
const S_AFTER = 5 // after a value in a watched object
const S_STRING = 6 // inside a string
const S_SCALAR = 7 // inside a number or literal of a watched object
const S_SKIP = 8 // inside an unwatched container: only strings and brackets matter
const S_DONE = 9 // the line's object is closed
const S_BAD = 10 // malformed: ignore the rest of the line

/** Roles of the watched objects: the line, its `response`, the response's `body`. Everything else is skipped. */
const ROLE_NONE = 0
const ROLE_ROOT = 1
const ROLE_RESPONSE = 2
const ROLE_BODY = 3

/** Keys read in watched objects. */
const K_NONE = 0
const K_RESPONSE = 1
const K_ERROR = 2
const K_STATUS = 3
const K_BODY = 4
const K_MODEL = 5
const K_MODEL_VERSION = 6
const K_USAGE = 7
const K_USAGE_METADATA = 8

/** The watched keys of each role, as bytes. */
const KEYS: ReadonlyArray<ReadonlyArray<readonly [Buffer, number]>> = [
  [],
  [
    [Buffer.from('response'), K_RESPONSE],
    [Buffer.from('error'), K_ERROR],
  ],
  [
    [Buffer.from('status_code'), K_STATUS],
    [Buffer.from('body'), K_BODY],
  ],
  [
    [Buffer.from('model'), K_MODEL],
    [Buffer.from('modelVersion'), K_MODEL_VERSION],
    [Buffer.from('usage'), K_USAGE],
    [Buffer.from('usageMetadata'), K_USAGE_METADATA],
  ],
]

const OBJECT = 1
const ARRAY = 2
const MAX_DEPTH = 1024
/** Longest key, model name, status or usage object copied out of a line; a longer one makes the line malformed. */
const MAX_CAPTURE = 64 * 1024

/** Strings up to this many bytes are walked in JavaScript, longer ones searched with `Buffer#indexOf`. */
const SHORT_STRING = 48
const QUOTE = 0x22
const BACKSLASH = 0x5c
const NEWLINE = 0x0a

/** Bytes that matter inside a skipped container. */
const SKIP_STOP = new Uint8Array(256)
for (const c of '"{}[]') SKIP_STOP[c.charCodeAt(0)] = 1
/** Bytes that end a number or literal. */
const SCALAR_END = new Uint8Array(256)
for (const c of ',}] \t\r') SCALAR_END[c.charCodeAt(0)] = 1

interface Sums {
  succeeded: number
  failed: number
  inputTokens: number
  cachedTokens: number
  outputTokens: number
  reasoningTokens: number
}

/**
 * The push form of {@link aggregateUsage}: `write` chunks as they come (say, while the file is also piped to a
 * client), then `finish`. Holds one line's scanner state and the per-model sums, nothing else.
 */
export class UsageAggregator {
  private readonly sums = new Map<string, Sums>()
  private readonly defaultModel: string
  private lines = 0
  private malformedLines = 0
  private finished = false

  // Scanner state, carried across chunks.
  private state = S_LINE_START
  private depth = 0
  private readonly kinds = new Uint8Array(MAX_DEPTH + 1)
  private readonly roles = new Uint8Array(MAX_DEPTH + 1)
  /** The line has a byte other than whitespace. */
  private lineStarted = false
  /** The watched key whose value comes next, and the role of the object a key being read belongs to. */
  private key = K_NONE
  private keyRole = ROLE_NONE
  /** The state after the string in progress. */
  private afterString = S_AFTER
  /** A backslash ended the previous chunk inside a string. */
  private escaped = false

  // The capture in progress: a key, a value, or the usage object, as a byte range that may span chunks.
  private capturing = false
  private captureKey = K_NONE
  private captureStart = 0
  /** The depth of a captured object (it ends when that object closes); 0 for a captured string or scalar. */
  private captureDepth = 0
  private captureLength = 0
  private readonly captureBuffer = Buffer.allocUnsafe(MAX_CAPTURE)

  // The last model name decoded, to decode a run of lines that name the same model once.
  private readonly lastModelBytes = Buffer.alloc(256)
  private lastModelLength = -1
  private lastModel = ''

  // What the current line says.
  private lineResponse = false
  private lineError = false
  private lineStatus = Number.NaN
  private lineModel: string | undefined
  private lineModelVersion: string | undefined
  private lineUsage: TokenUsage | undefined
  private lineUsageMetadata: TokenUsage | undefined

  constructor(
    private readonly pricing: Pick<Pricing, 'costOf'>,
    options: AggregateOptions = {},
  ) {
    this.defaultModel = options.defaultModel || UNKNOWN_MODEL
  }

  /** Feeds the next chunk of the file. */
  write(chunk: UsageChunk): void {
    if (this.finished) throw new Error('UsageAggregator: write after finish')
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const length = buf.length
    let pos = 0
    while (pos < length) {
      const newline = buf.indexOf(NEWLINE, pos)
      const end = newline === -1 ? length : newline
      if (this.state !== S_BAD && end > pos) this.scan(buf, pos, end)
      if (newline === -1) {
        if (this.capturing && this.state !== S_BAD) this.saveCapture(buf, end)
        break
      }
      this.endLine()
      pos = newline + 1
    }
  }

  /** Ends the input (a last line without `\n` counts) and returns the summary. */
  finish(): UsageSummary {
    if (!this.finished) {
      this.endLine()
      this.finished = true
    }
    const byModel = new Map<string, ModelUsage>()
    for (const [model, sums] of this.sums) {
      const tokens = sums.inputTokens + sums.outputTokens
      byModel.set(model, {
        requests: { succeeded: sums.succeeded, failed: sums.failed },
        inputTokens: sums.inputTokens,
        cachedTokens: sums.cachedTokens,
        outputTokens: sums.outputTokens,
        reasoningTokens: sums.reasoningTokens,
        totalTokens: tokens,
        cost: tokens === 0 ? 0 : this.pricing.costOf(model, sums),
      })
    }
    return summarize(byModel, this.lines, this.malformedLines)
  }

  /** Scans `buf[start, end)`, a piece of one line. */
  private scan(buf: Buffer, start: number, end: number): void {
    let i = start
    let state = this.state
    let depth = this.depth
    const kinds = this.kinds
    const roles = this.roles
    if (this.capturing) this.captureStart = start

    while (i < end) {
      if (state === S_STRING) {
        // Find the closing quote. Short strings (most keys and values) are walked here, skipping each escaped
        // byte; longer ones are searched natively for a quote preceded by an even run of backslashes.
        let from = i
        if (this.escaped) {
          this.escaped = false
          from++
        }
        let close = -1
        const limit = end - from > SHORT_STRING ? from + SHORT_STRING : end
        while (from < limit) {
          const c = buf[from]!
          if (c === QUOTE) {
            close = from
            break
          }
          from += c === BACKSLASH ? 2 : 1
        }
        if (close === -1 && from < end) {
          while (true) {
            const quote = buf.indexOf(QUOTE, from)
            if (quote === -1 || quote >= end) break
            let k = quote - 1
            while (k >= from && buf[k] === BACKSLASH) k--
            if (((quote - 1 - k) & 1) === 0) {
              close = quote
              break
            }
            from = quote + 1
          }
          if (close === -1) {
            let k = end - 1
            while (k >= from && buf[k] === BACKSLASH) k--
            from = ((end - 1 - k) & 1) === 1 ? end + 1 : end
          }
        }
        if (close === -1) {
          // The piece ends inside the string; `from` is past `end` when its last byte is an escaping backslash.
          this.escaped = from > end
          i = end
          break
        }
        if (this.capturing && this.captureDepth === 0 && !this.endCapture(buf, close)) {
          state = S_BAD
          break
        }
        state = this.afterString
        i = close + 1
        continue
      }

      if (state === S_SKIP) {
        while (i < end && SKIP_STOP[buf[i]!] === 0) i++
        if (i === end) break
        const c = buf[i]!
        if (c === QUOTE) {
          this.afterString = S_SKIP
          state = S_STRING
        } else if (c === 0x7b || c === 0x5b) {
          if (depth === MAX_DEPTH) {
            state = S_BAD
            break
          }
          depth++
          kinds[depth] = c === 0x7b ? OBJECT : ARRAY
          roles[depth] = ROLE_NONE
        } else {
          if (kinds[depth] !== (c === 0x7d ? OBJECT : ARRAY)) {
            state = S_BAD
            break
          }
          depth--
          if (this.capturing && depth < this.captureDepth && !this.endCapture(buf, i + 1)) {
            state = S_BAD
            break
          }
          if (roles[depth] !== ROLE_NONE) state = S_AFTER
        }
        i++
        continue
      }

      if (state === S_SCALAR) {
        while (i < end && SCALAR_END[buf[i]!] === 0) i++
        if (i === end) break
        if (this.capturing && this.captureDepth === 0 && !this.endCapture(buf, i)) {
          state = S_BAD
          break
        }
        state = S_AFTER
        continue
      }

      const c = buf[i]!
      if (c === 0x20 || c === 0x09 || c === 0x0d) {
        i++
        continue
      }
      switch (state) {
        case S_LINE_START:
          this.lineStarted = true
          if (c !== 0x7b) {
            state = S_BAD
            break
          }
          depth = 1
          kinds[1] = OBJECT
          roles[1] = ROLE_ROOT
          state = S_KEY_OR_CLOSE
          break
        case S_KEY_OR_CLOSE:
        case S_KEY:
          if (c === QUOTE) {
            this.afterString = S_COLON
            this.startCapture(i + 1, K_NONE, 0)
            this.keyRole = roles[depth]!
            state = S_STRING
          } else if (c === 0x7d && state === S_KEY_OR_CLOSE) {
            depth--
            state = depth === 0 ? S_DONE : S_AFTER
          } else {
            state = S_BAD
          }
          break
        case S_COLON:
          state = c === 0x3a ? S_VALUE : S_BAD
          break
        case S_VALUE:
          state = this.startValue(c, i, depth + 1)
          if (c === 0x7b || c === 0x5b) {
            depth++
            kinds[depth] = c === 0x7b ? OBJECT : ARRAY
            roles[depth] = state === S_KEY_OR_CLOSE ? (this.key === K_RESPONSE ? ROLE_RESPONSE : ROLE_BODY) : ROLE_NONE
          }
          this.key = K_NONE
          break
        case S_AFTER:
          if (c === 0x2c) {
            state = S_KEY
          } else if (c === 0x7d) {
            depth--
            state = depth === 0 ? S_DONE : S_AFTER
          } else {
            state = S_BAD
          }
          break
        default:
          // S_DONE: anything but whitespace after the line's object.
          state = S_BAD
      }
      if (state === S_BAD) break
      i++
    }

    this.state = state
    this.depth = depth
  }

  /** Starts a value of a watched object at `buf[i] = c`; returns the next state. */
  private startValue(c: number, i: number, childDepth: number): number {
    const key = this.key
    switch (key) {
      case K_RESPONSE:
        this.lineResponse = c === 0x7b
        this.lineStatus = Number.NaN
        this.clearBody()
        break
      case K_BODY:
        this.clearBody()
        break
      case K_ERROR:
        this.lineError = true // until a scalar turns out to be `null`
        break
      case K_STATUS:
        this.lineStatus = Number.NaN
        break
      case K_MODEL:
        this.lineModel = undefined
        break
      case K_MODEL_VERSION:
        this.lineModelVersion = undefined
        break
      case K_USAGE:
        this.lineUsage = undefined
        break
      case K_USAGE_METADATA:
        this.lineUsageMetadata = undefined
        break
    }
    if (c === 0x7b) {
      if (key === K_RESPONSE || key === K_BODY) return S_KEY_OR_CLOSE
      if (key === K_USAGE || key === K_USAGE_METADATA) this.startCapture(i, key, childDepth)
      return S_SKIP
    }
    if (c === 0x5b) return S_SKIP
    if (c === QUOTE) {
      this.afterString = S_AFTER
      if (key === K_MODEL || key === K_MODEL_VERSION) this.startCapture(i + 1, key, 0)
      return S_STRING
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e) {
      if (key === K_STATUS || key === K_ERROR) this.startCapture(i, key, 0)
      return S_SCALAR
    }
    return S_BAD
  }

  private clearBody(): void {
    this.lineModel = undefined
    this.lineModelVersion = undefined
    this.lineUsage = undefined
    this.lineUsageMetadata = undefined
  }

  /** Starts copying bytes at `buf[start]` for `key` (K_NONE: a key of a watched object). */
  private startCapture(start: number, key: number, depth: number): void {
    this.capturing = true
    this.captureKey = key
    this.captureStart = start
    this.captureDepth = depth
    this.captureLength = 0
  }

  /** Keeps the captured part of a chunk that ends mid-capture. */
  private saveCapture(buf: Buffer, end: number): void {
    const length = end - this.captureStart
    if (this.captureLength + length > MAX_CAPTURE) {
      this.state = S_BAD
      this.capturing = false
      return
    }
    buf.copy(this.captureBuffer, this.captureLength, this.captureStart, end)
    this.captureLength += length
  }

  /** Ends the capture at `buf[end]` (exclusive) and stores what it says; false if it makes the line malformed. */
  private endCapture(buf: Buffer, end: number): boolean {
    this.capturing = false
    let start = this.captureStart
    if (this.captureLength > 0) {
      const length = this.captureLength + end - start
      if (length > MAX_CAPTURE) return false
      buf.copy(this.captureBuffer, this.captureLength, start, end)
      buf = this.captureBuffer
      start = 0
      end = length
    } else if (end - start > MAX_CAPTURE) {
      return false
    }
    switch (this.captureKey) {
      case K_NONE:
        this.key = keyId(this.keyRole, buf, start, end)
        return true
      case K_MODEL:
      case K_MODEL_VERSION: {
        const name = this.modelName(buf, start, end)
        if (name === undefined) return false
        if (this.captureKey === K_MODEL) this.lineModel = name || undefined
        else this.lineModelVersion = name || undefined
        return true
      }
      case K_STATUS:
        this.lineStatus = parseNumber(buf, start, end)
        return true
      case K_ERROR:
        this.lineError = !isNull(buf, start, end)
        return true
      default: {
        let value: unknown
        try {
          value = JSON.parse(buf.toString('latin1', start, end))
        } catch {
          return false
        }
        const usage = normalizeUsage(value)
        if (this.captureKey === K_USAGE) this.lineUsage = usage
        else this.lineUsageMetadata = usage
        return true
      }
    }
  }

  /** The model name in `buf[start, end)`, decoded once for a run of lines that name the same model. */
  private modelName(buf: Buffer, start: number, end: number): string | undefined {
    const length = end - start
    const last = this.lastModelBytes
    if (length === this.lastModelLength) {
      let k = 0
      while (k < length && buf[start + k] === last[k]) k++
      if (k === length) return this.lastModel
    }
    const name = decodeString(buf, start, end)
    if (name !== undefined && length <= last.length) {
      buf.copy(last, 0, start, end)
      this.lastModelLength = length
      this.lastModel = name
    }
    return name
  }

  /** Closes the current line: classifies and sums it, then resets the scanner. */
  private endLine(): void {
    if (this.lineStarted) {
      this.lines++
      if (this.state === S_DONE) this.addLine()
      else this.malformedLines++
    }
    this.resetLine()
  }

  private addLine(): void {
    const hasStatus = !Number.isNaN(this.lineStatus)
    if ((!this.lineResponse && !this.lineError) || (this.lineResponse && !hasStatus)) {
      this.malformedLines++
      return
    }
    const succeeded = this.lineResponse && !this.lineError && this.lineStatus >= 200 && this.lineStatus < 300
    const model = this.lineModel ?? this.lineModelVersion ?? this.defaultModel
    let sums = this.sums.get(model)
    if (sums === undefined) {
      sums = { succeeded: 0, failed: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 }
      this.sums.set(model, sums)
    }
    if (succeeded) sums.succeeded++
    else sums.failed++
    const usage = this.lineUsage ?? this.lineUsageMetadata
    if (usage !== undefined) {
      sums.inputTokens += usage.inputTokens
      sums.cachedTokens += usage.cachedTokens
      sums.outputTokens += usage.outputTokens
      sums.reasoningTokens += usage.reasoningTokens
    }
  }

  private resetLine(): void {
    this.state = S_LINE_START
    this.depth = 0
    this.lineStarted = false
    this.key = K_NONE
    this.escaped = false
    this.capturing = false
    this.captureLength = 0
    this.lineResponse = false
    this.lineError = false
    this.lineStatus = Number.NaN
    this.clearBody()
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** The text of a JSON string's content bytes `buf[start, end)` (between the quotes); undefined if its escapes are invalid. */
function decodeString(buf: Buffer, start: number, end: number): string | undefined {
  const text = buf.toString('utf8', start, end)
  if (!hasBackslash(buf, start, end)) return text
  try {
    return JSON.parse(`"${text}"`) as string
  } catch {
    return undefined
  }
}

/** The watched key of `role` named by the JSON string content `buf[start, end)`, or K_NONE. */
function keyId(role: number, buf: Buffer, start: number, end: number): number {
  const length = end - start
  for (const [name, id] of KEYS[role]!) {
    if (name.length !== length) continue
    let k = 0
    while (k < length && buf[start + k] === name[k]) k++
    if (k === length) return id
  }
  // A key spelled with escapes (`"mod\u0065l"`) is the same key.
  if (role === ROLE_NONE || !hasBackslash(buf, start, end)) return K_NONE
  const text = decodeString(buf, start, end)
  for (const [name, id] of KEYS[role]!) if (text === name.toString('latin1')) return id
  return K_NONE
}

function hasBackslash(buf: Buffer, start: number, end: number): boolean {
  for (let k = start; k < end; k++) if (buf[k] === BACKSLASH) return true
  return false
}

/** A JSON number's grammar: a status code written otherwise (`0200`, `0x10`, `true`) is not one. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

/** The number token `buf[start, end)`, NaN if it is not a JSON number. */
function parseNumber(buf: Buffer, start: number, end: number): number {
  const text = buf.toString('latin1', start, end)
  return JSON_NUMBER.test(text) ? Number(text) : Number.NaN
}

/** Whether the token `buf[start, end)` is the literal `null`. */
function isNull(buf: Buffer, start: number, end: number): boolean {
  return (
    end - start === 4 &&
    buf[start] === 0x6e &&
    buf[start + 1] === 0x75 &&
    buf[start + 2] === 0x6c &&
    buf[start + 3] === 0x6c
  )
}

function summarize(byModel: Map<string, ModelUsage>, lines: number, malformedLines: number): UsageSummary {
  const totals: ModelUsage = {
    requests: { succeeded: 0, failed: 0 },
    inputTokens: 0,
    cachedTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    cost: 0,
  }
  const unpricedModels: string[] = []
  const models = [...byModel.keys()].sort()
  for (const model of models) {
    const usage = byModel.get(model)!
    addModelUsage(totals, usage)
    if (usage.cost === null) unpricedModels.push(model)
  }
  if (totals.cost !== null) totals.cost = roundUsd(totals.cost)
  return {
    byModel: Object.fromEntries(models.map((model) => [model, byModel.get(model)!])),
    totals,
    unpricedModels,
    lines,
    malformedLines,
  }
}

/** Adds `usage` into `sum` (costs: null if either is null; rounded); returns `sum`. */
function addModelUsage(sum: ModelUsage, usage: ModelUsage): ModelUsage {
  sum.requests.succeeded += usage.requests.succeeded
  sum.requests.failed += usage.requests.failed
  sum.inputTokens += usage.inputTokens
  sum.cachedTokens += usage.cachedTokens
  sum.outputTokens += usage.outputTokens
  sum.reasoningTokens += usage.reasoningTokens
  sum.totalTokens += usage.totalTokens
  sum.cost = sum.cost === null || usage.cost === null ? null : roundUsd(sum.cost + usage.cost)
  return sum
}

function copyUsage(usage: ModelUsage): ModelUsage {
  return { ...usage, requests: { ...usage.requests } }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0
}
