import { Keyv } from 'keyv'
import { describe, expect, it } from 'vitest'
import { StoreGuard } from '../src/store/guard.js'
import { MemoryIndex } from '../src/store/memory-index.js'
import type { OrderedIndex } from '../src/store/ordered-index.js'
import { RecordStore } from '../src/store/records.js'

/**
 * The list of billed batches that spend reports read: the ids billed in a time range (from inclusive,
 * to exclusive), oldest first, in pages of at most the size asked for, read no further than the range.
 */

const T0 = Date.UTC(2026, 11, 1)

/** A store with batches billed at the given times, and a count of the index reads it makes. */
async function billedAt(times: Array<[string, number]>) {
  const memory = new MemoryIndex()
  const reads = { count: 0 }
  const counting: OrderedIndex = {
    shared: false,
    add: (list, key) => memory.add(list, key),
    remove: (list, key) => memory.remove(list, key),
    range: (list, options) => {
      reads.count++
      return memory.range(list, options)
    },
  }
  const store = new RecordStore(new Keyv(), counting, new StoreGuard(1000, () => undefined))
  for (const [id, at] of times) await store.listBilled({ id, owner: id.startsWith('bob') ? 'bob' : 'alice' }, at)
  return { store, reads }
}

async function pages(source: AsyncGenerator<string[]>): Promise<string[][]> {
  const all: string[][] = []
  for await (const page of source) all.push(page)
  return all
}

describe('the billed list', () => {
  it('gives the batches billed from `from` (inclusive) to `to` (exclusive), oldest first', async () => {
    const { store } = await billedAt([
      ['before', T0 - 1],
      ['Early-at-from', T0],
      ['bob-1', T0 + 5],
      ['middle', T0 + 5],
      ['last', T0 + 9],
      ['at-to', T0 + 10],
    ])
    expect(await pages(store.billedBetween(undefined, T0, T0 + 10))).toEqual([
      ['Early-at-from', 'bob-1', 'middle', 'last'],
    ])
    expect(await pages(store.billedBetween('alice', T0, T0 + 10))).toEqual([['Early-at-from', 'middle', 'last']])
    expect(await pages(store.billedBetween('bob', T0, T0 + 10))).toEqual([['bob-1']])
    expect(await pages(store.billedBetween(undefined, 0, T0 + 1))).toEqual([['before', 'Early-at-from']])
    expect(await pages(store.billedBetween(undefined, T0 + 6, T0 + 9))).toEqual([])
  })

  it('pages at the size asked for, and reads the index no further than the range', async () => {
    const times: Array<[string, number]> = Array.from({ length: 7 }, (_, i) => [`b${i}`, T0 + i])
    const { store, reads } = await billedAt(times)
    expect(await pages(store.billedBetween(undefined, T0, T0 + 7, 3))).toEqual([
      ['b0', 'b1', 'b2'],
      ['b3', 'b4', 'b5'],
      ['b6'],
    ])
    expect(reads.count).toBe(3)

    reads.count = 0
    // Exactly two full pages: the second read finds no more and ends it.
    expect(await pages(store.billedBetween(undefined, T0 + 1, T0 + 7, 3))).toEqual([
      ['b1', 'b2', 'b3'],
      ['b4', 'b5', 'b6'],
    ])
    expect(reads.count).toBe(2)

    reads.count = 0
    // The range ends inside the first page: one read.
    expect(await pages(store.billedBetween(undefined, T0, T0 + 2, 3))).toEqual([['b0', 'b1']])
    expect(reads.count).toBe(1)

    // The range ends right after a full page.
    expect(await pages(store.billedBetween(undefined, T0, T0 + 3, 3))).toEqual([['b0', 'b1', 'b2']])
  })
})
