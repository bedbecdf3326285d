import type { CountTokens } from './tokenizers.js'

/** How a {@link TextCounter} spends tokenizer time. */
export interface SamplingOptions {
  /** Characters of text tokenized in full, from the start of a file, before sampling starts. @default 262_144 */
  exactChars?: number
  /** After that, one long text in this many is tokenized; 1 tokenizes every text. @default 256 */
  sampleEvery?: number
}

const DEFAULT_EXACT_CHARS = 262_144
const DEFAULT_SAMPLE_EVERY = 256
/** Texts up to this long (roles, names, short prompts) are remembered with their count; looking up longer ones costs more than sampling them. */
const SHORT_TEXT = 256
const CACHE_ENTRIES = 65_536
/** Short texts remembered by length for the quickest look-up (a power of two). */
const RECENT = 16

/**
 * Counts the tokens of a file's texts, each exactly or, past a budget, by sampling. Short texts
 * (roles, names, short prompts) are tokenized once and remembered. Long texts are tokenized in full
 * for the first `exactChars` characters of the file; after that one long text in `sampleEvery` is,
 * and the others are counted at the tokens-per-character ratio of the texts tokenized so far in this
 * file. A BPE tokenizer runs at tens of MB/s, well below an upload's hundreds, so this keeps the
 * estimate within the upload's speed whatever the file holds.
 */
export class TextCounter {
  /** Tokens of texts counted exactly (tokenized, or remembered). */
  private exactTokens = 0
  private exactChars = 0
  /** Tokens and characters of the long texts tokenized: the ratio for the rest. */
  private sampledTokens = 0
  private sampledChars = 0
  /** Characters counted by the ratio rather than tokenized. */
  private extrapolatedChars = 0
  private longTexts = 0
  private readonly short = new Map<string, number>()
  private readonly recent: (string | undefined)[] = new Array(RECENT)
  private readonly recentTokens: number[] = new Array(RECENT).fill(0)
  private readonly exactBudget: number
  private readonly sampleEvery: number

  constructor(
    private readonly countTokens: CountTokens,
    options: SamplingOptions = {},
  ) {
    this.exactBudget = options.exactChars ?? DEFAULT_EXACT_CHARS
    this.sampleEvery = Math.max(1, Math.floor(options.sampleEvery ?? DEFAULT_SAMPLE_EVERY))
  }

  /** Adds one text. */
  add(text: string): void {
    const length = text.length
    if (length === 0) return
    if (length <= SHORT_TEXT) {
      // The same few short texts (roles) on every line: comparing them is cheaper than hashing them.
      const slot = length & (RECENT - 1)
      let tokens = this.recent[slot] === text ? this.recentTokens[slot] : this.short.get(text)
      if (tokens === undefined) {
        tokens = this.countTokens(text)
        if (this.short.size < CACHE_ENTRIES) this.short.set(text, tokens)
      }
      this.recent[slot] = text
      this.recentTokens[slot] = tokens
      this.exactTokens += tokens
      this.exactChars += length
      return
    }
    if (this.sampledChars >= this.exactBudget && this.longTexts++ % this.sampleEvery !== 0) {
      this.extrapolatedChars += length
      return
    }
    const tokens = this.countTokens(text)
    this.exactTokens += tokens
    this.exactChars += length
    this.sampledTokens += tokens
    this.sampledChars += length
  }

  /** The tokens of every text added. */
  total(): number {
    if (this.extrapolatedChars === 0) return this.exactTokens
    return this.exactTokens + Math.round((this.extrapolatedChars * this.sampledTokens) / this.sampledChars)
  }

  /** The share of characters counted by the ratio rather than tokenized, 0 to 1. */
  extrapolatedShare(): number {
    const all = this.exactChars + this.extrapolatedChars
    return all === 0 ? 0 : this.extrapolatedChars / all
  }
}
