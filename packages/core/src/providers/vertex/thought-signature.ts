/**
 * How a Gemini thought signature travels through OpenAI's tool calls.
 *
 * Gemini 3 gives each function call turn an opaque `thoughtSignature` and refuses the next request when a
 * call of the current turn comes back without it (400 "Function call is missing a thought_signature").
 * OpenAI's tool calls have no field for it, so it rides in the tool call's `id`, after
 * {@link THOUGHT_SIGNATURE_SEPARATOR}: `call_…__thought__<signature>`, LiteLLM's convention. The id is the one
 * thing every client sends back unchanged (in the assistant message's `tool_calls` and each tool message's
 * `tool_call_id`), whatever it does with fields it does not know.
 */

/** What separates a tool call id from the thought signature it carries. */
export const THOUGHT_SIGNATURE_SEPARATOR = '__thought__'

/** The tool call id carrying `signature`, or `id` itself when there is none. */
export function withThoughtSignature(id: string, signature: unknown): string {
  return typeof signature === 'string' && signature !== '' ? `${id}${THOUGHT_SIGNATURE_SEPARATOR}${signature}` : id
}

/** The thought signature a tool call id carries, or undefined. */
export function thoughtSignatureOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined
  const at = id.indexOf(THOUGHT_SIGNATURE_SEPARATOR)
  const signature = at === -1 ? '' : id.slice(at + THOUGHT_SIGNATURE_SEPARATOR.length)
  return signature === '' ? undefined : signature
}
