import type { BatchRecord, FileEstimate, FileRecord, Page } from '../types.js'

/** The response header that carries a batch input file's estimate, beside OpenAI's unchanged objects. */
export const ESTIMATE_HEADER = 'batchkit-estimate'

/**
 * The `batchkit-estimate` header's value: the estimate as one line of JSON with OpenAI's snake_case
 * names, every character outside printable ASCII escaped (`\uXXXX`) so any model name fits a header.
 */
export function estimateHeaderValue(estimate: FileEstimate): string {
  const wire = {
    model: estimate.model,
    requests: estimate.requests,
    input_tokens: estimate.inputTokens,
    max_output_tokens: estimate.maxOutputTokens,
    min_cost_usd: estimate.minCost,
    max_cost_usd: estimate.maxCost,
    tokenizer: estimate.tokenizer,
    sampled_share: estimate.sampledShare,
  }
  return JSON.stringify(wire).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A File object exactly as OpenAI returns it. */
export function toFileObject(file: FileRecord) {
  return {
    id: file.id,
    object: 'file' as const,
    bytes: file.bytes,
    created_at: file.createdAt,
    expires_at: file.expiresAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed' as const,
    status_details: null,
  }
}

/** A Batch object exactly as OpenAI returns it: every field present, `null` where not set. */
export function toBatchObject(batch: BatchRecord) {
  return {
    id: batch.id,
    object: 'batch' as const,
    endpoint: batch.endpoint,
    model: batch.model,
    errors: batch.errors ? { object: 'list' as const, data: batch.errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: batch.createdAt,
    in_progress_at: batch.inProgressAt,
    expires_at: batch.expiresAt,
    finalizing_at: batch.finalizingAt,
    completed_at: batch.completedAt,
    failed_at: batch.failedAt,
    expired_at: batch.expiredAt,
    cancelling_at: batch.cancellingAt,
    cancelled_at: batch.cancelledAt,
    request_counts: batch.requestCounts,
    usage: usageObject(batch),
    metadata: batch.metadata,
  }
}

/**
 * The Batch `usage`: batchkit's own sums from the output files once the batch is billed (every
 * provider, Vertex included), else what the provider reports, else null.
 */
function usageObject(batch: BatchRecord) {
  const usage = batch.billing
    ? {
        inputTokens: batch.billing.totals.inputTokens,
        cachedTokens: batch.billing.totals.cachedTokens,
        outputTokens: batch.billing.totals.outputTokens,
        reasoningTokens: batch.billing.totals.reasoningTokens,
        totalTokens: batch.billing.totals.totalTokens,
      }
    : batch.usage
  if (!usage) return null
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens },
    total_tokens: usage.totalTokens,
  }
}

/** A list page in OpenAI's shape, with an honest `has_more`. */
export function toListObject<T extends { id: string }, W>(page: Page<T>, toObject: (item: T) => W) {
  return {
    object: 'list' as const,
    data: page.data.map(toObject),
    first_id: page.data[0]?.id ?? null,
    last_id: page.data[page.data.length - 1]?.id ?? null,
    has_more: page.hasMore,
  }
}
