import { costAt, type Pricing } from '../pricing/cost.js'
import type { FileEstimate } from '../types.js'
import { ESTIMATED_ENDPOINTS, tallyRequest } from './request-tokens.js'
import { type SamplingOptions, TextCounter } from './text-counter.js'
import { counterFor, type TokenizerName, tokenizerFor } from './tokenizers.js'

/** The most output a request may produce when neither it nor the price table says: an estimate's documented default. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 16_384

/**
 * Sums a batch input file's estimate one request at a time, as the upload's validator reads each
 * line: no second pass, nothing of the file kept but the counts (and a bounded cache of repeated
 * texts). The tokenizers must be loaded (`loadTokenizers`) before the first request is added.
 */
export class FileEstimator {
  private tokenizer: TokenizerName | undefined
  private text: TextCounter | undefined
  private model = ''
  private url = ''
  private requests = 0
  private fixedTokens = 0
  private boundedOutput = 0
  private unboundedOutputs = 0
  private broken = false

  constructor(private readonly sampling: SamplingOptions = {}) {}

  /** Adds one request line that the validator accepted. Never throws: a line it cannot count costs the file its estimate, not its upload. */
  add(url: string, body: Record<string, unknown>): void {
    if (this.broken) return
    try {
      this.addRequest(url, body)
    } catch {
      this.broken = true
    }
  }

  private addRequest(url: string, body: Record<string, unknown>): void {
    if (!this.text) {
      this.model = typeof body.model === 'string' ? body.model : ''
      this.url = url
      this.tokenizer = tokenizerFor(this.model)
      this.text = new TextCounter(counterFor(this.tokenizer), this.sampling)
    }
    this.requests++
    if (!ESTIMATED_ENDPOINTS.has(url)) return
    const tally = tallyRequest(url, body, this.text, this.tokenizer as TokenizerName)
    this.fixedTokens += tally.fixedTokens
    this.boundedOutput += tally.boundedOutput
    this.unboundedOutputs += tally.unboundedOutputs
  }

  /** The estimate, priced with `pricing`; null for a file of no requests, of an endpoint not billed by tokens, or that could not be counted. */
  result(pricing: Pick<Pricing, 'priceOf'>): FileEstimate | null {
    if (this.broken || !this.text || !this.tokenizer || !ESTIMATED_ENDPOINTS.has(this.url)) return null
    const price = pricing.priceOf(this.model)
    const inputTokens = this.fixedTokens + this.text.total()
    const modelMax = price?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS
    const maxOutputTokens = this.boundedOutput + this.unboundedOutputs * modelMax
    return {
      model: this.model,
      requests: this.requests,
      inputTokens,
      tokenizer: this.tokenizer,
      sampledShare: Number(this.text.extrapolatedShare().toFixed(4)),
      maxOutputTokens,
      minCost: price
        ? costAt(price, { inputTokens, cachedTokens: inputTokens, outputTokens: 0, reasoningTokens: 0 })
        : null,
      maxCost: price
        ? costAt(price, { inputTokens, cachedTokens: 0, outputTokens: maxOutputTokens, reasoningTokens: 0 })
        : null,
    }
  }
}
