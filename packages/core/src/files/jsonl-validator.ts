import { isUtf8 } from 'node:buffer'
import { Transform, type TransformCallback } from 'node:stream'
import { ApiError } from '../errors.js'
import type { FileEstimator } from '../estimates/file-estimator.js'
import { loadTokenizers, tokenizersLoaded } from '../estimates/tokenizers.js'
import { BATCH_ENDPOINTS, type BatchInputSummary, type UploadPurpose } from '../types.js'
import { CompactStringSet } from '../util/compact-string-set.js'
import type { UploadLimits } from './upload-limits.js'

const NEWLINE = 0x0a
const ENDPOINTS: ReadonlySet<string> = new Set(BATCH_ENDPOINTS)

/**
 * A pass-through stream that checks an upload while it flows: size limits for every file, and for
 * `purpose: batch` every JSONL line (valid UTF-8, never repaired; a JSON object with `custom_id`,
 * `method: POST`, `url`, `body`; unique `custom_id`s; one `url` and one `body.model` for the file).
 * Bytes leave unchanged and only one line at a time is held.
 *
 * The multipart `purpose` field may arrive after the file, so the purpose is a promise: until it
 * resolves, problems are recorded rather than raised, and the stream's end waits for it.
 *
 * Given a {@link FileEstimator}, every request line it accepts is also added to the estimate, from
 * the same parse; the first chunk waits for the tokenizers to load (once per process).
 */
export class JsonlValidator extends Transform {
  /** Bytes seen so far. */
  bytes = 0
  /** The first request line's `body.model`, once known; `undefined` if the file has none. */
  readonly firstModel: Promise<string | undefined>

  private purpose: UploadPurpose | undefined
  private validating = true
  private problem: ApiError | undefined
  private line = 0
  private requests = 0
  private firstBlankLine = 0
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** Bytes kept back until the first request line is read, so the provider can be chosen by its model. */
  private held: Buffer[] | undefined = []
  private heldBytes = 0
  /** Off the heap: a file of a million requests holds a million ids, which a `Set` would keep in about 60 MB of heap. */
  private readonly customIds = new CompactStringSet()
  private url: string | undefined
  private model: string | undefined
  private resolveFirstModel!: (model: string | undefined) => void

  private readonly limits: UploadLimits

  constructor(
    limits: UploadLimits,
    private readonly purposePromise: Promise<UploadPurpose>,
    private estimator?: FileEstimator,
  ) {
    super()
    this.limits = { ...limits }
    this.firstModel = new Promise((resolve) => {
      this.resolveFirstModel = resolve
    })
    purposePromise.then(
      (purpose) => {
        this.purpose = purpose
        if (purpose !== 'batch') this.validating = false
      },
      () => undefined,
    )
  }

  /** Changes the most requests the file may hold, once its provider (which may allow more) is known. */
  setMaxBatchRequests(max: number): void {
    this.limits.maxBatchRequests = max
  }

