/** What batchkit needs to know of a Gemini model from its name. */

/** The model id of any spelling: `publishers/google/models/gemini-2.5-flash`, `google/gemini-2.5-flash@001` → `gemini-2.5-flash`. */
export function modelIdOf(model: string): string {
  return model.slice(model.lastIndexOf('/') + 1).split('@')[0] ?? ''
}

/** The Gemini version a model name says: `gemini-2.5-flash` → 2.5, `gemini-3-pro-preview` → 3; undefined for other models (tuned ones among them). */
export function geminiVersion(model: unknown): number | undefined {
  if (typeof model !== 'string') return undefined
  const match = /^gemini-(\d+)(?:\.(\d+))?(?:-|$)/.exec(modelIdOf(model))
  return match ? Number(`${match[1]}.${match[2] ?? '0'}`) : undefined
}

/**
 * The model as Vertex names it in a batch job. A resource name (`publishers/…`, `projects/…`) is kept; a
 * `{publisher}/{model}` name, as Vertex's own OpenAI-compatible endpoint spells it (`google/gemini-2.5-flash`),
 * becomes `publishers/{publisher}/models/{model}`; a bare id is Google's: `publishers/google/models/{id}`.
 */
export function modelResource(model: string): string {
  if (/^(projects|publishers)\//.test(model)) return model
  const publisher = /^([a-z0-9-]+)\/([^/]+)$/.exec(model)
  if (publisher) return `publishers/${publisher[1]}/models/${publisher[2]}`
  return `publishers/google/models/${model}`
}
