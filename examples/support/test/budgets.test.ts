import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { createExampleKit } from '../src/kit.js'

describe('BATCHKIT_BUDGETS', () => {
  it('gives each owner named a monthly limit, refuses a batch past it, and leaves the others unlimited', async () => {
    const config = configFromEnv({ BATCHKIT_API_KEYS: 'ka:alice,kb:bob', BATCHKIT_BUDGETS: '{"alice": 0.0001}' })
    expect(config.budgets).toEqual({ alice: 0.0001 })
    const { kit, close } = await createExampleKit(config, () => undefined, { printEvent: () => undefined })
    try {
      const line = JSON.stringify({
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 2000 },
      })
      for (const owner of ['alice', 'bob']) {
        const file = await kit.files.create({ owner }, { file: Readable.from([line]), purpose: 'batch' })
        const create = kit.batches.create(
          { owner },
          { inputFileId: file.id, endpoint: '/v1/chat/completions', completionWindow: '24h' },
        )
        if (owner === 'alice') await expect(create).rejects.toMatchObject({ status: 429, code: 'insufficient_quota' })
        else expect((await create).status).toBe('validating')
      }
      expect(await kit.budgets.status('alice')).toMatchObject({ limit: 0.0001, reserved: 0 })
      expect((await kit.budgets.status('bob')).limit).toBeNull()
    } finally {
      await close()
    }
  })

  it('refuses a value that is not an object of owner to USD', () => {
    expect(() => configFromEnv({ BATCHKIT_BUDGETS: 'alice=5' })).toThrow(/BATCHKIT_BUDGETS must be JSON/)
    expect(() => configFromEnv({ BATCHKIT_BUDGETS: '{"alice": -1}' })).toThrow(/'alice' must be a number/)
  })
})
