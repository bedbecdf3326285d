import { ApiError } from '../errors.js'

/** How far {@link Provider.findFile} and {@link Provider.findBatch} may look through an upstream list. */
export interface TagSearchOptions {
  /** Objects asked for per list page (capped at what the service allows per page). @default 100 */
  pageSize?: number
  /** The most list pages one search reads before it gives up as incomplete. @default 10 */
  maxPages?: number
}

/** {@link TagSearchOptions} with their defaults applied. */
export interface TagSearchBounds {
  pageSize: number
  maxPages: number
}

/** The bounds of {@link TagSearchOptions}, checked; `factory` names the provider function in errors. */
export function tagSearchBounds(options: TagSearchOptions | undefined, factory: string): TagSearchBounds {
  const bounds = { pageSize: options?.pageSize ?? 100, maxPages: options?.maxPages ?? 10 }
  for (const [name, value] of Object.entries(bounds)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`${factory}(): search.${name} must be a positive integer`)
    }
  }
  return bounds
}

/**
 * The error of a search that reached its page bound before objects older than `since`: the object may be
 * further on, so "not found" cannot be claimed.
 */
export function searchIncomplete(provider: string, what: 'file' | 'batch', pages: number): ApiError {
  return new ApiError(
    503,
    `The ${provider} provider's ${what} list was searched for ${pages} page${pages === 1 ? '' : 's'} without reaching the search's start time; the search is incomplete.`,
    { code: 'upstream_search_incomplete' },
  )
}

/** The key of the batch metadata entry that carries batchkit's batch id upstream (OpenAI, Azure). */
export const BATCH_TAG_METADATA_KEY = 'batchkit_id'

/** OpenAI's most metadata keys on a batch. */
const MAX_METADATA_KEYS = 16

/**
 * The metadata sent upstream with a batch: the client's first 15 keys, in order, then
 * {@link BATCH_TAG_METADATA_KEY} with the tag (a client key of that name gives way to it). The client's
 * metadata is kept by batchkit; the upstream copy is informational.
 */
export function taggedMetadata(metadata: Record<string, string> | null, tag: string): Record<string, string> {
  const kept = Object.entries(metadata ?? {})
    .filter(([key]) => key !== BATCH_TAG_METADATA_KEY)
    .slice(0, MAX_METADATA_KEYS - 1)
  return { ...Object.fromEntries(kept), [BATCH_TAG_METADATA_KEY]: tag }
}

/** The filename an upload is sent upstream under (OpenAI, Azure): the tag, so a file list can find it. */
export function taggedFilename(tag: string): string {
  return `${tag}.jsonl`
}
