import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { Keyv } from 'keyv'
import { afterAll, beforeAll } from 'vitest'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../../src/kit.js'
import { openai } from '../../src/providers/openai/index.js'

/**
 * For the enclosing `describe`: a fake OpenAI whose every read of a batch moves it one step on, and a
 * kit over it on an in-memory store, with no tracker and no freshness window (each read asks the
 * provider), errors not reported. Built before the block's tests, closed after them.
 */
export function kitOnFakeOpenAI(): { readonly fake: FakeOpenAI; readonly kit: BatchKit } {
  let fake: FakeOpenAI
  let kit: BatchKit
  beforeAll(async () => {
    fake = await startFakeOpenAI()
    const options: BatchKitOptions = {
      store: new Keyv(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      freshnessMs: 0,
      onError: () => undefined,
    }
    kit = createBatchKit(options)
  })
  afterAll(async () => {
    await kit?.close()
    await fake?.close()
  })
  return {
    get fake() {
      return fake
    },
    get kit() {
      return kit
    },
  }
}
