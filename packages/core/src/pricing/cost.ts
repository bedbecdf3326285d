import { DEFAULT_PRICES, type ModelPrice } from './price-table.js'

/**
 * Tokens of one request or of many, normalized to OpenAI's convention: `inputTokens` includes `cachedTokens`,
 * and `outputTokens` includes `reasoningTokens`. (Gemini reports thinking tokens apart from output tokens;
 * the aggregation adds them into `outputTokens` before pricing.)
 */
export interface TokenUsage {
  /** All input (prompt) tokens, cached ones included. */
  inputTokens: number
  /** The part of `inputTokens` served from the provider's cache. */
  cachedTokens: number
  /** All output tokens, reasoning tokens included. */
  outputTokens: number
  /** The part of `outputTokens` spent on reasoning; informational, never billed a second time. */
  reasoningTokens: number
}

/** Prices of the models a deployment knows, and the cost of token usage at those prices. */
export interface Pricing {
  /** The batch price of `model` (exact name, else its dated snapshot's base name), or undefined if unknown. */
  priceOf(model: string): ModelPrice | undefined
  /** The price-table key `model` is priced as (see {@link createPricing}), or undefined if unknown. */
  resolve(model: string): string | undefined
  /**
   * The batch cost of `usage` on `model` in USD, rounded to {@link COST_PRECISION_USD}; `null` (and a
   * warning, once per model) when the model has no price. Never a silent 0 for an unknown model.
   *
   * cost = ((input − cached) × inputPerMTok + cached × cachedInputPerMTok + output × outputPerMTok) / 1e6.
   * Reasoning tokens are part of `outputTokens` and billed there, once.
   */
  costOf(model: string, usage: TokenUsage): number | null
}

/** Options of {@link createPricing}. */
export interface PricingOptions {
  /**
   * Called the first time `costOf` meets a model without a price. Defaults to a Node process warning
   * (`process.emitWarning`, code `BATCHKIT_UNPRICED_MODEL`).
   */
  onUnpricedModel?: (model: string) => void
}

/** A price override: a full entry for a new model, or any subset of fields of a known one. */
export type PriceOverride = ModelPrice | Partial<ModelPrice>

/**
 * Costs are rounded to this many USD (1e-10, a ten-thousandth of a micro-dollar): far below any provider's
 * billing precision, and well above the float noise of the sums (prices such as 0.075 have no exact binary
 * form), so equal usage always gives the same, clean number.
 */
export const COST_PRECISION_USD = 1e-10

const ROUNDING = 1 / COST_PRECISION_USD

/** Rounds a USD amount to {@link COST_PRECISION_USD}. */
export function roundUsd(usd: number): number {
  return Math.round(usd * ROUNDING) / ROUNDING
}

/** Prefixes under which providers name the same model: Vertex AI resource names, the Gemini API's `models/`, and `google/` of Vertex's OpenAI-compatible endpoint. */
const MODEL_PREFIX = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?(?:publishers\/google\/)?models\/|^google\//

/**
 * Suffixes that name a snapshot of a model priced like the model itself. Only these are stripped, once, and the
 * result must then be an exact key: there is no looser prefix match, so `gpt-4o-mini` never becomes `gpt-4o`,
 * `o3-mini` never `o3`, and a fine-tune (`ft:gpt-4o-mini-2024-07-18:…`) stays unknown.
 */
const SNAPSHOT_SUFFIXES: readonly RegExp[] = [
  /-\d{4}-\d{2}-\d{2}$/, // OpenAI: gpt-4o-mini-2024-07-18
  /-\d{3}$/, // Gemini stable versions: gemini-2.0-flash-001
  /-preview-\d{2}-\d{2}$/, // Gemini previews: gemini-2.5-flash-preview-05-20
  /-preview-\d{2}-\d{4}$/, // Gemini previews: gemini-2.5-flash-preview-09-2025
]

const PRICE_FIELDS = ['inputPerMTok', 'cachedInputPerMTok', 'outputPerMTok'] as const

/**
 * The pricing of a deployment: the built-in {@link DEFAULT_PRICES} with `overrides` applied.
 *
 * - An override of a known model may give any subset of fields; the rest come from the built-in entry. When it
 *   changes prices without naming a `source`, the source becomes `'user override'`.
 * - An override of a new model needs `inputPerMTok` and `outputPerMTok`; `cachedInputPerMTok` defaults to
 *   `inputPerMTok` (no cache discount), `source` to `'user override'`, `asOf` to today (UTC).
 * - Prices must be finite and not negative; anything else throws a `TypeError` here, not at billing time.
 *
 * Models resolve by exact name (overrides and built-ins alike), then, after stripping a provider prefix
 * (`publishers/google/models/`, `models/`, `google/`), by exact name again, then by the name without one dated
 * snapshot suffix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`, `gemini-2.5-flash-001` → `gemini-2.5-flash`,
 * `gemini-2.5-flash-preview-05-20` → `gemini-2.5-flash`). An override keyed by a snapshot name therefore prices
 * that snapshot alone.
 */
