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

/** The ids of the parts that `id` ({@link joinPartIds}) stands for; an id of one part is that part's. */
export function partIdsOf(id: string): string[] {
  return id.startsWith(PARTS_PREFIX) ? (JSON.parse(id.slice(PARTS_PREFIX.length)) as string[]) : [id]
}

/** The tag of part `index` of the object tagged `tag`: the first part carries the object's own tag. */
export function partTag(tag: string, index: number): string {
  return index === 0 ? tag : `${tag}_p${index}`
}
