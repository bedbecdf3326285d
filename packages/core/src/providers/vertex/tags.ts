import { createHash } from 'node:crypto'

/** The job label that carries batchkit's batch id (the create's tag). */
export const BATCH_LABEL_KEY = 'batchkit_batch'

/** What a GCP label value may be: up to 63 lowercase letters, digits, `_` and `-`. */
const LABEL_VALUE = /^[a-z0-9_-]{1,63}$/

/**
 * The label value of a batch tag: the tag itself when it is a valid label value (batchkit's
 * `batch_<32 hex>` is), otherwise `h-` and 40 hex digits of its SHA-256, which is one.
 */
export function batchLabelValue(tag: string): string {
  if (LABEL_VALUE.test(tag)) return tag
  return `h-${createHash('sha256').update(tag, 'utf8').digest('hex').slice(0, 40)}`
}

/** The `batchPredictionJobs.list` filter for the jobs tagged `tag`. */
export function batchLabelFilter(tag: string): string {
  return `labels.${BATCH_LABEL_KEY}="${batchLabelValue(tag)}"`
}
