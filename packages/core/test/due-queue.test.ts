import { Keyv } from 'keyv'
import { expect, it } from 'vitest'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'

it('counts each scheduled id once, across pages of the index, for the gauges', async () => {
  const queue = new DueQueue(coordinationFor(new Keyv()).index, 'tracking')
  expect(await queue.size()).toBe(0)
  for (let i = 0; i < 2_345; i++) await queue.schedule(`batch_${i}`, 1_000 + i)
  // A reschedule cut short leaves an id twice; it is still one batch.
  await queue.schedule('batch_7', 9_999_999)
  expect(await queue.size()).toBe(2_345)
})
