import { createHash } from 'node:crypto'
import type { Agent } from 'undici'
import { type AttemptOutcome, DeliveryQueue } from '../events/delivery-queue.js'
import type { EventSink } from '../events/outbox.js'
import type { BatchEvent } from '../events/types.js'
import type { Logger } from '../observability/logger.js'
import type { DueQueue } from '../store/due-queue.js'
import type { LeaseStore } from '../store/leases.js'
import type { RecordStore } from '../store/records.js'
import { jitter } from '../util/jitter.js'
import { withTimeout } from '../util/with-timeout.js'
import { createGuardedAgent } from './guarded-agent.js'
import type { ResolvedWebhookOptions, WebhookEndpoint } from './options.js'
import { type WebhookMessage, webhookMessageOf } from './payload.js'
import { displayUrl, sendWebhook, WebhookDeliveryError } from './send.js'

/** A webhook waiting in the store. No URL or secret is kept: endpoints are asked for at each attempt. */
interface PendingWebhook {
  message: WebhookMessage
  /** Keys ({@link endpointKey}) of the endpoints still owed it; null until the first attempt asks for them. */
  remaining: string[] | null
  attempts: number
  /** When it was stored: the retry horizon counts from here. */
  storedAtMs: number
}

/** What a webhook outbox runs on. */
export interface WebhookOutboxDeps {
  store: RecordStore
  queue: DueQueue
  leases: LeaseStore
  holder: string
  reportError(error: unknown, context: string): void
  logger: Logger
}

/**
 * Sends a batch's end to its owner's webhook endpoints, signed, at least once: each webhook is a
 * delivery of its own in the store (apart from the callbacks'), retried per endpoint with
 * exponential backoff and jitter until it is answered 2xx or its retry horizon has passed, then
 * reported to `onError`. An endpoint that cannot work (refused address, malformed URL or secret) is
 * reported at once.
 */
export class WebhookOutbox implements EventSink {
  private readonly deliveries: DeliveryQueue<PendingWebhook>
  private readonly agent: Agent

  constructor(
    private readonly options: ResolvedWebhookOptions,
    private readonly deps: WebhookOutboxDeps,
  ) {
    this.agent = createGuardedAgent({
      allowed: options.allowAddresses,
      connectTimeoutMs: options.timeoutMs,
    })
    this.deliveries = new DeliveryQueue<PendingWebhook>({
      kinds: { pending: 'webhook', done: 'webhook-done' },
      store: deps.store,
      queue: deps.queue,
      leases: deps.leases,
      holder: deps.holder,
      // An attempt asks for the endpoints, then sends to them at once: two timeouts at most.
      leaseMs: Math.max(60_000, 4 * options.timeoutMs),
      pollIntervalMs: options.pollIntervalMs,
      attempt: (_id, state) => this.attempt(state),
      reportError: deps.reportError,
    })
  }

  async enqueue(event: BatchEvent): Promise<void> {
    const message = webhookMessageOf(event)
    if (!message) return
    await this.deliveries.enqueue(message.webhookId, { message, remaining: null, attempts: 0, storedAtMs: Date.now() })
  }

  start(): void {
    this.deliveries.start()
  }

  /** Stops sending; a send under way is cut off and stays due, for the next start or another instance. */
  async stop(): Promise<void> {
    const stopped = this.deliveries.stop()
    await this.agent.destroy()
    await stopped
  }

  private async attempt(state: PendingWebhook): Promise<AttemptOutcome<PendingWebhook>> {
    const { message } = state
    const attempts = state.attempts + 1
    const about = `webhook ${message.webhookId} (${message.event.type} of ${message.event.data.id})`
    let endpoints: Map<string, WebhookEndpoint>
    try {
      endpoints = await this.endpointsOf(message.owner)
    } catch (error) {
      return this.retry(state, attempts, [{ error, context: `asking for the webhook endpoints of ${about}` }])
    }
    const targets = state.remaining ?? [...endpoints.keys()]
    const gone = targets.filter((key) => !endpoints.has(key)).length
    if (gone > 0) {
      this.deps.logger.info(
        { webhookId: message.webhookId, endpoints: gone },
        'batchkit webhook endpoints removed before delivery; not sent to them',
      )
    }
    const failures: { key: string; error: unknown; context: string }[] = []
    await Promise.all(
      targets.map(async (key) => {
        const endpoint = endpoints.get(key)
        if (!endpoint) return
        try {
          await sendWebhook(this.agent, endpoint, message, this.options.timeoutMs)
        } catch (error) {
          const context = `delivering ${about} to ${displayUrl(endpoint.url)}`
          if (error instanceof WebhookDeliveryError && error.permanent) {
            this.deps.reportError(error, `${context}; refused, not retried`)
          } else {
            failures.push({ key, error, context })
          }
        }
      }),
    )
    if (failures.length === 0) return { done: true }
    return this.retry({ ...state, remaining: failures.map((f) => f.key) }, attempts, failures)
  }

  /** Schedules the next attempt, or gives up and reports each failure once the next would fall past the horizon. */
  private retry(
    state: PendingWebhook,
    attempts: number,
    failures: { error: unknown; context: string }[],
  ): AttemptOutcome<PendingWebhook> {
    const delay = jitter(Math.min(this.options.retryDelayMs * 2 ** (attempts - 1), this.options.maxRetryDelayMs))
    if (Date.now() + delay - state.storedAtMs > this.options.retryHorizonMs) {
      for (const { error, context } of failures) {
        this.deps.reportError(error, `${context}; given up after ${attempts} attempts`)
      }
      return { done: true }
    }
    this.deps.logger.warn(
      {
        webhookId: state.message.webhookId,
        attempts,
        retryInMs: delay,
        failures: failures.map((f) => errorText(f.error)),
      },
      'batchkit webhook delivery failed; will retry',
    )
    return { done: false, state: { ...state, attempts }, retryInMs: delay }
  }

  /** The owner's endpoints by key, asked of the user's hook within the timeout. */
  private async endpointsOf(owner: string): Promise<Map<string, WebhookEndpoint>> {
    const { timeoutMs } = this.options
    const list = await withTimeout(
      () => this.options.endpoints(owner),
      timeoutMs,
      `webhooks.endpoints did not settle within ${timeoutMs} ms`,
    )
    if (!Array.isArray(list)) throw new TypeError('webhooks.endpoints must return an array of { url, secrets }')
    const endpoints = new Map<string, WebhookEndpoint>()
    for (const endpoint of list as unknown[]) {
      if (!isEndpoint(endpoint)) throw new TypeError('webhooks.endpoints must return an array of { url, secrets }')
      endpoints.set(endpointKey(endpoint.url), endpoint)
    }
    return endpoints
  }
}

/** An endpoint's name in the store: a hash of its URL, so a token in its query is never stored. */
function endpointKey(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 32)
}

function isEndpoint(value: unknown): value is WebhookEndpoint {
  const endpoint = value as Partial<WebhookEndpoint> | null
  return typeof endpoint?.url === 'string' && Array.isArray(endpoint.secrets)
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
