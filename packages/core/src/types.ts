/** Who is calling: every record carries its owner, and callers only ever see their own records. */
export interface Principal {
  /** A stable id for the owner of everything this caller creates (a user, a team, a tenant). */
  owner: string
}

/** Purposes a client may upload a file with. */
export const UPLOAD_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'] as const
/** A purpose a client may upload a file with. */
export type UploadPurpose = (typeof UPLOAD_PURPOSES)[number]
/** A file's purpose: an upload purpose, or `batch_output` for files a batch produced. */
export type FilePurpose = UploadPurpose | 'batch_output'

/** The endpoints a batch may target, as OpenAI lists them. */
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
/** An endpoint a batch may target. */
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number]

/** A batch's status, exactly OpenAI's set. */
export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled'

/** Statuses a batch never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<BatchStatus> = new Set(['failed', 'completed', 'expired', 'cancelled'])

/** `expires_after` of an upload, or `output_expires_after` of a batch. */
export interface ExpiresAfter {
  anchor: 'created_at'
  seconds: number
}

/** What batchkit learned about a batch input file while it streamed in. */
export interface BatchInputSummary {
  /** The `url` every line targets. */
  url: string
  /** The `body.model` every line names. */
  model: string
  /** How many request lines the file holds. */
  requests: number
}

/**
 * What a batch input file is expected to cost, worked out while it streamed in: its input tokens,
 * the most output tokens its requests allow, and the cost range at batch prices.
 */
export interface FileEstimate {
  /** The model the requests name. */
  model: string
  /** How many requests the file holds. */
  requests: number
  /** The input tokens of every request, counted as the provider bills chat input (see docs/budgets-and-estimates.md). */
  inputTokens: number
  /** How the tokens were counted: OpenAI's encodings, or about four characters a token for Gemini. */
  tokenizer: 'o200k_base' | 'cl100k_base' | 'chars/4'
  /** The share of the text (0 to 1) counted at the file's sampled tokens-per-character ratio rather than tokenized. */
  sampledShare: number
  /** The most output tokens the requests may produce: their own limits, else the model's maximum. */
  maxOutputTokens: number
  /** USD at batch prices if every input token were a cache hit and nothing were output; null when the model has no price. */
  minCost: number | null
  /** USD at batch prices with no cache hit and every request producing its most output; null when the model has no price. */
  maxCost: number | null
}

/** A file as batchkit stores it. Timestamps are unix seconds. */
export interface FileRecord {
  id: string
  owner: string
  /** The provider instance that holds the bytes. */
  provider: string
  /** The provider's own id; never shown to clients. */
  providerFileId: string
  bytes: number
  createdAt: number
  /** Milliseconds since the epoch, for a stable newest-first order. */
  createdAtMs: number
  expiresAt: number | null
  filename: string
  purpose: FilePurpose
  /** Set for `purpose: batch` uploads. */
  batchInput: BatchInputSummary | null
  /** Set for `purpose: batch` uploads to an endpoint that bills tokens, when estimating is on. */
  estimate?: FileEstimate | null
  /** Set for output and error files: the batch that produced them. */
  batchId: string | null
  /**
   * Set when the provider knows the file's model by another name: the lines were renamed on the way
   * up and are renamed back on reads (`exact`: byte for byte).
   */
  modelRewrite?: { model: string; providerModel: string; exact: boolean } | null
}

/** One entry of a batch's `errors.data`. */
export interface BatchErrorEntry {
  code: string | null
  message: string | null
  param: string | null
  line: number | null
}

/** Token usage of a batch, in OpenAI's Batch `usage` shape. */
export interface BatchUsage {
  inputTokens: number
  cachedTokens: number
  outputTokens: number
  reasoningTokens: number
  totalTokens: number
}

/** Request counts of a batch. */
export interface RequestCounts {
  total: number
  completed: number
  failed: number
}

/** What a provider reports about a batch: everything that changes as it runs. Timestamps are unix seconds. */
export interface BatchProgress {
  status: BatchStatus
  inProgressAt: number | null
  expiresAt: number | null
  finalizingAt: number | null
  completedAt: number | null
  failedAt: number | null
  expiredAt: number | null
  cancellingAt: number | null
  cancelledAt: number | null
  requestCounts: RequestCounts
  errors: BatchErrorEntry[] | null
  usage: BatchUsage | null
}

/** Token counts and cost of one model's requests in a batch. */
export interface ModelUsage {
  requests: { succeeded: number; failed: number }
  inputTokens: number
  cachedTokens: number
  outputTokens: number
  reasoningTokens: number
  totalTokens: number
  /** In USD at batch prices; null when the model has no price. */
  cost: number | null
}

/** What a finished batch used and cost, summed from its output and error files, once. */
export interface BatchBilling {
  byModel: Record<string, ModelUsage>
  totals: ModelUsage
  /** Models with no price: their requests make `totals.cost` null. */
  unpricedModels: string[]
  /** Unix seconds. */
  computedAt: number
}

/** What a batch holds of its owner's spending budget until it is billed (see docs/budgets-and-estimates.md). */
export interface BudgetHold {
  /** The month (`YYYY-MM`, UTC) the batch was created in, whose budget it counts against. */
  period: string
  /** The estimate's upper bound, in whole micro-dollars. */
  micros: number
}

/** A batch as batchkit stores it. */
export interface BatchRecord extends BatchProgress {
  id: string
  owner: string
  provider: string
  /** The provider's own id; never shown to clients. */
  providerBatchId: string
  /** The provider's id of the input file, to keep it out of provider error messages. */
  providerInputFileId: string
  endpoint: BatchEndpoint
  model: string
  inputFileId: string
  completionWindow: '24h'
  metadata: Record<string, string> | null
  createdAt: number
  createdAtMs: number
  /** Our ids for the output and error files, once the provider has them. */
  outputFileId: string | null
  errorFileId: string | null
  /** The provider's ids of the output and error files: billing reads these, never the tenant's file records. */
  providerOutputFileId?: string | null
  providerErrorFileId?: string | null
  /** When batchkit last asked the provider about this batch (ms), for the reads' freshness window. */
  refreshedAtMs?: number
  /** What the client asked for its output files' expiry, to ask again when a part is submitted again. */
  outputExpiresAfter?: ExpiresAfter | null
  /**
   * When a part the provider turned down for a full queue is next due to be submitted again (ms), for
   * the tracker; null when none waits.
   */
  nextSubmitAtMs?: number | null
  /** Usage and cost once the batch has ended and been billed; kept in a record of its own, attached on reads. */
  billing?: BatchBilling | null
  /** The input file's estimate when the batch was created. */
  estimate?: FileEstimate | null
  /** Its hold on the owner's budget, when budgets are on: settled to the cost once billed. */
  budget?: BudgetHold | null
}

/** A page of a list, newest first unless asked otherwise. */
export interface Page<T> {
  data: T[]
  hasMore: boolean
}

/** Options for listing. */
export interface ListOptions {
  /** Return the items after this id. */
  after?: string
  /** How many items at most. */
  limit?: number
}

/** What batchkit knows of a batch before its provider has it: written down in the batch's intent. */
export type BatchDraft = Pick<
  BatchRecord,
  | 'id'
  | 'owner'
  | 'provider'
  | 'providerInputFileId'
  | 'endpoint'
  | 'model'
  | 'inputFileId'
  | 'completionWindow'
  | 'metadata'
  | 'createdAt'
  | 'createdAtMs'
  | 'estimate'
  | 'budget'
  | 'outputExpiresAfter'
> & {
  /** The input file's request count, for the `acreate_batch` event. */
  requestCount: number
}
