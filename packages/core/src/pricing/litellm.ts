import type { ModelPrice } from './price-table.js'

/** Options of {@link pricesFromLiteLLM}. */
export interface LiteLLMImportOptions {
  /** The date the file's prices were current, `YYYY-MM-DD`. @default today */
  asOf?: string
  /** Where the file came from, recorded on every price. @default LiteLLM's file name */
  source?: string
}

/** One model of LiteLLM's `model_prices_and_context_window.json`: the fields batch pricing reads. */
interface LiteLLMEntry {
  litellm_provider?: unknown
  input_cost_per_token_batches?: unknown
  output_cost_per_token_batches?: unknown
  cache_read_input_token_cost?: unknown
  cache_read_input_token_cost_batches?: unknown
  max_output_tokens?: unknown
}

/** Providers whose batch discount does not reach cached tokens: they bill them at the standard cache-read price. */
const GOOGLE_PROVIDERS = /^(gemini|vertex_ai)/

/**
 * Batch prices from LiteLLM's `model_prices_and_context_window.json`, for `createBatchKit({ prices })`,
 * so a deployment can load a current table instead of the built-in one:
 *
 *     prices: pricesFromLiteLLM(JSON.parse(readFileSync('model_prices_and_context_window.json', 'utf8')))
 *
 * Only models with both `input_cost_per_token_batches` and `output_cost_per_token_batches` are taken
 * (a model without a batch rate is better left unpriced than billed at its standard rate). Cached
 * input follows the built-in table's rules: LiteLLM's `cache_read_input_token_cost_batches` when
 * present; else, for Gemini and Vertex AI, the standard `cache_read_input_token_cost` (Google bills
 * cached tokens in a batch as outside one); else the batch input rate. A name with a provider prefix
 * (`gemini/gemini-2.5-flash`) is taken under its bare name unless the file has the bare name too.
 * `max_output_tokens`, where the file has it, bounds estimates of requests that set no limit.
 */
export function pricesFromLiteLLM(file: unknown, options: LiteLLMImportOptions = {}): Record<string, ModelPrice> {
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new TypeError("pricesFromLiteLLM: expected LiteLLM's model_prices_and_context_window.json, an object")
  }
  const asOf = options.asOf ?? new Date().toISOString().slice(0, 10)
  const source = options.source ?? 'LiteLLM model_prices_and_context_window.json'
  const bare = new Map<string, ModelPrice>()
  const prefixed = new Map<string, ModelPrice>()
  for (const [key, value] of Object.entries(file)) {
    if (typeof value !== 'object' || value === null) continue
    const entry = value as LiteLLMEntry
    const input = perMTok(entry.input_cost_per_token_batches)
    const output = perMTok(entry.output_cost_per_token_batches)
    if (input === undefined || output === undefined) continue
    const provider = typeof entry.litellm_provider === 'string' ? entry.litellm_provider : ''
    const cached =
      perMTok(entry.cache_read_input_token_cost_batches) ??
      (GOOGLE_PROVIDERS.test(provider) ? perMTok(entry.cache_read_input_token_cost) : undefined) ??
      input
    const maxOutput = entry.max_output_tokens
    const price: ModelPrice = {
      inputPerMTok: input,
      cachedInputPerMTok: cached,
      outputPerMTok: output,
      ...(typeof maxOutput === 'number' && Number.isInteger(maxOutput) && maxOutput >= 0
        ? { maxOutputTokens: maxOutput }
        : {}),
      source: `${source} (${key})`,
      asOf,
    }
    const slash = key.lastIndexOf('/')
    if (slash === -1) bare.set(key, price)
    else if (!prefixed.has(key.slice(slash + 1))) prefixed.set(key.slice(slash + 1), price)
  }
  return Object.fromEntries([...prefixed, ...bare])
}

/** A per-token USD price as USD per 1M tokens, without the float noise of the multiplication. */
function perMTok(perToken: unknown): number | undefined {
  if (typeof perToken !== 'number' || !Number.isFinite(perToken) || perToken < 0) return undefined
  return Number((perToken * 1e6).toPrecision(12))
}
