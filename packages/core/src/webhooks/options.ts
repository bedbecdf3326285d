import { ALLOWABLE_ADDRESS_KINDS, type AllowedAddressKind } from './address-policy.js'

/** Where an owner's webhooks go, and the secrets they are signed with. */
export interface WebhookEndpoint {
  /** An `https:` (or `http:`) URL without credentials in it; its query is kept but never logged. */
  url: string
  /**
   * Standard Webhooks secrets, `whsec_` and base64 (24 to 64 random bytes is usual). Each delivery
   * carries one signature per secret, so during a rotation list the new and the old one: a receiver
   * verifying with either accepts it. Never logged, never stored by batchkit.
   */
  secrets: readonly string[]
}

/** Signed webhooks to each owner's endpoints when a batch ends, as OpenAI sends them. */
export interface WebhookOptions {
  /**
   * The endpoints of an owner (a tenant, as `authenticate` names it; `default` without one). Asked
   * at every delivery attempt, so a change (a new secret, an endpoint removed) applies to deliveries
   * already under way; cache it if it is costly. A throw or reject counts as a failed attempt.
   */
  endpoints(owner: string): readonly WebhookEndpoint[] | Promise<readonly WebhookEndpoint[]>
  /**
   * Non-public addresses webhooks may go to besides public ones: `loopback` (127/8, ::1),
   * `private` (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) and `link-local` (169.254/16,
   * fe80::/10). Checked on the address connected to, after DNS. Unspecified, multicast,
   * documentation and other reserved ranges are never allowed. @default [] (public addresses only)
   */
  allowAddresses?: readonly AllowedAddressKind[]
  /** How long one delivery (connecting, sending, the answer) and one `endpoints` call may take. @default 10000 */
  timeoutMs?: number
  /** The first retry's delay; each next one doubles, up to `maxRetryDelayMs`, spread by ±20%. @default 5000 */
  retryDelayMs?: number
  /** The longest delay between two attempts. @default 3600000 (an hour) */
  maxRetryDelayMs?: number
  /**
   * How long after the event a failing delivery is retried before it is given up and reported to
   * `onError`. @default 259200000 (72 hours, as OpenAI)
   */
  retryHorizonMs?: number
  /** How often due deliveries are looked for. @default 1000 */
  pollIntervalMs?: number
}

/** {@link WebhookOptions} with every default filled in. */
export type ResolvedWebhookOptions = Required<WebhookOptions>

/** Fills in the defaults; throws on a setting that cannot work, at start rather than at the first delivery. */
export function resolveWebhookOptions(options: WebhookOptions): ResolvedWebhookOptions {
  if (typeof options.endpoints !== 'function') throw new Error('webhooks.endpoints must be a function')
  const allowAddresses = options.allowAddresses ?? []
  for (const kind of allowAddresses) {
    if (!ALLOWABLE_ADDRESS_KINDS.includes(kind)) {
      throw new Error(`webhooks.allowAddresses takes ${ALLOWABLE_ADDRESS_KINDS.join(', ')}; not '${kind}'`)
    }
  }
  const resolved = {
    endpoints: options.endpoints,
    allowAddresses,
    timeoutMs: options.timeoutMs ?? 10_000,
    retryDelayMs: options.retryDelayMs ?? 5000,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 60 * 60_000,
    retryHorizonMs: options.retryHorizonMs ?? 72 * 60 * 60_000,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
  }
  for (const name of ['timeoutMs', 'retryDelayMs', 'maxRetryDelayMs', 'retryHorizonMs', 'pollIntervalMs'] as const) {
    const value = resolved[name]
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`webhooks.${name} must be a positive number, not ${value}`)
  }
  return resolved
}