export function createPricing(
  overrides: Readonly<Record<string, PriceOverride>> = {},
  options: PricingOptions = {},
): Pricing {
  const table = new Map<string, ModelPrice>(Object.entries(DEFAULT_PRICES))
  const defaults = new Map(table)
  for (const [model, override] of Object.entries(overrides)) {
    const baseKey = resolveIn(defaults, model)
    table.set(model, applyOverride(model, baseKey === undefined ? undefined : defaults.get(baseKey), override))
  }

  const onUnpricedModel = options.onUnpricedModel ?? emitUnpricedWarning
  const warned = new Set<string>()

  const priceOf = (model: string): ModelPrice | undefined => {
    const key = resolveIn(table, model)
    return key === undefined ? undefined : table.get(key)
  }

  return {
    priceOf,
    resolve: (model) => resolveIn(table, model),
    costOf(model, usage) {
      const price = priceOf(model)
      if (price === undefined) {
        if (!warned.has(model) && warned.size < 1000) {
          warned.add(model)
          onUnpricedModel(model)
        }
        return null
      }
      return costAt(price, usage)
    },
  }
}

/** The cost of `usage` at `price`, in USD, rounded to {@link COST_PRECISION_USD}. See {@link Pricing.costOf}. */
export function costAt(price: ModelPrice, usage: TokenUsage): number {
  const input = tokens(usage.inputTokens)
  const cached = Math.min(tokens(usage.cachedTokens), input)
  const output = tokens(usage.outputTokens)
  const micro = (input - cached) * price.inputPerMTok + cached * price.cachedInputPerMTok + output * price.outputPerMTok
  return roundUsd(micro / 1e6)
}

function tokens(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0
}

function resolveIn(table: ReadonlyMap<string, ModelPrice>, model: string): string | undefined {
  if (table.has(model)) return model
  const name = model.replace(MODEL_PREFIX, '')
  if (table.has(name)) return name
  for (const suffix of SNAPSHOT_SUFFIXES) {
    if (!suffix.test(name)) continue
    const base = name.replace(suffix, '')
    if (table.has(base)) return base
  }
  return undefined
}

function applyOverride(model: string, base: ModelPrice | undefined, override: PriceOverride): ModelPrice {
  if (override === null || typeof override !== 'object') {
    throw new TypeError(`price override for "${model}" must be an object`)
  }
  const merged: Record<string, unknown> = { ...base }
  for (const field of [...PRICE_FIELDS, 'maxOutputTokens', 'source', 'asOf'] as const) {
    if (override[field] !== undefined) merged[field] = override[field]
  }
  if (base === undefined) {
    merged.cachedInputPerMTok ??= merged.inputPerMTok
    merged.asOf ??= new Date().toISOString().slice(0, 10)
  }
  if (override.source === undefined && (base === undefined || PRICE_FIELDS.some((f) => override[f] !== undefined))) {
    merged.source = 'user override'
  }
  for (const field of PRICE_FIELDS) {
    const value = merged[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`price override for "${model}": ${field} must be a finite number ≥ 0, got ${String(value)}`)
    }
  }
  const maxOutput = merged.maxOutputTokens
  if (maxOutput !== undefined && !(typeof maxOutput === 'number' && Number.isInteger(maxOutput) && maxOutput >= 0)) {
    throw new TypeError(
      `price override for "${model}": maxOutputTokens must be an integer ≥ 0, got ${String(maxOutput)}`,
    )
  }
  if (typeof merged.source !== 'string' || typeof merged.asOf !== 'string') {
    throw new TypeError(`price override for "${model}": source and asOf must be strings`)
  }
  return Object.freeze(merged as unknown as ModelPrice)
}

function emitUnpricedWarning(model: string): void {
  process.emitWarning(
    `No batch price for model "${model}": its cost is null. Add it to createBatchKit's prices: { "${model}": { inputPerMTok, cachedInputPerMTok, outputPerMTok } }.`,
    { code: 'BATCHKIT_UNPRICED_MODEL' },
  )
}
