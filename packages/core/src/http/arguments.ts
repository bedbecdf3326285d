import { unrecognizedArgument } from '../errors.js'

/**
 * The JSON arguments of `POST /batches`: OpenAI's `CreateBatchRequest`, plus LiteLLM's
 * `custom_llm_provider`, which is accepted and ignored (the input file decides the provider).
 */
export const CREATE_BATCH_ARGUMENTS: ReadonlySet<string> = new Set([
  'input_file_id',
  'endpoint',
  'completion_window',
  'metadata',
  'output_expires_after',
  'custom_llm_provider',
])

/** `POST /batches/{id}/cancel` takes no arguments. */
export const CANCEL_BATCH_ARGUMENTS: ReadonlySet<string> = new Set()

/** Throws OpenAI's 400 for the first argument of `body` that is not `known`. */
export function refuseUnknownArguments(body: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const name of Object.keys(body)) if (!known.has(name)) throw unrecognizedArgument(name)
}
