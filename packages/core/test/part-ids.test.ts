import { describe, expect, it } from 'vitest'
import {
  type BatchPart,
  batchPartsOf,
  isJoinedId,
  joinBatchParts,
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
  })

  it('records each part’s later submissions and stops, and reads them back', () => {
    const parts: BatchPart[] = [
      { id: 'batch_a', attempt: 0 },
      { id: 'batch_b2', attempt: 2 },
      { id: 'batch_c', attempt: 1, stopped: { reason: 'cancelled', at: 1_765_000_000 } },
      { id: 'batch_d', attempt: 0, stopped: { reason: 'refused', at: 1_765_000_001 } },
    ]
    const id = joinBatchParts(parts)
    expect(isJoinedId(id)).toBe(true)
    expect(batchPartsOf(id)).toEqual(parts)
    expect(partIdsOf(id)).toEqual(['batch_a', 'batch_b2', 'batch_c', 'batch_d'])
    // A single batch submitted again is no longer the provider's own id.
    const again = joinBatchParts([{ id: 'batch_x2', attempt: 1 }])
    expect(isJoinedId(again)).toBe(true)
    expect(batchPartsOf(again)).toEqual([{ id: 'batch_x2', attempt: 1 }])
  })
})