  /** What the file holds, for a valid batch input file; call after the stream has ended. */
  summary(): BatchInputSummary | null {
    if (this.purpose !== 'batch' || this.url === undefined || this.model === undefined) return null
    return { url: this.url, model: this.model, requests: this.requests }
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.estimator && this.validating && !tokenizersLoaded()) {
      // A tokenizer that cannot load costs the upload its estimate, never the upload itself.
      const go = () => this._transform(chunk, encoding, callback)
      loadTokenizers().then(go, () => {
        this.estimator = undefined
        go()
      })
      return
    }
    this.bytes += chunk.length
    const tooLarge = this.sizeProblem(false)
    if (this.validating && !tooLarge) this.scan(chunk)
    const problem = tooLarge ?? (this.purpose === 'batch' ? this.problem : undefined)
    if (problem) {
      callback(problem)
    } else if (!this.held) {
      callback(null, chunk)
    } else {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      if (this.requests > 0 || !this.validating || this.heldBytes > this.limits.maxLineBytes) this.release()
      callback()
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.validating && this.pendingBytes > 0) this.endLine(Buffer.concat(this.pending))
    this.release()
    this.purposePromise.then((purpose) => {
      if (purpose !== 'batch') return callback(this.sizeProblem(true) ?? null)
      const problem =
        this.sizeProblem(true) ??
        this.problem ??
        (this.requests === 0
          ? new ApiError(400, 'The file is empty: a batch input file needs at least one request line.', {
              param: 'file',
              code: 'empty_file',
            })
          : undefined)
      callback(problem ?? null)
    }, callback)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.resolveFirstModel(this.model)
    callback(error)
  }

  /** Lets held bytes go and settles {@link firstModel}: `undefined` when no request line was read. */
  private release(): void {
    this.resolveFirstModel(this.model)
    const held = this.held
    this.held = undefined
    for (const chunk of held ?? []) this.push(chunk)
  }

  private sizeProblem(atEnd: boolean): ApiError | undefined {
    const { maxBatchFileBytes, maxFileBytes } = this.limits
    const limit =
      this.purpose === 'batch'
        ? maxBatchFileBytes
        : this.purpose !== undefined || atEnd
          ? maxFileBytes
          : Math.max(maxBatchFileBytes, maxFileBytes)
    if (this.bytes <= limit) return undefined
    const what = this.purpose === 'batch' ? 'Batch input files' : 'Files'
    return new ApiError(413, `${what} can be at most ${limit} bytes.`, { param: 'file', code: 'file_too_large' })
  }

  private scan(chunk: Buffer): void {
    let start = 0
    for (;;) {
      const newline = chunk.indexOf(NEWLINE, start)
      if (newline === -1) {
        if (start < chunk.length) this.hold(chunk.subarray(start))
        return
      }
      const piece = chunk.subarray(start, newline)
      if (this.pendingBytes + piece.length > this.limits.maxLineBytes) {
        this.lineTooLong()
        return
      }
      const line = this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]) : piece
      this.pending = []
      this.pendingBytes = 0
      this.endLine(line)
      if (!this.validating) return
      start = newline + 1
    }
  }

  private hold(piece: Buffer): void {
    this.pending.push(piece)
    this.pendingBytes += piece.length
    if (this.pendingBytes > this.limits.maxLineBytes) this.lineTooLong()
  }

  private lineTooLong(): void {
    this.fail(`Line ${this.line + 1} is longer than ${this.limits.maxLineBytes} bytes.`, 'line_too_large')
  }

  private fail(message: string, code: string): void {
    this.problem ??= new ApiError(400, message, { param: 'file', code })
    this.validating = false
    this.pending = []
    this.pendingBytes = 0
  }

  private endLine(raw: Buffer): void {
    const n = ++this.line
    const problem = this.problemOfLine(n, raw)
    if (problem) this.fail(problem[0], problem[1])
  }

  /** Returns `[message, code]` for line `n` when it breaks a rule, and counts it when it is a request. */
  private problemOfLine(n: number, bytes: Buffer): [string, string] | undefined {
    // A CRLF line keeps its '\r': JSON.parse and trim() both take it as whitespace.
    if (n === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
      return ['Line 1 starts with a UTF-8 byte order mark; save the file as UTF-8 without one.', 'invalid_json_line']
    }
    // Checked per line, which is exact: a newline byte never occurs inside a multi-byte UTF-8 character.
    if (!isUtf8(bytes)) return [`Line ${n} is not valid UTF-8; save the file as UTF-8.`, 'invalid_json_line']
    const text = bytes.toString('utf8')
    if (text.trim() === '') {
      if (this.firstBlankLine === 0) this.firstBlankLine = n
      return undefined
    }
    if (this.firstBlankLine !== 0) {
      return [`Line ${this.firstBlankLine} is blank; every line must be a request.`, 'invalid_json_line']
    }
    let request: unknown
    try {
      request = JSON.parse(text)
    } catch {
      return [`Line ${n} is not parseable as valid JSON.`, 'invalid_json_line']
    }
    const problem = this.checkRequest(request)
    if (problem) return [`Line ${n}: ${problem[0]}`, problem[1]]
    if (++this.requests > this.limits.maxBatchRequests) {
      return [`The file has more than ${this.limits.maxBatchRequests} requests (line ${n}).`, 'too_many_tasks']
    }
    return undefined
  }

  /** Returns `[message, code]` for a line that breaks a rule, or undefined. */
  private checkRequest(request: unknown): [string, string] | undefined {
    if (!isObject(request)) return ['each line must be a JSON object.', 'invalid_json_line']
    const { custom_id: customId, method, url, body } = request
    for (const [name, value] of [
      ['custom_id', customId],
      ['method', method],
      ['url', url],
      ['body', body],
    ] as const) {
      if (value === undefined || value === null)
        return [`Missing required parameter: '${name}'.`, 'missing_required_parameter']
    }
    if (typeof customId !== 'string' || customId === '')
      return ["'custom_id' must be a non-empty string.", 'invalid_type']
    // Added before the line's other checks: any problem ends the validation, so an id kept for a bad line is never read.
    if (!this.customIds.add(customId)) return [`Duplicate custom_id '${clip(customId)}'.`, 'duplicate_custom_id']
    if (method !== 'POST') return [`Invalid value for 'method': only 'POST' is supported.`, 'invalid_value']
    if (typeof url !== 'string' || !ENDPOINTS.has(url)) {
      return [
        `Invalid value for 'url': ${clip(JSON.stringify(url) ?? '')} is not a supported batch endpoint.`,
        'invalid_url',
      ]
    }
    if (this.url !== undefined && url !== this.url) {
      return [
        `The url '${clip(url)}' differs from '${this.url}' of the first request; a file targets one url.`,
        'url_mismatch',
      ]
    }
    if (!isObject(body)) return ["'body' must be a JSON object.", 'invalid_type']
    const model = body.model
    if (typeof model !== 'string' || model === '')
      return ["'body.model' is required and must be a string.", 'invalid_request']
    if (this.model !== undefined && model !== this.model) {
      return [
        `The model '${clip(model)}' differs from '${clip(this.model)}' of the first request; a file uses one model.`,
        'model_mismatch',
      ]
    }
    if (body.stream === true) return ['streaming is not supported in the Batch API.', 'streaming_unsupported']
    this.url = url
    this.model = model
    this.estimator?.add(url, body)
    return undefined
  }
}

/** A client's value, short enough to quote in an error message. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
