import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { jsonTypeName } from './errors.js'
import { isRecord } from './http.js'
import type { BatchError } from './types.js'
import { fakeUsage } from './usage.js'

export type InputValidation =
  | {
      ok: true
      total: number
      model: string | null
      /** The prompt tokens of every request, as the fake counts them: what the batch puts in its model's queue. */
      promptTokens?: number
    }
  | { ok: false; errors: BatchError[] }

const REQUIRED_FIELDS = ['custom_id', 'method', 'url', 'body'] as const

/** How a fake's dialect differs from OpenAI's checks. */
export interface ValidationRules {
  /** Whether a line's `url` fits the batch's `endpoint`. @default equality */
  urlMatches?(url: string, endpoint: string): boolean
  /** The error code of a line whose `url` does not fit. @default 'invalid_url' */
  urlMismatchCode?: string
}

/**
 * Validates a batch input file the way OpenAI does while a batch is `validating`: every offending line is
 * reported (one error per line, lines numbered from 1), streaming so large files stay out of memory.
 */
export async function validateBatchInput(
  path: string,
  endpoint: string,
  rules: ValidationRules = {},
): Promise<InputValidation> {
  const errors: BatchError[] = []
  const seenCustomIds = new Set<string>()
  let model: string | null = null
  let total = 0
  let promptTokens = 0
  let lineNumber = 0
  // Blank lines are only an error when something follows them; a trailing newline run is harmless.
  const pendingBlankLines: number[] = []

  const input = createReadStream(path)
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  try {
    for await (const text of lines) {
      lineNumber++
      if (text.trim() === '') {
        pendingBlankLines.push(lineNumber)
        continue
      }
      for (const blank of pendingBlankLines.splice(0)) errors.push(invalidJsonLine(blank))

      const result = checkLine(text, lineNumber, endpoint, seenCustomIds, model, rules)
      if ('code' in result) {
        errors.push(result)
      } else {
        total++
        promptTokens += result.promptTokens
        model ??= result.model
      }
    }
  } finally {
    lines.close()
    input.destroy()
  }

  if (errors.length > 0) return { ok: false, errors }
  if (total === 0) {
    return {
      ok: false,
      errors: [
        {
          code: 'empty_file',
          message: 'The input file is empty. Please ensure that the batch contains at least one request.',
          param: null,
          line: null,
        },
      ],
    }
  }
  return { ok: true, total, model, promptTokens }
}

function invalidJsonLine(line: number): BatchError {
  return { code: 'invalid_json_line', message: 'This line is not parseable as valid JSON.', param: null, line }
}

function checkLine(
  text: string,
  line: number,
  endpoint: string,
  seenCustomIds: Set<string>,
  batchModel: string | null,
  rules: ValidationRules,
): BatchError | { model: string; promptTokens: number } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return invalidJsonLine(line)
  }
  if (!isRecord(value)) return invalidJsonLine(line)
  const fail = (code: string, param: string | null, message: string): BatchError => ({ code, message, param, line })

  for (const field of REQUIRED_FIELDS) {
    if (value[field] === undefined || value[field] === null) {
      return fail('missing_required_parameter', field, `Missing required parameter: '${field}'.`)
    }
  }
  const { custom_id: customId, method, url, body } = value
  if (typeof customId !== 'string') {
    return fail(
      'invalid_type',
      'custom_id',
      `Invalid type for 'custom_id': expected a string, but got ${jsonTypeName(customId)} instead.`,
    )
  }
  if (method !== 'POST') {
    return fail('invalid_value', 'method', `Invalid value: '${String(method)}'. Supported values are: 'POST'.`)
  }
  if (typeof url !== 'string' || !(rules.urlMatches ? rules.urlMatches(url, endpoint) : url === endpoint)) {
    return fail(
      rules.urlMismatchCode ?? 'invalid_url',
      'url',
      'The URL provided for this request does not match the batch endpoint.',
    )
  }
  if (!isRecord(body)) {
    return fail(
      'invalid_type',
      'body',
      `Invalid type for 'body': expected an object, but got ${jsonTypeName(body)} instead.`,
    )
  }
  if (body.stream === true) {
    const api = endpoint === '/v1/chat/completions' ? 'Chat Completions: ' : ''
    return fail('streaming_unsupported', 'body.stream', `${api}Streaming is not supported in the Batch API.`)
  }
  if (typeof body.model !== 'string' || body.model === '') {
    return fail('invalid_request', 'body.model', 'Model parameter is required.')
  }
  if (endpoint === '/v1/chat/completions' && body.messages === undefined) {
    return fail('invalid_request', 'body.messages', 'Messages parameter is required.')
  }
  if (seenCustomIds.has(customId)) {
    return fail('duplicate_custom_id', 'custom_id', `The custom_id '${customId}' is not unique within the batch.`)
  }
  seenCustomIds.add(customId)
  if (batchModel !== null && body.model !== batchModel) {
    return fail(
      'model_mismatch',
      'body.model',
      `The model '${body.model}' does not match the model '${batchModel}' of the other requests; a batch can only use one model.`,
    )
  }
  return { model: body.model, promptTokens: fakeUsage(value).prompt_tokens }
}
