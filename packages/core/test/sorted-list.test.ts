import { describe, expect, it } from 'vitest'
import { rangeOfSorted } from '../src/store/ordered-index.js'
import { SortedList } from '../src/store/sorted-list.js'

/**
 * The in-memory index's list, kept in chunks, must answer exactly as one sorted array would: the
 * chunks (of 4 here, so they split and empty out often) are never seen from outside.
 */

/** A deterministic stream of numbers in [0, 1), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
    return state / 2_147_483_648
  }
}

const key = (n: number) => `k${String(n).padStart(4, '0')}`

describe('a chunked sorted list', () => {
  it('answers every page as one sorted array would, through thousands of adds and removes', () => {
    const next = random(7)
    const list = new SortedList(4)
    const model: string[] = []
    for (let step = 0; step < 4000; step++) {
      const k = key(Math.floor(next() * 300))
      const at = model.indexOf(k)
      if (next() < 0.55) {
        expect(list.add(k)).toBe(at < 0)
        if (at < 0) model.splice(model.findIndex((m) => m > k) >>> 0, 0, k)
      } else {
        expect(list.remove(k)).toBe(at >= 0)
        if (at >= 0) model.splice(at, 1)
      }
      model.sort()
      if (step % 25 !== 0) continue
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [1, 3, 9, 400]) {
          const cursors = [undefined, key(Math.floor(next() * 310)), model[Math.floor(next() * model.length)]]
          for (const after of cursors) {
            const options = after === undefined ? { limit, order } : { after, limit, order }
            expect(list.range(options)).toEqual(rangeOfSorted(model, options))
          }
        }
      }
    }
    expect(list.range({ limit: 1000, order: 'asc' })).toEqual(model)
  })

  it('adds past the last key, removes the first, and empties out', () => {
    const list = new SortedList(2)
    for (let n = 0; n < 20; n++) expect(list.add(key(n))).toBe(true)
    expect(list.add(key(5))).toBe(false)
    expect(list.range({ limit: 2, order: 'asc' })).toEqual([key(0), key(1), key(2)])
    expect(list.range({ limit: 2, order: 'desc' })).toEqual([key(19), key(18), key(17)])
    for (let n = 0; n < 20; n++) expect(list.remove(key(n))).toBe(true)
    expect(list.remove(key(0))).toBe(false)
    expect(list.range({ limit: 5, order: 'asc' })).toEqual([])
    expect(list.range({ after: key(3), limit: 5, order: 'desc' })).toEqual([])
    expect(list.add(key(3))).toBe(true)
    expect(list.range({ after: key(9), limit: 5, order: 'desc' })).toEqual([key(3)])
    expect(list.range({ after: key(1), limit: 5, order: 'asc' })).toEqual([key(3)])
  })
})
