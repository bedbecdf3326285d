import type { FakeBatch, FakeFile } from '../fake-openai/types.js'
import type { AzureFileStatus, AzureObjectStyle } from './types.js'

const BATCH_TIMESTAMPS = [
  'created_at',
  'in_progress_at',
  'expires_at',
  'finalizing_at',
  'completed_at',
  'failed_at',
  'expired_at',
  'cancelling_at',
  'cancelled_at',
] as const

/** Azure's File object: OpenAI's fields with Azure's processing `status` (and `status_details` on error). */
export function toAzureFile(file: FakeFile, status: AzureFileStatus, style: AzureObjectStyle): Record<string, unknown> {
  return {
    id: file.id,
    bytes: file.bytes,
    created_at: timestamp(file.created_at, style),
    filename: file.filename,
    object: 'file',
    purpose: file.purpose,
    status,
    status_details:
      status === 'error' ? 'The file could not be imported: processing failed (injected by the fake).' : null,
    expires_at: timestamp(file.expires_at, style),
  }
}

/**
 * Azure's Batch object: in the `'current'` style exactly OpenAI's; in `'legacy'` as older Azure examples
 * and the GA (`2024-10-21`) spec write it, `errors.data` one object (the first error) with `line` a string.
 */
export function toAzureBatch(batch: FakeBatch, style: AzureObjectStyle): Record<string, unknown> {
  if (style === 'current') return { ...batch }
  const legacy: Record<string, unknown> = { ...batch, endpoint: null, status: pascalCase(batch.status) }
  for (const field of BATCH_TIMESTAMPS) legacy[field] = timestamp(batch[field], style)
  if (batch.status === 'validating') legacy.request_counts = { total: null, completed: null, failed: null }
  const first = batch.errors?.data[0]
  if (first) {
    legacy.errors = { object: 'list', data: { ...first, line: first.line === null ? null : String(first.line) } }
  }
  return legacy
}

/** `in_progress` → `InProgress`. */
export function pascalCase(status: string): string {
  return status
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('')
}

/** Unix seconds, or in the legacy style an ISO-8601 string with .NET's seven fractional digits. */
function timestamp(seconds: number | null, style: AzureObjectStyle): number | string | null {
  if (seconds === null || style === 'current') return seconds
  return new Date(seconds * 1000).toISOString().replace(/Z$/, () => '0000Z')
}
