/**
 * Batch prices of the models batchkit knows, in USD per 1M tokens.
 *
 * Every figure here is the provider's **batch** rate, not its standard (synchronous) rate:
 *
 * - **OpenAI**: the Batch API bills input and output at 50% of the standard rate (the "Batch" table of
 *   OpenAI's pricing page). Prompt caching stacks with the batch discount only where that table lists a
 *   cached-input price (the GPT-5 family: 50% of the standard cached rate). For every other model the table
 *   lists none, so cached tokens in a batch are billed as ordinary batch input: `cachedInputPerMTok` equals
 *   `inputPerMTok` there.
 * - **Google Gemini API**: Batch Mode bills input and output at 50% of the standard rate. Google's batch
 *   documentation states that cached tokens in a batch are priced as in non-batch traffic, so
 *   `cachedInputPerMTok` is the standard context-caching (cache read) price, not halved. Models without
 *   context caching (2.0 Flash-Lite) bill cached tokens as input.
 * - **Embeddings** have no output tokens; their `outputPerMTok` is 0.
 *
 * Simplifications, all documented so they can be overridden per model (see `createPricing`):
 *
 * - **Gemini 2.5 Pro long context**: Google bills prompts over 200k tokens at a higher tier (batch: $1.25 input,
 *   $7.50 output, $0.25 cached per 1M). The table holds the ≤200k tier only, and the aggregation applies it to
 *   every request, so requests with prompts over 200k tokens are under-billed. Override `gemini-2.5-pro` with
 *   the higher tier if your batches are mostly long-context.
 * - **Gemini audio input** is billed at a higher input rate than text, image and video; the table holds the
 *   text/image/video rate.
 * - Storage fees of explicit Gemini context caches are not per-request and are not included.
 *
 * Each entry records where its figures come from (`source`) and the date they are known to have been current
 * (`asOf`). Prices change: check them against the source before relying on them for invoicing.
 */
export interface ModelPrice {
  /** Batch price of uncached input (prompt) tokens, USD per 1M tokens. */
  inputPerMTok: number
  /** Batch price of input tokens served from the provider's prompt/context cache, USD per 1M tokens. */
  cachedInputPerMTok: number
  /** Batch price of output tokens, reasoning/thinking tokens included, USD per 1M tokens. */
  outputPerMTok: number
  /**
   * The most output tokens one request to the model may produce, for the upper bound of an estimate
   * when a request sets no limit of its own. @default 16,384 when not given
   */
  maxOutputTokens?: number
  /** Where the figures come from: a URL or a document name. */
  source: string
  /** The date the figures are known to have been current, `YYYY-MM-DD`. */
  asOf: string
}

const OPENAI_PRICING = 'https://platform.openai.com/docs/pricing'
const OPENAI_AS_OF = '2025-08-07'
const GEMINI_PRICING = 'https://ai.google.dev/gemini-api/docs/pricing'
const GEMINI_AS_OF = '2025-10-31'

/** The price of a model as one source publishes it: per million tokens, and the model's most output tokens. */
function pricedBy(source: string, asOf: string) {
  return (
    inputPerMTok: number,
    cachedInputPerMTok: number,
    outputPerMTok: number,
    maxOutputTokens: number,
  ): ModelPrice => Object.freeze({ inputPerMTok, cachedInputPerMTok, outputPerMTok, maxOutputTokens, source, asOf })
}

const openai = pricedBy(OPENAI_PRICING, OPENAI_AS_OF)
const gemini = pricedBy(GEMINI_PRICING, GEMINI_AS_OF)

/**
 * The built-in batch price table: model name → batch prices in USD per 1M tokens. Keys are the provider's
 * model names without a snapshot suffix; `createPricing` resolves dated snapshots to them.
 *
 * The comments give the standard (non-batch) price each figure is derived from, input / cached / output. The last
 * figure of each entry is the model's most output tokens per request, from the same providers' model pages, for
 * the upper bound of cost estimates.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  // OpenAI: GPT-4o family. Standard 2.50 / 1.25 / 10.00; 4o-mini 0.15 / 0.075 / 0.60.
  'gpt-4o': openai(1.25, 1.25, 5, 16_384),
  // The first GPT-4o snapshot kept its launch price (standard 5.00 / — / 15.00); listed so that it is not
  // resolved to `gpt-4o` and billed at half its price.
  'gpt-4o-2024-05-13': openai(2.5, 2.5, 7.5, 4_096),
  'gpt-4o-mini': openai(0.075, 0.075, 0.3, 16_384),
  // OpenAI: GPT-4.1 family. Standard 2.00 / 0.50 / 8.00, 0.40 / 0.10 / 1.60, 0.10 / 0.025 / 0.40.
  'gpt-4.1': openai(1, 1, 4, 32_768),
  'gpt-4.1-mini': openai(0.2, 0.2, 0.8, 32_768),
  'gpt-4.1-nano': openai(0.05, 0.05, 0.2, 32_768),
  // OpenAI: GPT-5 family; the Batch table lists cached input. Standard 1.25 / 0.125 / 10.00,
  // 0.25 / 0.025 / 2.00, 0.05 / 0.005 / 0.40.
  'gpt-5': openai(0.625, 0.0625, 5, 128_000),
  'gpt-5-mini': openai(0.125, 0.0125, 1, 128_000),
  'gpt-5-nano': openai(0.025, 0.0025, 0.2, 128_000),
  // OpenAI: o-series. Standard o1 15.00 / 7.50 / 60.00; o3 2.00 / 0.50 / 8.00 (since 2025-06-10);
  // o3-mini 1.10 / 0.55 / 4.40; o4-mini 1.10 / 0.275 / 4.40.
  o1: openai(7.5, 7.5, 30, 100_000),
  o3: openai(1, 1, 4, 100_000),
  'o3-mini': openai(0.55, 0.55, 2.2, 100_000),
  'o4-mini': openai(0.55, 0.55, 2.2, 100_000),
  // OpenAI: embeddings. Standard 0.02, 0.13, 0.10 (input only).
  'text-embedding-3-small': openai(0.01, 0.01, 0, 0),
  'text-embedding-3-large': openai(0.065, 0.065, 0, 0),
  'text-embedding-ada-002': openai(0.05, 0.05, 0, 0),
  // Gemini 2.0. Standard Flash 0.10 / 0.025 (cache) / 0.40; Flash-Lite 0.075 / — / 0.30.
  'gemini-2.0-flash': gemini(0.05, 0.025, 0.2, 8_192),
  'gemini-2.0-flash-lite': gemini(0.0375, 0.0375, 0.15, 8_192),
  // Gemini 2.5. Standard Flash 0.30 / 0.03 (cache) / 2.50; Flash-Lite 0.10 / 0.01 / 0.40;
  // Pro (prompts ≤200k tokens) 1.25 / 0.125 / 10.00. Output prices include thinking tokens.
  'gemini-2.5-flash': gemini(0.15, 0.03, 1.25, 65_535),
  'gemini-2.5-flash-lite': gemini(0.05, 0.01, 0.2, 65_536),
  'gemini-2.5-pro': gemini(0.625, 0.125, 5, 65_536),
})
