import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { createExampleKit } from '../src/kit.js'

describe('BATCHKIT_REQUEST_RETRIES', () => {
  it('runs again a request its provider failed with a server error, in the same batch', async () => {
    const config = configFromEnv({
      BATCHKIT_REQUEST_RETRIES: '1',
      BATCHKIT_POLL_INTERVAL_MS: '20',
      BATCHKIT_FRESHNESS_MS: '20',
    })
    expect(config.requestRetries).toBe(1)
    const { kit, close } = await createExampleKit(config, () => undefined, {
      printEvent: () => undefined,
      fakeStepMs: 20,
    })
    try {
      // The demo upstream fails a `flaky-1-` request with a 500 the first time it runs it.
      const lines = ['ok-1', 'flaky-1-2'].map((id) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Hello ${id}` }] },
        }),
      )
      const principal = { owner: 'default' }
      const file = await kit.files.create(principal, { file: Readable.from([lines.join('\n')]), purpose: 'batch' })
      const batch = await kit.batches.create(principal, {
        inputFileId: file.id,
        endpoint: '/v1/chat/completions',
        completionWindow: '24h',
      })
      await expect
        .poll(async () => (await kit.batches.retrieve(principal, batch.id)).status, { timeout: 20_000, interval: 50 })
        .toBe('completed')
      const done = await kit.batches.retrieve(principal, batch.id)
      expect(done.requestCounts).toEqual({ total: 2, completed: 2, failed: 0 })
      expect(done.errorFileId).toBeNull()
    } finally {
      await close()
    }
  })

  it('is off unless set, and refuses what is not a whole number', () => {
    expect(configFromEnv({}).requestRetries).toBe(0)
    expect(() => configFromEnv({ BATCHKIT_REQUEST_RETRIES: 'two' })).toThrow(
      /BATCHKIT_REQUEST_RETRIES must be a whole number/,
    )
  })
})
