import { insertSorted, removeSorted, upperBound } from './ordered-index.js'

/** How many keys a chunk holds before it splits in two. */
const DEFAULT_CHUNK = 512

/**
 * A sorted set of strings kept as a list of sorted chunks, so that an insert or a removal anywhere
 * moves at most one chunk's keys rather than the whole list: the tracker's queue takes its due
 * entries off the front, where one flat array would move every open batch's key each time.
 */
export class SortedList {
  private readonly chunks: string[][] = []

  constructor(private readonly chunkSize = DEFAULT_CHUNK) {}

  /** Adds `key` unless it is there; returns whether it changed. */
  add(key: string): boolean {
    const at = Math.min(this.chunkHolding(key), this.chunks.length - 1)
    const chunk = this.chunks[at]
    if (!chunk) {
      this.chunks.push([key])
      return true
    }
    if (!insertSorted(chunk, key)) return false
    if (chunk.length > 2 * this.chunkSize) this.chunks.splice(at + 1, 0, chunk.splice(this.chunkSize))
    return true
  }

  /** Removes `key`; returns whether it changed. */
  remove(key: string): boolean {
    const at = this.chunkHolding(key)
    const chunk = this.chunks[at]
    if (!chunk || !removeSorted(chunk, key)) return false
    if (chunk.length === 0) this.chunks.splice(at, 1)
    return true
  }

  /** Up to `limit + 1` keys past `after` (exclusive), in `order`. */
  range(options: { after?: string; limit: number; order: 'asc' | 'desc' }): string[] {
    const { after, limit, order } = options
    const out: string[] = []
    if (this.chunks.length === 0) return out
    if (order === 'asc') {
      let at = 0
      let from = 0
      if (after !== undefined) {
        at = this.chunkHolding(after)
        const chunk = this.chunks[at]
        // Every key is at or before `after`.
        if (!chunk) return out
        from = upperBound(chunk, after)
      }
      for (; at < this.chunks.length && out.length <= limit; at++, from = 0) {
        out.push(...(this.chunks[at] as string[]).slice(from, from + limit + 1 - out.length))
      }
      return out
    }
    let at = this.chunks.length - 1
    let end = (this.chunks[at] as string[]).length
    if (after !== undefined) {
      at = Math.min(this.chunkHolding(after), at)
      end = upperBound(this.chunks[at] as string[], after, true)
    }
    for (; at >= 0 && out.length <= limit; at--) {
      const chunk = this.chunks[at] as string[]
      for (let i = Math.min(end, chunk.length) - 1; i >= 0 && out.length <= limit; i--) out.push(chunk[i] as string)
      end = Number.POSITIVE_INFINITY
    }
    return out
  }

  /** The first chunk whose last key is at or past `key`; the number of chunks when there is none. */
  private chunkHolding(key: string): number {
    let lo = 0
    let hi = this.chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.chunks[mid] as string[]
      if ((chunk[chunk.length - 1] as string) < key) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
