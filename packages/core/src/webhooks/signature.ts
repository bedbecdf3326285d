import { Webhook } from 'standardwebhooks'

/** A secret that is not a Standard Webhooks secret (`whsec_` and base64). The message never shows the secret. */
export class InvalidWebhookSecretError extends Error {
  readonly code = 'BATCHKIT_WEBHOOK_SECRET_INVALID'

  constructor(position: number) {
    super(`webhook secret #${position + 1} is not a Standard Webhooks secret ('whsec_' followed by base64)`)
    this.name = 'InvalidWebhookSecretError'
  }
}

/** The Standard Webhooks headers of one attempt. */
export interface WebhookHeaders {
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

/**
 * Signs `body` for an attempt at `timestampSeconds` with every secret (Standard Webhooks `v1`, an
 * HMAC-SHA256 of `id.timestamp.body` keyed by the secret's decoded bytes), the signatures
 * space-separated, so a receiver holding any one of the secrets verifies it.
 */
export function signWebhook(
  secrets: readonly string[],
  webhookId: string,
  timestampSeconds: number,
  body: string,
): WebhookHeaders {
  if (secrets.length === 0) throw new InvalidWebhookSecretError(0)
  const signatures = secrets.map((secret, position) => {
    let signer: Webhook
    try {
      if (typeof secret !== 'string' || !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) throw new Error('not whsec_')
      signer = new Webhook(secret)
    } catch {
      // The library's message could echo the secret; ours never does.
      throw new InvalidWebhookSecretError(position)
    }
    return signer.sign(webhookId, new Date(timestampSeconds * 1000), body)
  })
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatures.join(' '),
  }
}
