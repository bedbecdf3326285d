import { type Dispatcher, request } from 'undici'
import { WebhookAddressRefusedError } from './guarded-agent.js'
import type { WebhookEndpoint } from './options.js'
import { type WebhookMessage, webhookBody } from './payload.js'
import { InvalidWebhookSecretError, signWebhook } from './signature.js'

/** How much of an endpoint's answer is read before the connection is let go. */
const MAX_ANSWER_BYTES = 64 * 1024

/**
 * A delivery that failed. `permanent` when trying again cannot help (the endpoint's address is
 * refused, its URL or a secret is malformed): it is reported at once instead of retried. The
 * message names the endpoint by origin and path only, never its query or a secret.
 */
export class WebhookDeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'WebhookDeliveryError'
  }
}

/** An endpoint's URL as it may be shown in errors and logs: scheme, host and path, without its query. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return '(an invalid URL)'
  }
}

/**
 * Sends one webhook to one endpoint, signed now with each of its secrets, and resolves when the
 * endpoint answers 2xx. Any other answer (redirects included, which are not followed), a network
 * failure or the timeout rejects with a retryable {@link WebhookDeliveryError}.
 */
export async function sendWebhook(
  dispatcher: Dispatcher,
  endpoint: WebhookEndpoint,
  message: WebhookMessage,
  timeoutMs: number,
): Promise<void> {
  const shown = displayUrl(endpoint.url)
  const url = endpointUrl(endpoint.url, shown)
  const body = webhookBody(message.event)
  let signed: ReturnType<typeof signWebhook>
  try {
    signed = signWebhook(endpoint.secrets, message.webhookId, Math.floor(Date.now() / 1000), body)
  } catch (error) {
    if (error instanceof InvalidWebhookSecretError)
      throw new WebhookDeliveryError(`webhook endpoint ${shown}: ${error.message}`, true)
    throw error
  }
  let statusCode: number
  try {
    const response = await request(url, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', 'user-agent': 'batchkit-webhooks/1', ...signed },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    statusCode = response.statusCode
    await response.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => undefined)
  } catch (error) {
    if (error instanceof WebhookAddressRefusedError) {
      throw new WebhookDeliveryError(`webhook endpoint ${shown}: ${error.message}`, true, { cause: error })
    }
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    throw new WebhookDeliveryError(`webhook endpoint ${shown} could not be reached (${reason})`, false)
  }
  if (statusCode < 200 || statusCode >= 300) {
    throw new WebhookDeliveryError(`webhook endpoint ${shown} answered ${statusCode}`, false)
  }
}

function endpointUrl(url: string, shown: string): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new WebhookDeliveryError(`webhook endpoint URL is not a URL: ${shown}`, true)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new WebhookDeliveryError(`webhook endpoint ${shown} is not an http: or https: URL`, true)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new WebhookDeliveryError(`webhook endpoint ${shown} has credentials in its URL; use its secrets`, true)
  }
  return parsed
}
