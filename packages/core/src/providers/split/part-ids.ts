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

/** Whether `id` is joined from parts (or records a part's later submissions), not a provider's own id. */
export function isJoinedId(id: string): boolean {
  return id.startsWith(PARTS_PREFIX)
}

/** The ids of the parts that `id` ({@link joinPartIds}) stands for; an id of one part is that part's. */
export function partIdsOf(id: string): string[] {
  return batchPartsOf(id).map((part) => part.id)
}

/** The tag of part `index` of the object tagged `tag`: the first part carries the object's own tag. */
export function partTag(tag: string, index: number): string {
  return index === 0 ? tag : `${tag}_p${index}`
}

/**
 * One part of a batch: the provider batch that runs it now, and how often the part was submitted again
 * after the provider turned it down because its queue was full (`attempt` 0: never). `stopped` says
 * the part is not to be submitted again, and why: the batch was cancelled (at `stoppedAt`, unix
 * seconds) or the provider refused to take it again.
 */
export interface BatchPart {
  id: string
  attempt: number
  stopped?: { reason: 'cancelled' | 'refused'; at: number }
}

/** A part in a joined batch id: its id alone while it was never submitted again nor stopped. */
type PartEntry = string | [id: string, attempt: number] | [id: string, attempt: number, stop: string, at: number]

/**
 * The provider id of a batch run in {@link BatchPart}s: as {@link joinPartIds} while every part is on its
 * first submission, so a batch that never waited for a queue keeps the id it would have had anyway.
 */
export function joinBatchParts(parts: readonly BatchPart[]): string {
  if (parts.every((part) => part.attempt === 0 && !part.stopped)) return joinPartIds(parts.map((part) => part.id))
  const entries: PartEntry[] = parts.map((part) => {
    if (part.stopped) return [part.id, part.attempt, part.stopped.reason, part.stopped.at]
    return part.attempt === 0 ? part.id : [part.id, part.attempt]
  })
  return PARTS_PREFIX + JSON.stringify(entries)
}

/** The parts of a batch whose provider id is `id` ({@link joinBatchParts}). */
export function batchPartsOf(id: string): BatchPart[] {
  if (!id.startsWith(PARTS_PREFIX)) return [{ id, attempt: 0 }]
  return (JSON.parse(id.slice(PARTS_PREFIX.length)) as PartEntry[]).map((entry) => {
    if (typeof entry === 'string') return { id: entry, attempt: 0 }
    const [part, attempt, reason, at] = entry
    if (reason === undefined) return { id: part, attempt }
    return { id: part, attempt, stopped: { reason: reason as 'cancelled' | 'refused', at: at as number } }
  })
}
