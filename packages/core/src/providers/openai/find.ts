import { BATCH_TAG_METADATA_KEY, searchIncomplete, type TagSearchBounds, taggedFilename } from '../tag-search.js'
import { asObject, integer, type Json, malformed } from './objects.js'
import type { WireClient } from './wire.js'

/** The largest pages of OpenAI's lists (and Azure's, which follow them): `GET /files` 10,000, `GET /batches` 100. */
const MAX_PAGE_SIZE = { files: 10_000, batches: 100 } as const

/** Where {@link findTaggedFile} and {@link findTaggedBatch} look, and how far. */
export interface TagSearch {
  client: WireClient
  bounds: TagSearchBounds
  tag: string
  /** Unix seconds: the object was created at or after this. */
  since: number
  /** Turns a list item into OpenAI's spelling (Azure's need it). */
  normalise?(item: unknown): unknown
}

/** Pages `GET /files` newest first for the upload named by its tag (see {@link taggedFilename}). */
export function findTaggedFile(search: TagSearch): Promise<Json | undefined> {
  const filename = taggedFilename(search.tag)
  return findInList(search.client, {
    path: '/files',
    query: { order: 'desc' },
    maxPageSize: MAX_PAGE_SIZE.files,
    bounds: search.bounds,
    since: search.since,
    normalise: search.normalise,
    isTagged: (file) => file.filename === filename,
  })
}

/** Pages `GET /batches` (newest first) for the batch whose metadata carries the tag. */
export function findTaggedBatch(search: TagSearch): Promise<Json | undefined> {
  return findInList(search.client, {
    path: '/batches',
    query: {},
    maxPageSize: MAX_PAGE_SIZE.batches,
    bounds: search.bounds,
    since: search.since,
    normalise: search.normalise,
    isTagged: (batch) => isTaggedBatch(batch, search.tag),
  })
}

/** One search of an OpenAI-style list (`GET /files`, `GET /batches`) for an object batchkit tagged. */
interface ListSearch {
  path: '/files' | '/batches'
  /** Query parameters besides `limit` and `after`, such as `order=desc`. */
  query: Record<string, string>
  /** The most objects the list gives per page. */
  maxPageSize: number
  bounds: TagSearchBounds
  /** Unix seconds: objects created before this are not looked at, and the list is not read past them. */
  since: number
  /** The object as OpenAI spells it (`created_at` in unix seconds); Azure's may need converting. */
  normalise?(item: unknown): unknown
  /** Whether the object carries the tag looked for. */
  isTagged(item: Json): boolean
}

/**
 * The first object of the list that is tagged and was created at or after `since`, or undefined. The
 * list is read page by page (cursor `after`) and no further than a page whose last object is older than
 * `since`: lists come newest first, and even one in the opposite order has nothing newer past such a page.
 * Reaching `bounds.maxPages` before that is an `upstream_search_incomplete` error.
 */
async function findInList(client: WireClient, search: ListSearch): Promise<Json | undefined> {
  const limit = String(Math.min(search.bounds.pageSize, search.maxPageSize))
  let after: string | undefined
  for (let page = 0; page < search.bounds.maxPages; page++) {
    const query: Record<string, string> = { ...search.query, limit }
    if (after !== undefined) query.after = after
    const list = asObject(await client.list(search.path, query), client.provider)
    if (!Array.isArray(list.data)) throw malformed(client.provider)
    const items = list.data.map((item) => asObject(search.normalise ? search.normalise(item) : item, client.provider))
    const found = items.find((item) => isSince(item, search.since) && search.isTagged(item))
    if (found) return found
    const last = items.at(-1)
    if (!last || list.has_more !== true || !isSince(last, search.since)) return undefined
    if (typeof last.id !== 'string') throw malformed(client.provider)
    after = last.id
  }
  throw searchIncomplete(client.provider, search.path === '/files' ? 'file' : 'batch', search.bounds.maxPages)
}

/** Created at or after `since`; an object without a creation time is given the benefit of the doubt. */
function isSince(item: Json, since: number): boolean {
  const createdAt = integer(item.created_at)
  return createdAt === null || createdAt >= since
}

/** Whether an OpenAI-style Batch object carries `tag` in its metadata (see {@link BATCH_TAG_METADATA_KEY}). */
function isTaggedBatch(batch: Json, tag: string): boolean {
  const metadata = batch.metadata as Json | null | undefined
  return typeof metadata === 'object' && metadata !== null && metadata[BATCH_TAG_METADATA_KEY] === tag
}
