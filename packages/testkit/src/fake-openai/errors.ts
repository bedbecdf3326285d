/** OpenAI's error envelope body: `{"error":{"message","type","param","code"}}`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null }
}

/** An error answered to the client with OpenAI's envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message)
    this.name = 'ApiError'
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

/** Joins values the way OpenAI's validation messages do: `'a', 'b', and 'c'`. */
function quoteList(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`)
  if (quoted.length <= 1) return quoted.join('')
  if (quoted.length === 2) return `${quoted[0]} and ${quoted[1]}`
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`
}

/** JSON type names as OpenAI's `invalid_type` messages spell them. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (Number.isInteger(value)) return 'an integer'
  switch (typeof value) {
    case 'string':
      return 'a string'
    case 'number':
      return 'a decimal'
    case 'boolean':
      return 'a boolean'
    default:
      return 'an object'
  }
}

export const missingParameter = (param: string): ApiError =>
  new ApiError(
    400,
    `Missing required parameter: '${param}'.`,
    'invalid_request_error',
    param,
    'missing_required_parameter',
  )

export const invalidValue = (param: string, value: string, supported: readonly string[]): ApiError =>
  new ApiError(
    400,
    `Invalid value: '${value}'. Supported values are: ${quoteList(supported)}.`,
    'invalid_request_error',
    param,
    'invalid_value',
  )

export const invalidType = (param: string, expected: string, value: unknown): ApiError =>
  new ApiError(
    400,
    `Invalid type for '${param}': expected ${expected}, but got ${jsonTypeName(value)} instead.`,
    'invalid_request_error',
    param,
    'invalid_type',
  )

export const integerOutOfRange = (param: string, value: number, min: number, max: number): ApiError =>
  value < min
    ? new ApiError(
        400,
        `Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
        'invalid_request_error',
        param,
        'integer_below_min_value',
      )
    : new ApiError(
        400,
        `Invalid '${param}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
        'invalid_request_error',
        param,
        'integer_above_max_value',
      )

export const fileNotFound = (id: string): ApiError =>
  new ApiError(404, `No such File object: ${id}`, 'invalid_request_error', 'id')

export const batchNotFound = (id: string): ApiError =>
  new ApiError(404, `No batch found with id '${id}'.`, 'invalid_request_error', 'id')

export const invalidUrl = (method: string, path: string): ApiError =>
  new ApiError(404, `Invalid URL (${method} ${path})`)

export const missingApiKey = (): ApiError =>
  new ApiError(
    401,
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.",
  )

export function incorrectApiKey(key: string): ApiError {
  // OpenAI echoes only the ends of a wrong key.
  const masked = key.length > 8 ? `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}` : key
  return new ApiError(
    401,
    `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    'invalid_request_error',
    null,
    'invalid_api_key',
  )
}

export const unparseableJson = (): ApiError =>
  new ApiError(
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
  )

/** The body OpenAI answers for a status, used by `failNext`. */
export function errorForStatus(status: number): ApiError {
  switch (status) {
    case 400:
      return new ApiError(400, 'Bad request (injected by the fake).')
    case 401:
      return missingApiKey()
    case 403:
      return new ApiError(403, 'You are not allowed to sample from this model', 'invalid_request_error')
    case 404:
      return new ApiError(404, 'Not found (injected by the fake).')
    case 408:
      return new ApiError(408, 'Request timed out.', 'timeout')
    case 409:
      return new ApiError(409, 'Conflict (injected by the fake).')
    case 429:
      return new ApiError(
        429,
        'Rate limit reached for requests. Please try again in 1s.',
        'requests',
        null,
        'rate_limit_exceeded',
      )
    case 500:
      return new ApiError(
        500,
        'The server had an error while processing your request. Sorry about that!',
        'server_error',
      )
    case 502:
      return new ApiError(502, 'Bad gateway.', 'server_error')
    case 503:
      return new ApiError(503, 'The engine is currently overloaded, please try again later.', 'server_error')
    case 504:
      return new ApiError(504, 'Gateway timeout.', 'server_error')
    default:
      return status >= 500
        ? new ApiError(status, 'The server had an error while processing your request.', 'server_error')
        : new ApiError(status, `Request failed with status ${status} (injected by the fake).`)
  }
}
