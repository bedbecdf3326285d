import { invalidValue, missingParameter } from '../errors.js'
import { UPLOAD_PURPOSES, type UploadPurpose } from '../types.js'

/**
 * Every purpose OpenAI gives files, which a files list may filter by. batchkit stores only upload
 * purposes and `batch_output`; a list filtered by another (`assistants_output`, `fine-tune-results`)
 * is empty, as it would be on an OpenAI account without such files.
 */
export const LIST_PURPOSES = [...UPLOAD_PURPOSES, 'batch_output', 'assistants_output', 'fine-tune-results'] as const

/** A purpose a files list may filter by. */
export type ListPurpose = (typeof LIST_PURPOSES)[number]

/** The upload's `purpose`, or OpenAI's 400 for a missing or unknown one. */
export function uploadPurposeOf(value: unknown): UploadPurpose {
  if (value === undefined || value === null || value === '') throw missingParameter('purpose')
  return oneOf(value, UPLOAD_PURPOSES)
}

/** A files list's `purpose` filter (`undefined`: no filter), or a 400 for an unknown one. */
export function listPurposeOf(value: unknown): ListPurpose | undefined {
  return value === undefined ? undefined : oneOf(value, LIST_PURPOSES)
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw invalidValue(
    'purpose',
    `Invalid value for 'purpose': '${String(value)}'. Supported values are: ${allowed.map((p) => `'${p}'`).join(', ')}.`,
  )
}
