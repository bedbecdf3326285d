import { describe, expect, it } from 'vitest'
import {
  type BatchPart,
  batchPartsOf,
  filteredPartsOf,
  isJoinedId,
  joinBatchParts,
  joinFilteredParts,
  joinPartIds,
  partIdsOf,
} from '../src/providers/split/part-ids.js'

describe('the provider ids of objects kept in parts', () => {
  it('keeps the provider’s own id for one part on its first submission, and joins several', () => {
    expect(joinPartIds(['batch_a'])).toBe('batch_a')
    expect(joinBatchParts([{ id: 'batch_a', attempt: 0 }])).toBe('batch_a')
    expect(isJoinedId('batch_a')).toBe(false)
    const joined = joinBatchParts([
      { id: 'batch_a', attempt: 0 },
      { id: 'batch_b', attempt: 0 },
    ])
    expect(joined).toBe(joinPartIds(['batch_a', 'batch_b']))
    expect(partIdsOf(joined)).toEqual(['batch_a', 'batch_b'])
    expect(batchPartsOf(joined)).toEqual({
      parts: [
        { id: 'batch_a', attempt: 0 },
        { id: 'batch_b', attempt: 0 },
      ],
      retriesDone: false,
    })
  })

  it('records each part’s later submissions, stops and follow-up rounds, and reads them back', () => {
    const parts: BatchPart[] = [
      { id: 'batch_a', attempt: 0 },
      { id: 'batch_b2', attempt: 2 },
      { id: 'batch_c', attempt: 1, stopped: { reason: 'cancelled', at: 1_765_000_000 } },
      { id: 'batch_d', attempt: 0, stopped: { reason: 'refused', at: 1_765_000_001 } },
      { id: 'batch_e', attempt: 1, retry: { round: 1, input: 'file-e' } },
      { id: 'batch_f', attempt: 0, retry: { round: 2, input: 'file-f' }, stopped: { reason: 'cancelled', at: 5 } },
    ]
    for (const retriesDone of [false, true]) {
      const id = joinBatchParts(parts, retriesDone)
      expect(isJoinedId(id)).toBe(true)
      expect(batchPartsOf(id)).toEqual({ parts, retriesDone })
      expect(partIdsOf(id)).toEqual(parts.map((part) => part.id))
    }
    // A single batch submitted again, or whose retries are over, is no longer the provider's own id.
    const again = joinBatchParts([{ id: 'batch_x2', attempt: 1 }])
    expect(batchPartsOf(again)).toEqual({ parts: [{ id: 'batch_x2', attempt: 1 }], retriesDone: false })
    const settled = joinBatchParts([{ id: 'batch_y', attempt: 0 }], true)
    expect(isJoinedId(settled)).toBe(true)
    expect(batchPartsOf(settled)).toEqual({ parts: [{ id: 'batch_y', attempt: 0 }], retriesDone: true })
  })

  it('names the lines a file made of parts leaves out, and is a plain join when it leaves none', () => {
    expect(joinFilteredParts([{ id: 'file-a', skip: [] }])).toBe('file-a')
    expect(
      joinFilteredParts([
        { id: 'file-a', skip: [] },
        { id: 'file-b', skip: [] },
      ]),
    ).toBe(joinPartIds(['file-a', 'file-b']))
    const parts = [
      { id: 'file-a', skip: ['file-in1', 'file-in2'] },
      { id: 'file-b', skip: [] },
    ]
    const id = joinFilteredParts(parts)
    expect(isJoinedId(id)).toBe(true)
    expect(filteredPartsOf(id)).toEqual(parts)
    expect(partIdsOf(id)).toEqual(['file-a', 'file-b'])
    expect(filteredPartsOf(joinPartIds(['file-a', 'file-b']))).toEqual([
      { id: 'file-a', skip: [] },
      { id: 'file-b', skip: [] },
    ])
  })
})
