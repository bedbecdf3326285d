/** Size and count limits applied to uploads while they stream. */
export interface UploadLimits {
  /** Largest `purpose: batch` file, in bytes. @default 200 MB (OpenAI's limit) */
  maxBatchFileBytes: number
  /** Largest file of any other purpose, in bytes. @default 512 MB (OpenAI's limit) */
  maxFileBytes: number
  /** Most requests in one batch input file. @default 50,000 (OpenAI's limit) */
  maxBatchRequests: number
  /** Longest line of a batch input file, in bytes; bounds the memory one line may take. @default 16 MiB */
  maxLineBytes: number
}

/** OpenAI's limits, batchkit's defaults. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = {
  maxBatchFileBytes: 200 * 1000 * 1000,
  maxFileBytes: 512 * 1000 * 1000,
  maxBatchRequests: 50_000,
  maxLineBytes: 16 * 1024 * 1024,
}
