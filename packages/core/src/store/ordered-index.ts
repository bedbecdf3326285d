/**
 * Ordered lists of ids (one per owner and kind), the part of storage that plain key-value get/set
 * cannot make safe across several server instances. Each entry has a sort key
 * (`<created-at ms, zero-padded>:<id>`) so that newest-first order and `after` cursors need no
 * record reads. Adding an entry twice keeps one.
 */
export interface OrderedIndex {
  add(list: string, sortKey: string): Promise<void>
  remove(list: string, sortKey: string): Promise<void>
  /** Up to `limit + 1` sort keys past `after` (exclusive), in `order`. */
  range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]>
  /** Whether several server instances may share this index safely. */
  readonly shared: boolean
}

/** The sort key of an item: creation time first, so string order is time order. */
export function sortKey(createdAtMs: number, id: string): string {
  return `${String(createdAtMs).padStart(15, '0')}:${id}`
}

/** The id inside a sort key. */
export function idOfSortKey(key: string): string {
  return key.slice(key.indexOf(':') + 1)
}

/** Binary search: the index of the first element greater than `key` (or `>=` when `inclusive`). */
export function upperBound(sorted: readonly string[], key: string, inclusive = false): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const v = sorted[mid] as string
    if (v < key || (!inclusive && v === key)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Picks a page out of one sorted array; shared by the in-process indexes. */
export function rangeOfSorted(
  sorted: readonly string[],
  options: { after?: string; limit: number; order: 'asc' | 'desc' },
): string[] {
  const { after, limit, order } = options
  if (order === 'asc') {
    const start = after === undefined ? 0 : upperBound(sorted, after)
    return sorted.slice(start, start + limit + 1)
  }
  const end = after === undefined ? sorted.length : upperBound(sorted, after, true)
  return sorted.slice(Math.max(0, end - limit - 1), end).reverse()
}

/** Inserts `key` into a sorted array unless it is there; returns whether it changed. */
export function insertSorted(sorted: string[], key: string): boolean {
  const at = upperBound(sorted, key, true)
  if (sorted[at] === key) return false
  sorted.splice(at, 0, key)
  return true
}

/** Removes `key` from a sorted array; returns whether it changed. */
export function removeSorted(sorted: string[], key: string): boolean {
  const at = upperBound(sorted, key, true)
  if (sorted[at] !== key) return false
  sorted.splice(at, 1)
  return true
}
