import { describe, expect, it } from 'vitest'
import { fakeBatchUsage, fakeUsage } from '../src/index.js'

describe('fakeUsage', () => {
  it('follows the documented formula', () => {
    const messages = [{ role: 'user', content: 'Hello world!' }]
    const promptBytes = Buffer.byteLength(JSON.stringify(messages))
    const usage = fakeUsage({ url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages, max_tokens: 1000 } })
    const prompt = Math.ceil(promptBytes / 4)
    expect(usage).toEqual({
      prompt_tokens: prompt,
      completion_tokens: 64,
      total_tokens: prompt + 64,
      prompt_tokens_details: { cached_tokens: Math.floor(prompt / 2) },
      completion_tokens_details: { reasoning_tokens: 0 },
    })
  })

  it('counts UTF-8 bytes, defaults to 16 completion tokens and skips caching below 8 prompt tokens', () => {
    expect(fakeUsage({ body: { model: 'gpt-4o', input: 'é' } })).toEqual({
      prompt_tokens: 1, // '"é"' is 4 bytes
      completion_tokens: 16,
      total_tokens: 17,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    })
  })

  it('gives reasoning tokens to o-series and gpt-5 models', () => {
    const o3 = fakeUsage({ body: { model: 'o3-mini', messages: [], max_completion_tokens: 10 } })
    expect(o3.completion_tokens_details.reasoning_tokens).toBe(2)
    const gpt5 = fakeUsage({ body: { model: 'gpt-5-2025-08-07', messages: [] } })
    expect(gpt5.completion_tokens_details.reasoning_tokens).toBe(4)
  })

  it('gives embeddings no output tokens', () => {
    const usage = fakeUsage({
      url: '/v1/embeddings',
      body: { model: 'text-embedding-3-small', input: 'abcdefghijklmnopqrstuvwxyz0123456789' },
    })
    expect(usage).toEqual({
      prompt_tokens: 10,
      completion_tokens: 0,
      total_tokens: 10,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    })
  })

  it('sums successful lines into the Batch usage shape', () => {
    const lines = [
      { custom_id: 'a', url: '/v1/chat/completions', body: { model: 'o1', messages: ['x'.repeat(40)], max_tokens: 8 } },
      { custom_id: 'fail-b', url: '/v1/chat/completions', body: { model: 'o1', messages: ['y'] } },
    ]
    const a = fakeUsage(lines[0])
    expect(fakeBatchUsage(lines)).toEqual({
      input_tokens: a.prompt_tokens,
      input_tokens_details: { cached_tokens: a.prompt_tokens_details.cached_tokens },
      output_tokens: 8,
      output_tokens_details: { reasoning_tokens: 2 },
      total_tokens: a.total_tokens,
    })
  })
})
