import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { createPricing } from '../src/pricing/cost.js'
import { pricesFromLiteLLM } from '../src/pricing/litellm.js'

/** A few entries in the shape of LiteLLM's model_prices_and_context_window.json, written for this test. */
const file = JSON.parse(readFileSync(new URL('./fixtures/litellm-prices.json', import.meta.url), 'utf8'))

describe('prices from LiteLLM’s price file', () => {
  const prices = pricesFromLiteLLM(file, { asOf: '2026-12-01' })

  it('takes every model with batch rates, per 1M tokens, under its bare name, and only those', () => {
    expect(Object.keys(prices).sort()).toEqual(['gemini-2.5-flash', 'gpt-4o-mini', 'gpt-5'])
    // The bare OpenAI entry wins over Azure's prefixed one; cached tokens bill as batch input.
    expect(prices['gpt-4o-mini']).toEqual({
      inputPerMTok: 0.075,
      cachedInputPerMTok: 0.075,
      outputPerMTok: 0.3,
      maxOutputTokens: 16_384,
      source: 'LiteLLM model_prices_and_context_window.json (gpt-4o-mini)',
      asOf: '2026-12-01',
    })
    // A cached batch rate where the file has one; Gemini's cached tokens at the standard cache-read price.
    expect(prices['gpt-5']).toMatchObject({
      inputPerMTok: 0.625,
      cachedInputPerMTok: 0.0625,
      outputPerMTok: 5,
      maxOutputTokens: 128_000,
    })
    expect(prices['gemini-2.5-flash']).toMatchObject({
      inputPerMTok: 0.15,
      cachedInputPerMTok: 0.03,
      outputPerMTok: 1.25,
    })
  })

  it('bills with the imported rates where the kit takes them, leaving a model without batch rates unpriced', () => {
    const warned: string[] = []
    const pricing = createPricing(prices, { onUnpricedModel: (model) => void warned.push(model) })
    const usage = { inputTokens: 1_000_000, cachedTokens: 200_000, outputTokens: 500_000, reasoningTokens: 0 }
    // (800k × 0.15 + 200k × 0.03 + 500k × 1.25) / 1M
    expect(pricing.costOf('gemini-2.5-flash', usage)).toBeCloseTo(0.12 + 0.006 + 0.625, 10)
    expect(pricing.costOf('claude-sonnet-4', usage)).toBeNull()
    expect(warned).toEqual(['claude-sonnet-4'])
  })

  it('refuses something that is not the price file', () => {
    expect(() => pricesFromLiteLLM([])).toThrow(/model_prices_and_context_window\.json/)
  })
})
