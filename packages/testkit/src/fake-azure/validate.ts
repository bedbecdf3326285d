import { type InputValidation, validateBatchInput } from '../fake-openai/validate-input.js'
import { type AzureSurface, runsModel } from './api-versions.js'
import type { AzureDeployment } from './types.js'

/** Azure accepts batch urls with or without OpenAI's `/v1` prefix: `/chat/completions` is `/v1/chat/completions`. */
export const withoutV1 = (url: string): string => (url.startsWith('/v1/') ? url.slice(3) : url)

/**
 * Validates a batch input file as Azure OpenAI does while a batch is `validating`: OpenAI's line checks
 * (with Azure's `url_mismatch` code, and urls compared without `/v1`), then the whole file: at most
 * `maxRequests` requests (`too_many_tasks`), a `body.model` naming one of the resource's Global-Batch
 * deployments (`model_not_found`), whose model Global Batch runs on the API the batch was created on
 * (`invalid_request`: newer models are refused on the GA `api-version`).
 */
export async function validateAzureInput(
  path: string,
  endpoint: string,
  deployments: readonly AzureDeployment[],
  maxRequests: number,
  surface: AzureSurface,
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
  const deployment = deployments.find((candidate) => candidate.name === result.model)
  if (!deployment) {
    return fail(
      'model_not_found',
      'body.model',
      `The provided model deployment '${result.model}' does not exist in the AOAI resource, or is not a Global-Batch deployment.`,
    )
  }
  if (!runsModel(surface, deployment.model)) {
    return fail(
      'invalid_request',
      'body.model',
      `The model '${deployment.model}' of deployment '${deployment.name}' is not supported for Global Batch with api-version ${surface.apiVersion}. Use the v1 API or a newer preview api-version.`,
    )
  }
  return result
}

function fail(code: string, param: string | null, message: string): InputValidation {
  return { ok: false, errors: [{ code, message, param, line: null }] }
}
