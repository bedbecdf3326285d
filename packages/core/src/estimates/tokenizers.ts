/** A way of counting the input tokens of one model's text. */
export type TokenizerName = 'o200k_base' | 'cl100k_base' | 'chars/4'

/** Counts the tokens of one text. */
export type CountTokens = (text: string) => number

type Encoding = { countTokens(text: string, options: { disallowedSpecial: Set<string> }): number }

// Text that spells a special token (`<|endoftext|>`) is plain text to the provider: count it as such.
const AS_TEXT = { disallowedSpecial: new Set<string>() }

const loaded = new Map<TokenizerName, CountTokens>()
let loading: Promise<void> | undefined

/** Models counted with OpenAI's older `cl100k_base`: GPT-4 (not 4o / 4.1 / 4.5), GPT-3.5, and the embeddings and moderation models. */
const CL100K = /^(?:gpt-4(?:-|$)|gpt-3\.5|text-embedding-|text-moderation|davinci-002|babbage-002)/
/** Gemini names as Vertex AI, the Gemini API and Vertex's OpenAI-compatible endpoint write them. */
const GEMINI = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?(?:publishers\/google\/)?(?:models\/)?(?:google\/)?gemini-/

/**
 * The tokenizer for a model's name: `o200k_base` for OpenAI's current models (GPT-4o, 4.1, 4.5, 5,
 * the o-series, and any name it does not recognise, as OpenAI's own tiktoken does for new models),
 * `cl100k_base` for GPT-4, GPT-3.5 and the embeddings models, and Google's rule of about four
 * characters a token for Gemini, whose tokenizer is not published for JavaScript.
 * A fine-tune (`ft:gpt-4o-mini:org::id`) counts as its base model.
 */
export function tokenizerFor(model: string): TokenizerName {
  const name = model.startsWith('ft:') ? model.slice(3) : model
  if (GEMINI.test(name)) return 'chars/4'
  return CL100K.test(name) ? 'cl100k_base' : 'o200k_base'
}

/**
 * Loads both OpenAI encodings once per process (about 50 MB of memory): the first batch upload does,
 * and waits for it; a server may call it at start so that no upload waits. Safe to call again.
 */
export function loadTokenizers(): Promise<void> {
  loading ??= Promise.all([import('gpt-tokenizer/encoding/o200k_base'), import('gpt-tokenizer/encoding/cl100k_base')])
    .then(([o200k, cl100k]) => {
      loaded.set('o200k_base', countWith(o200k))
      loaded.set('cl100k_base', countWith(cl100k))
    })
    .catch((error: unknown) => {
      loading = undefined
      throw error
    })
  return loading
}

/** Whether {@link loadTokenizers} has finished, so counting can run synchronously. */
export function tokenizersLoaded(): boolean {
  return loaded.size > 0
}

/** The counting function of a tokenizer; the OpenAI ones only once {@link loadTokenizers} has resolved. */
export function counterFor(name: TokenizerName): CountTokens {
  if (name === 'chars/4') return approximateGeminiTokens
  const count = loaded.get(name)
  if (!count) throw new Error(`the ${name} tokenizer is not loaded yet`)
  return count
}

/** Google's documented rule of thumb for Gemini: about four characters a token. */
function approximateGeminiTokens(text: string): number {
  return Math.ceil(text.length / 4)
}

function countWith(module: unknown): CountTokens {
  const encoding = ((module as { default?: Encoding }).default ?? module) as Encoding
  return (text) => encoding.countTokens(text, AS_TEXT)
}
