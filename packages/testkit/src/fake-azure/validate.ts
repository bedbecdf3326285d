import { type InputValidation, validateBatchInput } from '../fake-openai/validate-input.js'

/** Azure accepts batch urls with or without OpenAI's `/v1` prefix: `/chat/completions` is `/v1/chat/completions`. */
export const withoutV1 = (url: string): string => (url.startsWith('/v1/') ? url.slice(3) : url)

/**
 * Validates a batch input file as Azure OpenAI does while a batch is `validating`: OpenAI's line checks
 * (with Azure's `url_mismatch` code, and urls compared without `/v1`), then the whole file: at most
 * `maxRequests` requests (`too_many_tasks`), and a `body.model` naming one of the resource's
 * Global-Batch deployments (`model_not_found`).
 */
export async function validateAzureInput(
  path: string,
  endpoint: string,
  deployments: readonly string[],
  maxRequests: number,
): Promise<InputValidation> {
  const result = await validateBatchInput(path, endpoint, {
    urlMatches: (url, batchEndpoint) => withoutV1(url) === withoutV1(batchEndpoint),
    urlMismatchCode: 'url_mismatch',
  })
  if (!result.ok) return result
  if (result.total > maxRequests) {
    return fail(
      'too_many_tasks',
      null,
      `The number of requests in the input file (${result.total}) exceeds the limit of ${maxRequests} per batch.`,
    )
  }
  if (result.model === null || !deployments.includes(result.model)) {
    return fail(
      'model_not_found',
      'body.model',
      `The provided model deployment '${result.model}' does not exist in the AOAI resource, or is not a Global-Batch deployment.`,
    )
  }
  return result
}

function fail(code: string, param: string | null, message: string): InputValidation {
  return { ok: false, errors: [{ code, message, param, line: null }] }
}
