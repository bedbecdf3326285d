import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BatchRunner } from './batch-runner.js'
import { ApiError, integerOutOfRange, invalidType, invalidValue, missingParameter } from './errors.js'
import { integerQuery, isRecord, paginate, readJsonBody, sendJson } from './http.js'
import type { FakeBatch, FakeFile } from './types.js'

/** Endpoints `POST /batches` accepts (OpenAI's `CreateBatchRequest.endpoint` enum). */
export const BATCH_ENDPOINTS = [
  '/v1/responses',
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/completions',
  '/v1/moderations',
  '/v1/images/generations',
  '/v1/images/edits',
  '/v1/videos',
] as const

const CREATE_PARAMS = new Set(['input_file_id', 'endpoint', 'completion_window', 'metadata', 'output_expires_after'])
const METADATA_MAX_KEYS = 16
const METADATA_MAX_KEY_LENGTH = 64
const METADATA_MAX_VALUE_LENGTH = 512
const MIN_EXPIRY_SECONDS = 3600
const MAX_EXPIRY_SECONDS = 30 * 24 * 60 * 60

export interface BatchesContext {
  files: Map<string, FakeFile>
  batches: Map<string, FakeBatch>
  runner: BatchRunner
}

/** `POST /batches`: validates synchronously what OpenAI rejects with a 400, leaves the rest to `validating`. */
export async function createBatch(ctx: BatchesContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonBody(req)
  if (!isRecord(body)) throw invalidType('body', 'an object', body)
  for (const key of Object.keys(body)) {
    if (!CREATE_PARAMS.has(key)) throw new ApiError(400, `Unrecognized request argument supplied: ${key}`)
  }
  for (const param of ['input_file_id', 'endpoint', 'completion_window'] as const) {
    if (body[param] === undefined || body[param] === null) throw missingParameter(param)
    if (typeof body[param] !== 'string') throw invalidType(param, 'a string', body[param])
  }
  const inputFileId = body.input_file_id as string
  const endpoint = body.endpoint as string
  const completionWindow = body.completion_window as string
  if (!(BATCH_ENDPOINTS as readonly string[]).includes(endpoint))
    throw invalidValue('endpoint', endpoint, BATCH_ENDPOINTS)
  if (completionWindow !== '24h') throw invalidValue('completion_window', completionWindow, ['24h'])
  const metadata = parseMetadata(body.metadata)
  const outputExpiresAfterSeconds = parseOutputExpiresAfter(body.output_expires_after)

  // A missing input file is not a 400: OpenAI creates the batch and fails it while validating.
  const inputFile = ctx.files.get(inputFileId)
  if (inputFile && inputFile.purpose !== 'batch') {
    throw new ApiError(
      400,
      `The input file ${inputFileId} has purpose '${inputFile.purpose}'; batch input files must be uploaded with purpose 'batch'.`,
      'invalid_request_error',
      'input_file_id',
    )
  }

  const batch = ctx.runner.create({
    input_file_id: inputFileId,
    endpoint,
    completion_window: completionWindow,
    metadata,
    outputExpiresAfterSeconds,
  })
  sendJson(res, 200, batch)
}

/** OpenAI's `metadata` checks: at most 16 string pairs, keys up to 64 and values up to 512 characters. */
export function parseMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null
  if (!isRecord(value)) throw invalidType('metadata', 'an object', value)
  const entries = Object.entries(value)
  if (entries.length > METADATA_MAX_KEYS) {
    throw new ApiError(
      400,
      `Invalid 'metadata': too many properties. Expected an object with at most ${METADATA_MAX_KEYS} properties, but got an object with ${entries.length} properties instead.`,
      'invalid_request_error',
      'metadata',
      'object_above_max_properties',
    )
  }
  for (const [key, entry] of entries) {
    if (key.length > METADATA_MAX_KEY_LENGTH) {
      throw new ApiError(
        400,
        `Invalid 'metadata': string too long. Expected a string with maximum length ${METADATA_MAX_KEY_LENGTH}, but got a string with length ${key.length} instead.`,
        'invalid_request_error',
        'metadata',
        'string_above_max_length',
      )
    }
    if (typeof entry !== 'string') throw invalidType(`metadata.${key}`, 'a string', entry)
    if (entry.length > METADATA_MAX_VALUE_LENGTH) {
      throw new ApiError(
        400,
        `Invalid 'metadata.${key}': string too long. Expected a string with maximum length ${METADATA_MAX_VALUE_LENGTH}, but got a string with length ${entry.length} instead.`,
        'invalid_request_error',
        `metadata.${key}`,
        'string_above_max_length',
      )
    }
  }
  return value as Record<string, string>
}

/** `output_expires_after` as seconds, or null; `{anchor: 'created_at', seconds}` with seconds in `range`. */
export function parseOutputExpiresAfter(
  value: unknown,
  range: { min: number; max: number } = { min: MIN_EXPIRY_SECONDS, max: MAX_EXPIRY_SECONDS },
): number | null {
  if (value === undefined || value === null) return null
  if (!isRecord(value)) throw invalidType('output_expires_after', 'an object', value)
  if (value.anchor === undefined) throw missingParameter('output_expires_after.anchor')
  if (value.seconds === undefined) throw missingParameter('output_expires_after.seconds')
  if (value.anchor !== 'created_at') {
    throw invalidValue('output_expires_after.anchor', String(value.anchor), ['created_at'])
  }
  const seconds = value.seconds
  if (typeof seconds !== 'number' || !Number.isInteger(seconds)) {
    throw invalidType('output_expires_after.seconds', 'an integer', seconds)
  }
  if (seconds < range.min || seconds > range.max) {
    throw integerOutOfRange('output_expires_after.seconds', seconds, range.min, range.max)
  }
  return seconds
}

/** `GET /batches`: newest first, cursor `after`, `limit` 1..100 (default 20). */
export async function listBatches(ctx: BatchesContext, query: URLSearchParams, res: ServerResponse): Promise<void> {
  const limit = integerQuery(query, 'limit', 20, 1, 100)
  await ctx.runner.settled()
  const batches = [...ctx.batches.values()].reverse()
  const page = paginate(batches, query.get('after') ?? undefined, limit)
  sendJson(res, 200, structuredClone(page))
}

/** `GET /batches/{id}`: in per-poll mode this is what advances the batch. */
export async function retrieveBatch(ctx: BatchesContext, id: string, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.runner.poll(id))
}

/** `POST /batches/{id}/cancel`. */
export async function cancelBatch(ctx: BatchesContext, id: string, res: ServerResponse): Promise<void> {
  sendJson(res, 200, await ctx.runner.cancel(id))
}
