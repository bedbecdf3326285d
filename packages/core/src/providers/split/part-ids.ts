/** What starts the provider id of an object batchkit keeps upstream in several parts. */
const PARTS_PREFIX = 'batchkit-parts:'

/**
 * The provider id of an object kept upstream in parts (a batch input file cut at provider limits, the
 * batches run on its parts, their output files): the parts' own ids in order. One part's id is its own,
 * so an object in one part has the id it would have had anyway.
 */
export function joinPartIds(ids: readonly string[]): string {
  if (ids.length === 0) throw new TypeError('an object has at least one part')
  return ids.length === 1 ? (ids[0] as string) : PARTS_PREFIX + JSON.stringify(ids)
}

/** Whether `id` is made by batchkit from parts (see below), not a provider's own id. */
export function isJoinedId(id: string): boolean {
  return id.startsWith(PARTS_PREFIX) || id.startsWith(FILTERED_PREFIX)
}

/** The ids of the parts that `id` ({@link joinPartIds}, {@link joinFilteredParts}) stands for; an id of one part is that part's. */
export function partIdsOf(id: string): string[] {
  if (id.startsWith(FILTERED_PREFIX)) return filteredPartsOf(id).map((part) => part.id)
  return batchPartsOf(id).parts.map((part) => part.id)
}

/** The tag of part `index` of the object tagged `tag`: the first part carries the object's own tag. */
export function partTag(tag: string, index: number): string {
  return index === 0 ? tag : `${tag}_p${index}`
}

/**
 * One provider batch of a batch: the batch that runs it now, and how often the part was submitted again
 * after the provider turned it down because its queue was full (`attempt` 0: never). `stopped` says
 * the part is not to be submitted again, and why: the batch was cancelled (at `stoppedAt`, unix
 * seconds) or the provider refused to take it again. `retry` marks a part of a follow-up round (from 1)
 * that runs failed requests again, on the provider's input file `input` (see `request-retries.ts`).
 */
export interface BatchPart {
  id: string
  attempt: number
  stopped?: { reason: 'cancelled' | 'refused'; at: number }
  retry?: { round: number; input: string }
}

/** A batch's provider batches, and whether its follow-up rounds are over (none will be made). */
export interface BatchParts {
  parts: BatchPart[]
  retriesDone: boolean
}

/** A part in a joined batch id: its id alone while it was never submitted again nor stopped. */
type PartEntry =
  | string
  | [id: string, attempt: number]
  | [id: string, attempt: number, stop: string, at: number]
  | { id: string; a: number; s?: string; at?: number; r: number; in: string }

/**
 * The provider id of a batch run in {@link BatchPart}s: as {@link joinPartIds} while every part is on its
 * first submission, so a batch that never waited for a queue keeps the id it would have had anyway.
 */
export function joinBatchParts(parts: readonly BatchPart[], retriesDone = false): string {
  const plain = parts.every((part) => part.attempt === 0 && !part.stopped && !part.retry)
  if (plain && !retriesDone) return joinPartIds(parts.map((part) => part.id))
  const entries: PartEntry[] = parts.map((part) => {
    if (part.retry) {
      const stop = part.stopped ? { s: part.stopped.reason, at: part.stopped.at } : {}
      return { id: part.id, a: part.attempt, ...stop, r: part.retry.round, in: part.retry.input }
    }
    if (part.stopped) return [part.id, part.attempt, part.stopped.reason, part.stopped.at]
    return part.attempt === 0 ? part.id : [part.id, part.attempt]
  })
  return PARTS_PREFIX + JSON.stringify(retriesDone ? { parts: entries, done: true } : entries)
}

/** The parts of a batch whose provider id is `id` ({@link joinBatchParts}). */
export function batchPartsOf(id: string): BatchParts {
  if (!id.startsWith(PARTS_PREFIX)) return { parts: [{ id, attempt: 0 }], retriesDone: false }
  const parsed = JSON.parse(id.slice(PARTS_PREFIX.length)) as PartEntry[] | { parts: PartEntry[]; done?: boolean }
  const entries = Array.isArray(parsed) ? parsed : parsed.parts
  return { parts: entries.map(partOf), retriesDone: !Array.isArray(parsed) && parsed.done === true }
}

function partOf(entry: PartEntry): BatchPart {
  if (typeof entry === 'string') return { id: entry, attempt: 0 }
  if (Array.isArray(entry)) {
    const [id, attempt, reason, at] = entry
    if (reason === undefined) return { id, attempt }
    return { id, attempt, stopped: { reason: reason as 'cancelled' | 'refused', at: at as number } }
  }
  const part: BatchPart = { id: entry.id, attempt: entry.a, retry: { round: entry.r, input: entry.in } }
  if (entry.s !== undefined) part.stopped = { reason: entry.s as 'cancelled' | 'refused', at: entry.at as number }
  return part
}

/** What starts the provider id of a file read from parts with some of their lines left out. */
const FILTERED_PREFIX = 'batchkit-filtered:'

/**
 * A part of a file read with some lines left out: those whose `custom_id` is named in one of the
 * provider's files `skip` (an error file's requests that a follow-up round ran again).
 */
export interface FilteredPart {
  id: string
  skip: string[]
}

/** The provider id of a file made of `parts`: as {@link joinPartIds} when no part leaves anything out. */
export function joinFilteredParts(parts: readonly FilteredPart[]): string {
  if (parts.every((part) => part.skip.length === 0)) return joinPartIds(parts.map((part) => part.id))
  return (
    FILTERED_PREFIX + JSON.stringify(parts.map((part) => (part.skip.length === 0 ? part.id : [part.id, part.skip])))
  )
}

/** The parts of the file whose provider id is `id` ({@link joinFilteredParts}). */
export function filteredPartsOf(id: string): FilteredPart[] {
  if (!id.startsWith(FILTERED_PREFIX)) return partIdsOf(id).map((part) => ({ id: part, skip: [] }))
  const entries = JSON.parse(id.slice(FILTERED_PREFIX.length)) as (string | [string, string[]])[]
  return entries.map((entry) =>
    typeof entry === 'string' ? { id: entry, skip: [] } : { id: entry[0], skip: entry[1] },
  )
}
