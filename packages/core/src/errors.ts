/** The error body OpenAI's clients read: `{"error":{"message","type","param","code"}}`. */
export interface ErrorBody {
  message: string
  type: string
  param: string | null
  code: string | null
}

const brand = Symbol.for('batchkit.ApiError')

/** An error that goes on the wire as-is: an HTTP status plus OpenAI's error envelope. */
export class ApiError extends Error {
  readonly [brand] = true
  readonly status: number
  readonly type: string
  readonly param: string | null
  readonly code: string | null
  /** Extra response headers, such as `x-should-retry`. */
  readonly headers: Readonly<Record<string, string>>

  constructor(
    status: number,
    message: string,
    options: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.type = options.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error')
    this.param = options.param ?? null
    this.code = options.code ?? null
    this.headers = options.headers ?? {}
  }

  /** The `{"error":{...}}` body for this error. */
  toJSON(): { error: ErrorBody } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

/** True for an {@link ApiError}, even one created by another copy of this package. */
export function isApiError(value: unknown): value is ApiError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
}

/** 400 for a missing required parameter. */
export function missingParameter(param: string): ApiError {
  return new ApiError(400, `Missing required parameter: '${param}'.`, { param, code: 'missing_required_parameter' })
}

/** 400 for a parameter with a value outside what is allowed. */
export function invalidValue(param: string, message: string): ApiError {
  return new ApiError(400, message, { param, code: 'invalid_value' })
}

/** 400 for an argument the operation does not take, worded and shaped as OpenAI's (`param` and `code` null). */
export function unrecognizedArgument(name: string): ApiError {
  return new ApiError(400, `Unrecognized request argument supplied: ${name}`)
}

/** 400 for a parameter of the wrong JSON type. */
export function invalidType(param: string, expected: string, got: unknown): ApiError {
  return new ApiError(400, `Invalid type for '${param}': expected ${expected}, but got ${describeType(got)} instead.`, {
    param,
    code: 'invalid_type',
  })
}

/** 404 for an id that does not exist or belongs to someone else; the two are indistinguishable on purpose. */
export function notFound(kind: 'file' | 'batch', id: string): ApiError {
  const message = kind === 'file' ? `No such File object: ${id}` : `No batch found with id '${id}'.`
  return new ApiError(404, message, { param: 'id' })
}

function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  const type = typeof value
  return type === 'object' ? 'an object' : `a ${type}`
}
