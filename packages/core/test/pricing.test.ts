import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  COST_PRECISION_USD,
  costAt,
  createPricing,
  type PriceOverride,
  roundUsd,
  type TokenUsage,
} from '../src/pricing/cost.js'
import { DEFAULT_PRICES } from '../src/pricing/price-table.js'

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A pricing that records unpriced-model warnings instead of emitting process warnings. */
function quietPricing(overrides: Parameters<typeof createPricing>[0] = {}) {
  const warnings: string[] = []
  const pricing = createPricing(overrides, { onUnpricedModel: (model) => warnings.push(model) })
  return { pricing, warnings }
}

function usage(inputTokens: number, cachedTokens: number, outputTokens: number, reasoningTokens = 0): TokenUsage {
  return { inputTokens, cachedTokens, outputTokens, reasoningTokens }
}

afterEach(() => {
  vi.restoreAllMocks()
})

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

describe('DEFAULT_PRICES', () => {
  const REQUIRED = [
    'gpt-4o',
    'gpt-4o-mini',
    'gpt-4.1',
    'gpt-4.1-mini',
    'gpt-4.1-nano',
    'gpt-5',
    'gpt-5-mini',
    'gpt-5-nano',
    'o1',
    'o3',
    'o3-mini',
    'o4-mini',
    'text-embedding-3-small',
    'text-embedding-3-large',
    'text-embedding-ada-002',
    'gemini-2.0-flash',
    'gemini-2.0-flash-lite',
    'gemini-2.5-flash',
    'gemini-2.5-flash-lite',
    'gemini-2.5-pro',
  ]

  it('prices every required model, each entry with a source URL and an as-of date', () => {
    for (const model of REQUIRED) {
      const price = DEFAULT_PRICES[model]
      expect(price, model).toBeDefined()
      expect(price!.source, model).toMatch(/^https:\/\/(platform\.openai\.com|ai\.google\.dev)\//)
      expect(price!.asOf, model).toMatch(/^20\d\d-[01]\d-[0-3]\d$/)
      for (const value of [price!.inputPerMTok, price!.cachedInputPerMTok, price!.outputPerMTok]) {
        expect(Number.isFinite(value) && value >= 0, model).toBe(true)
      }
      // A cache hit never costs more than uncached input.
      expect(price!.cachedInputPerMTok, model).toBeLessThanOrEqual(price!.inputPerMTok)
    }
  })

  /**
   * The published batch prices, USD per 1M tokens: [input, cached input, output], written from the providers'
   * pricing pages (OpenAI's "Batch" table, 2025-08-07; Gemini API Batch Mode, 2025-10-31), not from the table.
   * Where a Batch table lists no cached-input price, cached tokens are billed as batch input (the figure repeats).
   */
  const PUBLISHED_BATCH: Record<string, [input: number, cached: number, output: number]> = {
    // OpenAI, Batch table (standard in parentheses).
    'gpt-4o': [1.25, 1.25, 5], // (2.50 / 10.00)
    'gpt-4o-2024-05-13': [2.5, 2.5, 7.5], // launch snapshot, kept its own price (5.00 / 15.00)
    'gpt-4o-mini': [0.075, 0.075, 0.3], // (0.15 / 0.60)
    'gpt-4.1': [1, 1, 4], // (2.00 / 8.00)
    'gpt-4.1-mini': [0.2, 0.2, 0.8], // (0.40 / 1.60)
    'gpt-4.1-nano': [0.05, 0.05, 0.2], // (0.10 / 0.40)
    'gpt-5': [0.625, 0.0625, 5], // (1.25 / 0.125 / 10.00): the Batch table lists cached input
    'gpt-5-mini': [0.125, 0.0125, 1], // (0.25 / 0.025 / 2.00)
    'gpt-5-nano': [0.025, 0.0025, 0.2], // (0.05 / 0.005 / 0.40)
    o1: [7.5, 7.5, 30], // (15.00 / 60.00)
    o3: [1, 1, 4], // (2.00 / 8.00, since 2025-06-10)
    'o3-mini': [0.55, 0.55, 2.2], // (1.10 / 4.40)
    'o4-mini': [0.55, 0.55, 2.2], // (1.10 / 4.40)
    'text-embedding-3-small': [0.01, 0.01, 0], // (0.02)
    'text-embedding-3-large': [0.065, 0.065, 0], // (0.13)
    'text-embedding-ada-002': [0.05, 0.05, 0], // (0.10)
    // Gemini API, Batch Mode: half the standard input and output; cached tokens at the standard cache price.
    'gemini-2.0-flash': [0.05, 0.025, 0.2], // (0.10 / 0.025 / 0.40)
    'gemini-2.0-flash-lite': [0.0375, 0.0375, 0.15], // (0.075 / — / 0.30): no context caching
    'gemini-2.5-flash': [0.15, 0.03, 1.25], // (0.30 / 0.03 / 2.50), text/image/video input: audio costs more
    'gemini-2.5-flash-lite': [0.05, 0.01, 0.2], // (0.10 / 0.01 / 0.40)
    // Uncertain by design: only the ≤200k-token prompt tier; longer prompts cost 1.25 / 0.25 / 7.50 in a batch
    // and are under-billed (the table's own comment says so, and how to override it).
    'gemini-2.5-pro': [0.625, 0.125, 5], // (1.25 / 0.125 / 10.00, prompts ≤200k tokens)
  }

  it('bills every model at its published batch rate (not the standard rate, which is double)', () => {
    const { pricing, warnings } = quietPricing()
    expect(Object.keys(DEFAULT_PRICES).sort()).toEqual(Object.keys(PUBLISHED_BATCH).sort())
    for (const [model, [input, cached, output]] of Object.entries(PUBLISHED_BATCH)) {
      // A batch of 2M input tokens, half of them from the cache, and 3M output tokens.
      expect({
        model,
        uncachedInput: pricing.costOf(model, usage(1_000_000, 0, 0)),
        cachedInput: pricing.costOf(model, usage(1_000_000, 1_000_000, 0)),
        output: pricing.costOf(model, usage(0, 0, 1_000_000)),
        batch: pricing.costOf(model, usage(2_000_000, 1_000_000, 3_000_000)),
      }).toEqual({
        model,
        uncachedInput: input,
        cachedInput: cached,
        output,
        batch: roundUsd(input + cached + 3 * output),
      })
    }
    expect(warnings).toEqual([])
  })

  it('is frozen', () => {
    expect(Object.isFrozen(DEFAULT_PRICES)).toBe(true)
    expect(Object.isFrozen(DEFAULT_PRICES['gpt-4o'])).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

describe('costOf: arithmetic', () => {
  const { pricing } = quietPricing()

  it('prices a million input and output tokens at the per-1M rates', () => {
    // gpt-4o-mini batch: 0.075 + 0.30.
    expect(pricing.costOf('gpt-4o-mini', usage(1_000_000, 0, 1_000_000))).toBe(0.375)
  })

  it('bills cached input at the cached rate and the rest at the input rate', () => {
    // gpt-5: 6,000 × 0.625 + 4,000 × 0.0625 + 2,000 × 5 = 3,750 + 250 + 10,000 = 14,000 µ$ per M → $0.014.
    expect(pricing.costOf('gpt-5', usage(10_000, 4_000, 2_000, 1_500))).toBe(0.014)
    // gemini-2.5-flash: 150,000 × 0.15 + 50,000 × 0.03 + 30,000 × 1.25 = 22,500 + 1,500 + 37,500 → $0.0615.
    expect(pricing.costOf('gemini-2.5-flash', usage(200_000, 50_000, 30_000))).toBe(0.0615)
    // gpt-4.1 in a batch: no cache discount on top of the batch rate, so cached tokens cost input: 10,000 × 1.00.
    expect(pricing.costOf('gpt-4.1', usage(10_000, 8_000, 0))).toBe(0.01)
  })

  it('prices embeddings on input only', () => {
    // 123,457 × 0.065 = 8,024.705 → $0.008024705.
    expect(pricing.costOf('text-embedding-3-large', usage(123_457, 0, 0))).toBe(0.008024705)
  })

  it('bills reasoning tokens once, as the output tokens that contain them', () => {
    // o4-mini: 1,000 output tokens, 800 of them reasoning: 1,000 × 2.20 = 2,200 → $0.0022, not 1,800 × 2.20.
    expect(pricing.costOf('o4-mini', usage(0, 0, 1_000, 800))).toBe(0.0022)
    expect(pricing.costOf('o4-mini', usage(0, 0, 1_000, 0))).toBe(0.0022)
  })

  it('rounds to 1e-10 USD, so float noise never shows', () => {
    expect(COST_PRECISION_USD).toBe(1e-10)
    // 7 × 0.55 + 3 × 2.2 is 10.450000000000001 in floating point; the cost is exactly $0.00001045.
    expect(pricing.costOf('o3-mini', usage(7, 0, 3))).toBe(0.00001045)
    // 3 × 0.075 = 0.225 µ$ → 2.25e-7.
    expect(pricing.costOf('gpt-4o-mini', usage(3, 0, 0))).toBe(2.25e-7)
    // The cheapest token of the table, one gpt-5-nano cached input token, is $2.5e-9: well above the precision.
    expect(pricing.costOf('gpt-5-nano', usage(1, 1, 0))).toBe(2.5e-9)
    expect(roundUsd(4e-11)).toBe(0)
    expect(roundUsd(0.1 + 0.2)).toBe(0.3)
  })

  it('clamps cached tokens to input tokens and ignores negative or non-finite counts', () => {
    // 500 cached of 100 input: 100 cached × 0.0625 = 6.25 → $0.00000625.
    expect(pricing.costOf('gpt-5', usage(100, 500, 0))).toBe(0.00000625)
    expect(pricing.costOf('gpt-5', usage(-5, Number.NaN, Number.POSITIVE_INFINITY))).toBe(0)
  })

  it('costAt prices a ModelPrice directly', () => {
    const price = { inputPerMTok: 2, cachedInputPerMTok: 1, outputPerMTok: 8, source: 'test', asOf: '2025-01-01' }
    // 1,000 × 2 + 1,000 × 1 + 500 × 8 = 7,000 → $0.007.
    expect(costAt(price, usage(2_000, 1_000, 500))).toBe(0.007)
  })
})

// ---------------------------------------------------------------------------------------------
// Model resolution
// ---------------------------------------------------------------------------------------------

describe('model resolution', () => {
  const { pricing } = quietPricing()

  it.each([
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['gpt-4o-2024-08-06', 'gpt-4o'],
    ['gpt-4o-2024-11-20', 'gpt-4o'],
    ['gpt-4.1-2025-04-14', 'gpt-4.1'],
    ['gpt-4.1-mini-2025-04-14', 'gpt-4.1-mini'],
    ['gpt-4.1-nano-2025-04-14', 'gpt-4.1-nano'],
    ['gpt-5-2025-08-07', 'gpt-5'],
    ['gpt-5-mini-2025-08-07', 'gpt-5-mini'],
    ['gpt-5-nano-2025-08-07', 'gpt-5-nano'],
    ['o1-2024-12-17', 'o1'],
    ['o3-2025-04-16', 'o3'],
    ['o3-mini-2025-01-31', 'o3-mini'],
    ['o4-mini-2025-04-16', 'o4-mini'],
    ['gemini-2.0-flash-001', 'gemini-2.0-flash'],
    ['gemini-2.0-flash-lite-001', 'gemini-2.0-flash-lite'],
    ['gemini-2.5-flash-001', 'gemini-2.5-flash'],
    ['gemini-2.5-flash-preview-05-20', 'gemini-2.5-flash'],
    ['gemini-2.5-flash-preview-09-2025', 'gemini-2.5-flash'],
    ['gemini-2.5-flash-lite-preview-06-17', 'gemini-2.5-flash-lite'],
    ['gemini-2.5-pro-preview-06-05', 'gemini-2.5-pro'],
    ['publishers/google/models/gemini-2.5-flash', 'gemini-2.5-flash'],
    ['publishers/google/models/gemini-2.0-flash-001', 'gemini-2.0-flash'],
    ['projects/acme/locations/us-central1/publishers/google/models/gemini-2.5-pro', 'gemini-2.5-pro'],
    ['models/gemini-2.5-flash-lite', 'gemini-2.5-flash-lite'],
    ['google/gemini-2.5-flash', 'gemini-2.5-flash'],
  ])('%s is priced as %s', (model, key) => {
    expect(pricing.resolve(model)).toBe(key)
    expect(pricing.priceOf(model)).toBe(DEFAULT_PRICES[key])
  })

  it.each([
    'gpt-4o',
    'gpt-4o-mini',
    'gpt-4.1',
    'gpt-4.1-mini',
    'gpt-4.1-nano',
    'gpt-5-mini',
    'o3',
    'o3-mini',
    'o4-mini',
    'gemini-2.0-flash-lite',
    'gemini-2.5-flash-lite',
    'text-embedding-3-small',
    'text-embedding-ada-002',
  ])('%s is priced as itself, never as a shorter name', (model) => {
    expect(pricing.resolve(model)).toBe(model)
  })

  it('keeps the first GPT-4o snapshot at its own, higher price', () => {
    expect(pricing.resolve('gpt-4o-2024-05-13')).toBe('gpt-4o-2024-05-13')
    expect(pricing.priceOf('gpt-4o-2024-05-13')).toMatchObject({ inputPerMTok: 2.5, outputPerMTok: 7.5 })
  })

  it.each([
    'gpt-4o-mini-tts',
    'gpt-4o-mini-search-preview',
    'gpt-4o-audio-preview-2024-12-17',
    'gpt-4o-realtime-preview-2024-12-17',
    'ft:gpt-4o-mini-2024-07-18:acme::abc123',
    'gpt-4',
    'gpt-4-turbo',
    'gpt-5-pro',
    'gpt-5-chat-latest',
    'o1-mini',
    'o1-pro',
    'o1-preview-2024-09-12',
    'o3-pro',
    'o3-deep-research',
    'o4-mini-deep-research',
    'gemini-2.0-flash-exp',
    'gemini-2.5-pro-exp-03-25',
    'gemini-2.5-flash-image',
    'gemini-2.5-flash-preview',
    'gemini-1.5-pro-002',
    'text-embedding-3-small-v2',
    'GPT-4o',
    '',
  ])('%s is unknown, not priced as a similar model', (model) => {
    expect(pricing.resolve(model)).toBeUndefined()
    expect(pricing.priceOf(model)).toBeUndefined()
  })

  it('does not price names of Object.prototype', () => {
    expect(pricing.priceOf('constructor')).toBeUndefined()
    expect(pricing.priceOf('__proto__')).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------
// Unknown models
// ---------------------------------------------------------------------------------------------

describe('unknown models', () => {
  it('cost null, never 0, and warn once per model', () => {
    const { pricing, warnings } = quietPricing()
    expect(pricing.costOf('my-finetune', usage(10, 0, 5))).toBeNull()
    expect(pricing.costOf('my-finetune', usage(0, 0, 0))).toBeNull()
    expect(pricing.costOf('other-model', usage(1, 0, 1))).toBeNull()
    expect(warnings).toEqual(['my-finetune', 'other-model'])
  })

  it('warn of at most 1,000 models, however many unknown names come', () => {
    const { pricing, warnings } = quietPricing()
    for (let i = 0; i < 1_001; i++) expect(pricing.costOf(`model-${i}`, usage(1, 0, 1))).toBeNull()
    expect(warnings).toHaveLength(1_000)
    expect(warnings.at(-1)).toBe('model-999')
  })

  it('warn through process.emitWarning by default', () => {
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    const pricing = createPricing()
    expect(pricing.costOf('mystery-model', usage(1, 0, 1))).toBeNull()
    expect(pricing.costOf('mystery-model', usage(1, 0, 1))).toBeNull()
    expect(emit).toHaveBeenCalledTimes(1)
    expect(String(emit.mock.calls[0]![0])).toContain('"mystery-model"')
    expect(emit.mock.calls[0]![1]).toMatchObject({ code: 'BATCHKIT_UNPRICED_MODEL' })
  })
})

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

describe('overrides', () => {
  it('change one field of a known model and keep the others', () => {
    const { pricing } = quietPricing({ 'gpt-4o-mini': { outputPerMTok: 0.5 } })
    expect(pricing.priceOf('gpt-4o-mini')).toEqual({
      inputPerMTok: 0.075,
      cachedInputPerMTok: 0.075,
      outputPerMTok: 0.5,
      maxOutputTokens: 16_384,
      source: 'user override',
      asOf: DEFAULT_PRICES['gpt-4o-mini']!.asOf,
    })
    // Snapshots of the model follow the override: 1,000 × 0.075 + 1,000 × 0.5 = 575 → $0.000575.
    expect(pricing.costOf('gpt-4o-mini-2024-07-18', usage(1_000, 0, 1_000))).toBe(0.000575)
    // The built-in table is untouched.
    expect(DEFAULT_PRICES['gpt-4o-mini']!.outputPerMTok).toBe(0.3)
    expect(createPricing().priceOf('gpt-4o-mini')!.outputPerMTok).toBe(0.3)
  })

  it('keep a source and date the override gives', () => {
    const { pricing } = quietPricing({ o3: { inputPerMTok: 0.9, source: 'our contract', asOf: '2026-01-01' } })
    expect(pricing.priceOf('o3')).toMatchObject({ inputPerMTok: 0.9, source: 'our contract', asOf: '2026-01-01' })
  })

  it('add a new model, with its snapshots', () => {
    const { pricing, warnings } = quietPricing({
      'acme-llm': { inputPerMTok: 1, cachedInputPerMTok: 0.25, outputPerMTok: 3, source: 'acme', asOf: '2025-09-01' },
    })
    // 1,000 × 1 + 1,000 × 0.25 + 1,000 × 3 = 4,250 → $0.00425.
    expect(pricing.costOf('acme-llm', usage(2_000, 1_000, 1_000))).toBe(0.00425)
    expect(pricing.costOf('acme-llm-2025-10-01', usage(2_000, 1_000, 1_000))).toBe(0.00425)
    expect(warnings).toEqual([])
  })

  it('default a new model without cached price to its input price, and its source to "user override"', () => {
    const { pricing } = quietPricing({ 'acme-embed': { inputPerMTok: 0.02, outputPerMTok: 0 } })
    expect(pricing.priceOf('acme-embed')).toMatchObject({
      inputPerMTok: 0.02,
      cachedInputPerMTok: 0.02,
      outputPerMTok: 0,
      source: 'user override',
    })
    expect(pricing.priceOf('acme-embed')!.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/)
  })

  it('keyed by a snapshot price that snapshot only', () => {
    const { pricing } = quietPricing({ 'gpt-4o-mini-2024-07-18': { inputPerMTok: 1 } })
    expect(pricing.priceOf('gpt-4o-mini-2024-07-18')).toMatchObject({ inputPerMTok: 1, outputPerMTok: 0.3 })
    expect(pricing.priceOf('gpt-4o-mini')).toBe(DEFAULT_PRICES['gpt-4o-mini'])
  })

  it('resolve a snapshot of an overridden model to the model’s key', () => {
    const { pricing } = quietPricing({ 'acme-llm': { inputPerMTok: 1, outputPerMTok: 2 } })
    expect(pricing.resolve('acme-llm-2026-01-01')).toBe('acme-llm')
    expect(pricing.resolve('gpt-4o-mini-2024-07-18')).toBe('gpt-4o-mini')
    expect(pricing.resolve('acme-other')).toBeUndefined()
  })

  it('keep the table’s source when they change only the date', () => {
    const { pricing } = quietPricing({ 'gpt-4o': { asOf: '2026-02-01' } })
    expect(pricing.priceOf('gpt-4o')).toEqual({ ...DEFAULT_PRICES['gpt-4o'], asOf: '2026-02-01' })
  })

  it('refuse an override that is not an object, or a source or date that is not a string', () => {
    for (const bad of [null, 5, 'cheap']) {
      expect(() => createPricing({ 'gpt-4o': bad as unknown as PriceOverride })).toThrow(
        new TypeError('price override for "gpt-4o" must be an object'),
      )
    }
    for (const bad of [{ source: 5 }, { asOf: 20260101 }]) {
      expect(() => createPricing({ 'gpt-4o': bad as unknown as PriceOverride })).toThrow(
        new TypeError('price override for "gpt-4o": source and asOf must be strings'),
      )
    }
  })

  it('are checked when the pricing is created', () => {
    expect(() => createPricing({ 'new-model': { inputPerMTok: 1 } })).toThrow(/outputPerMTok/)
    expect(() => createPricing({ 'gpt-4o': { inputPerMTok: -1 } })).toThrow(TypeError)
    expect(() => createPricing({ 'gpt-4o': { outputPerMTok: Number.NaN } })).toThrow(TypeError)
    expect(() => createPricing({ 'gpt-4o': { inputPerMTok: '1' as unknown as number } })).toThrow(TypeError)
  })
})
