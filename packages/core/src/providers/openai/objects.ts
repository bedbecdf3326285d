import { ApiError } from '../../errors.js'
import type { BatchErrorEntry, BatchStatus, BatchUsage } from '../../types.js'
import type { ProviderBatch, ProviderFile } from '../types.js'

/** A JSON object as a provider sent it. */
export type Json = Record<string, unknown>

const STATUSES: ReadonlySet<string> = new Set<BatchStatus>([
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
])

/** An OpenAI File object as a {@link ProviderFile}; `provider` names the service in errors. */
export function toProviderFile(value: unknown, provider: string): ProviderFile {
  const file = asObject(value, provider)
  if (typeof file.id !== 'string') throw malformed(provider)
  return {
    id: file.id,
    bytes: integer(file.bytes) ?? 0,
    createdAt: integer(file.created_at) ?? Math.floor(Date.now() / 1000),
    expiresAt: integer(file.expires_at),
    filename: typeof file.filename === 'string' ? file.filename : 'file',
  }
}

/** An OpenAI Batch object as a {@link ProviderBatch}; `provider` names the service in errors. */
export function toProviderBatch(value: unknown, provider: string): ProviderBatch {
  const batch = asObject(value, provider)
  if (typeof batch.id !== 'string' || typeof batch.status !== 'string' || !STATUSES.has(batch.status)) {
    throw malformed(provider)
  }
  const requestCounts: Json = batch.request_counts ? asObject(batch.request_counts, provider) : {}
  return {
    id: batch.id,
    status: batch.status as BatchStatus,
    inProgressAt: integer(batch.in_progress_at),
    expiresAt: integer(batch.expires_at),
    finalizingAt: integer(batch.finalizing_at),
    completedAt: integer(batch.completed_at),
    failedAt: integer(batch.failed_at),
    expiredAt: integer(batch.expired_at),
    cancellingAt: integer(batch.cancelling_at),
    cancelledAt: integer(batch.cancelled_at),
    requestCounts: {
      total: integer(requestCounts.total) ?? 0,
      completed: integer(requestCounts.completed) ?? 0,
      failed: integer(requestCounts.failed) ?? 0,
    },
    errors: toErrors(batch.errors, provider),
    usage: toUsage(batch.usage),
    outputFileId: typeof batch.output_file_id === 'string' ? batch.output_file_id : null,
    errorFileId: typeof batch.error_file_id === 'string' ? batch.error_file_id : null,
  }
}

function toErrors(value: unknown, provider: string): BatchErrorEntry[] | null {
  const data = (value as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) return null
  return data.map((entry) => {
    const e = asObject(entry, provider)
    return {
      code: typeof e.code === 'string' ? e.code : null,
      message: typeof e.message === 'string' ? e.message : null,
      param: typeof e.param === 'string' ? e.param : null,
      line: integer(e.line),
    }
  })
}

function toUsage(value: unknown): BatchUsage | null {
  if (typeof value !== 'object' || value === null) return null
  const usage = value as Json
  const input = integer(usage.input_tokens) ?? 0
  const output = integer(usage.output_tokens) ?? 0
  return {
    inputTokens: input,
    cachedTokens: integer((usage.input_tokens_details as Json | undefined)?.cached_tokens) ?? 0,
    outputTokens: output,
    reasoningTokens: integer((usage.output_tokens_details as Json | undefined)?.reasoning_tokens) ?? 0,
    totalTokens: integer(usage.total_tokens) ?? input + output,
  }
}

/** The value as a JSON object, or the provider's "not recognised" 502. */
export function asObject(value: unknown, provider: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(provider)
  return value as Json
}

/** An integer, or null; providers that send milliseconds or strings are not OpenAI, but tolerated. */
export function integer(value: unknown): number | null {
  const n = typeof value === 'string' && value !== '' ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) ? Math.trunc(n) : null
}

/** The 502 for an answer that is JSON but not the object asked for. */
export function malformed(provider: string): ApiError {
  return new ApiError(502, `The ${provider} provider answered with an object batchkit does not recognise.`, {
    code: 'upstream_error',
  })
}
