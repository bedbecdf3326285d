import { invalidType, invalidValue, missingParameter } from '../errors.js'
import { BATCH_ENDPOINTS, type BatchEndpoint, type ExpiresAfter } from '../types.js'

const ENDPOINTS: ReadonlySet<string> = new Set(BATCH_ENDPOINTS)

/** A batch request as a client sends it; every field is checked, whatever its declared type. */
export interface CreateBatchInput {
  inputFileId: string
  endpoint: BatchEndpoint | string
  completionWindow: '24h' | string
  metadata?: Record<string, string> | null
  outputExpiresAfter?: ExpiresAfter | null
}

/** A batch request that passed {@link validateCreateBatch}. */
export interface ValidBatchInput {
  inputFileId: string
  endpoint: BatchEndpoint
  completionWindow: '24h'
  metadata: Record<string, string> | null
  outputExpiresAfter: ExpiresAfter | null
}

/** Checks a batch request the way OpenAI does, throwing its 400s. */
export function validateCreateBatch(input: CreateBatchInput): ValidBatchInput {
  const { inputFileId, endpoint, completionWindow } = input as unknown as Record<string, unknown>
  if (inputFileId === undefined || inputFileId === null || inputFileId === '') throw missingParameter('input_file_id')
  if (typeof inputFileId !== 'string') throw invalidType('input_file_id', 'a string', inputFileId)
  if (endpoint === undefined || endpoint === null || endpoint === '') throw missingParameter('endpoint')
  if (typeof endpoint !== 'string' || !ENDPOINTS.has(endpoint)) {
    throw invalidValue(
      'endpoint',
      `Invalid value: '${String(endpoint)}'. Supported values are: ${BATCH_ENDPOINTS.map((e) => `'${e}'`).join(', ')}.`,
    )
  }
  if (completionWindow === undefined || completionWindow === null || completionWindow === '') {
    throw missingParameter('completion_window')
  }
  if (completionWindow !== '24h') {
    throw invalidValue(
      'completion_window',
      `Invalid value: '${String(completionWindow)}'. Supported values are: '24h'.`,
    )
  }
  return {
    inputFileId,
    endpoint: endpoint as BatchEndpoint,
    completionWindow: '24h',
    metadata: validateMetadata(input.metadata),
    outputExpiresAfter: validateExpiresAfter('output_expires_after', input.outputExpiresAfter),
  }
}

/** OpenAI's metadata rules: at most 16 pairs, string keys up to 64 characters, string values up to 512. */
export function validateMetadata(metadata: unknown): Record<string, string> | null {
  if (metadata === undefined || metadata === null) return null
  if (typeof metadata !== 'object' || Array.isArray(metadata)) throw invalidType('metadata', 'an object', metadata)
  const entries = Object.entries(metadata)
  if (entries.length > 16) {
    throw invalidValue('metadata', `Invalid 'metadata': at most 16 key-value pairs are allowed, got ${entries.length}.`)
  }
  for (const [key, value] of entries) {
    if (key.length > 64) {
      throw invalidValue('metadata', `Invalid 'metadata': key '${key.slice(0, 64)}…' is longer than 64 characters.`)
    }
    if (typeof value !== 'string') throw invalidType(`metadata.${key}`, 'a string', value)
    if (value.length > 512) {
      throw invalidValue(`metadata.${key}`, `Invalid 'metadata.${key}': the value is longer than 512 characters.`)
    }
  }
  return Object.fromEntries(entries) as Record<string, string>
}

/** `{anchor: 'created_at', seconds}` with seconds from one hour to 30 days, or null. */
export function validateExpiresAfter(param: string, value: unknown): ExpiresAfter | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidType(param, 'an object', value)
  const { anchor, seconds } = value as Record<string, unknown>
  if (anchor !== 'created_at') {
    throw invalidValue(`${param}.anchor`, `Invalid value: '${String(anchor)}'. Supported values are: 'created_at'.`)
  }
  const n = typeof seconds === 'string' && /^\d+$/.test(seconds) ? Number(seconds) : seconds
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 3600 || n > 2_592_000) {
    throw invalidValue(`${param}.seconds`, `Invalid '${param}.seconds': it must be an integer from 3600 to 2592000.`)
  }
  return { anchor, seconds: n }
}
