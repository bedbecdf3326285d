import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Keyv } from 'keyv'
import type { Authenticate } from './auth/api-keys.js'
import { FailedRequests } from './batches/failed-requests.js'
import { DEFAULT_FRESHNESS_MS, FreshnessWindow } from './batches/freshness.js'
import { BatchService } from './batches/service.js'
import { type BudgetOptions, type BudgetStatus, Budgets } from './budgets/budgets.js'
import type { SamplingOptions } from './estimates/text-counter.js'
import { type DeliveryOptions, EventOutbox } from './events/outbox.js'
import type { BatchEventCallback } from './events/types.js'
import { type ErrorReporter, FileService } from './files/service.js'
import { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from './files/upload-limits.js'
import { createHttpHandler, type HttpHandler } from './http/handler.js'
import { IdempotencyKeys } from './intents/idempotency.js'
import { type Intent, IntentLog } from './intents/intent-log.js'
import { IntentReconciler, type ReconcileOptions } from './intents/reconciler.js'
import { type Logger, SILENT_LOGGER } from './observability/logger.js'
import { observeGauges, recordBatchCreated } from './observability/telemetry.js'
import { createPricing, type PriceOverride } from './pricing/cost.js'
import { ProviderRegistry } from './providers/registry.js'
import type { ModelRoute } from './providers/routing.js'
import type { QueueRetryOptions } from './providers/split/queue-retry.js'
import type { RequestRetryOptions } from './providers/split/request-retries.js'
import type { Provider } from './providers/types.js'
import { type SpendQuery, type SpendReport, SpendReporter } from './spend/spend-report.js'
import { adapterOf, makeStoreStrict } from './store/adapters.js'
import { type Coordination, coordinationFor } from './store/create-index.js'
import { DueQueue } from './store/due-queue.js'
import { DEFAULT_STORE_TIMEOUT_MS, StoreGuard } from './store/guard.js'
import { guardCoordination } from './store/guarded-coordination.js'
import { RecordStore } from './store/records.js'
import { createdEvent, createFinisher } from './tracking/finish.js'
import { BatchTracker, type FinishBatch, type TrackingOptions } from './tracking/tracker.js'
import { resolveWebhookOptions, type WebhookOptions } from './webhooks/options.js'
import { WebhookOutbox } from './webhooks/webhook-outbox.js'

/** Options of {@link createBatchKit}. */
export interface BatchKitOptions {
  /**
   * Where records live: any Keyv instance, best one of its own. batchkit makes it report failures
   * (Keyv's `throwOnErrors`; for `@keyv/redis` also the adapter's `throwOnErrors` and node-redis's
   * `disableOfflineQueue`), so a store outage is a 503 rather than a false "not found".
   * @default an in-memory Keyv (lost on restart)
   */
  store?: Keyv
  /**
   * How long one store operation (a record read or write, a list read, a lease) may take before it
   * counts as failed: an API call then answers 503 `store_unavailable` instead of waiting for a
   * store that does not answer, and background work tries again later. @default 3000
   */
  storeTimeoutMs?: number
  /** The upstream services by name, such as `{ openai: openai({ apiKey }) }`. */
  providers: Record<string, Provider>
  /** The provider for uploads when several are configured and no model list applies. @default the first */
  defaultProvider?: string
  /**
   * Which provider runs each model, and under what name: `[{ model: 'gpt-4o-mini', provider: 'azure',
   * providerModel: 'my-deployment' }, { model: 'gemini-*', provider: 'vertex' }]`. An upload whose model
   * matches no entry is refused. @default every upload to the default provider
   */
  models?: ModelRoute[]
  /** Decides who is calling. @default none: every call shares the owner `default` */
  authenticate?: Authenticate
  /**
   * Upload limits: batchkit's own, for the whole file. A batch file above its provider's limits for one
   * batch (OpenAI's 50,000 requests and 200 MB) but within these is kept upstream in parts and its batch
   * runs as one provider batch per part, seen by the client as one (docs/big-jobs.md).
   * @default OpenAI's: 200 MB and 50,000 requests per batch file (the provider's request limit when it
   * is larger, as Azure's 100,000), 512 MB per other file
   */
  limits?: Partial<UploadLimits>
  /**
   * How a batch, or a part of a big one, that the provider turns down because its queue is full
   * (OpenAI's per-model enqueued-token limit, `token_limit_exceeded`) waits and is submitted again
   * instead of failing; `false` lets it fail as the provider says (docs/big-jobs.md).
   * @default one minute, doubling to 30 minutes, at most 40 times
   */
  queueRetry?: QueueRetryOptions | false
  /**
   * Automatic retries of requests that failed for a transient reason (a rate limit, a server error or
   * timeout of the provider's): once a batch's provider batches have ended, those requests run again
   * as a follow-up provider batch of the same batch, up to `attempts` rounds (docs/big-jobs.md). Needs
   * tracking. @default off
   */
  requestRetries?: RequestRetryOptions
  /** Receive `acreate_batch` when a batch is created and `batch_success` (or failed, cancelled, expired) when it ends. */
  callbacks?: BatchEventCallback[]
  /** How events are delivered to the callbacks: timeouts and retries. */
  delivery?: DeliveryOptions
  /**
   * Signed webhooks (`batch.completed`, `batch.failed`, `batch.cancelled`, `batch.expired`) to each
   * owner's endpoints, as OpenAI sends them, so `openai`'s `webhooks.unwrap` verifies them; see
   * docs/webhooks.md. @default none
   */
  webhooks?: WebhookOptions
  /** How unfinished batches are followed to their end. */
  tracking?: TrackingOptions
  /**
   * How old a batch read from the store may be before a read asks its provider again (ms). Reads
   * always answer from the store at once; an unfinished batch older than this gets one background
   * refresh, shared by every reader and instance, so a polling client sees a change within about one
   * window and one poll. Shorter shows changes sooner; longer makes fewer provider calls (at most one
   * per unfinished batch per window, however many clients poll). @default 5000
   */
  freshnessMs?: number
  /** How creates that a crash cut short are found and finished or undone; runs where tracking runs. */
  reconcile?: ReconcileOptions
  /** Batch prices per model, over or beside the built-in table (USD per million tokens). */
  prices?: Record<string, PriceOverride>
  /**
   * A structured logger with pino's methods. Without one batchkit logs nothing, but still warns of
   * an unpriced model through `process.emitWarning` (code `BATCHKIT_UNPRICED_MODEL`). @default silent
   */
  logger?: Logger
  /**
   * Told about failures no caller can be shown, such as a failed clean-up or callback.
   * @default the logger's `error` when a logger is given, else a line on stderr
   */
  onError?: ErrorReporter
  /** The lists and leases beside the records. @default chosen to fit the store (Redis, PostgreSQL, or this process) */
  coordination?: Coordination
  /**
   * Cost estimates of batch input files, worked out as they upload (see docs/budgets-and-estimates.md).
   * @default on, with the sampling defaults of {@link EstimateOptions}
   */
  estimates?: EstimateOptions
  /**
   * Per-owner spending limits per calendar month (UTC): `POST /batches` holds the input file's
   * estimated upper bound against the limit, atomically in the store, and refuses a batch that
   * would pass it with 429 `insufficient_quota`. See docs/budgets-and-estimates.md. @default none
   */
  budgets?: BudgetOptions
}

/** How batch input files are estimated while they upload. */
export interface EstimateOptions extends SamplingOptions {
  /** Whether uploads are estimated at all; budgets need estimates. @default true */
  enabled?: boolean
}

/** An OpenAI-compatible Files and Batches API: typed services for server code, and an HTTP handler for adapters. */
export interface BatchKit {
  /** Files of a principal: `create`, `retrieve`, `list`, `delete`, `content`, and `estimate` of a batch input file. */
  readonly files: FileService
  /** Batches of a principal: `create`, `retrieve`, `list`, `cancel`. */
  readonly batches: BatchService
  /** The wire format, for adapters. */
  readonly http: HttpHandler
  /** Whether an `authenticate` hook is configured; without one every caller shares one owner. */
  readonly authenticated: boolean
  /** Whether several server instances may share this kit's store (Redis or PostgreSQL). */
  readonly multiInstanceSafe: boolean
  /** Spending budgets: `status(owner, period?)` gives an owner's limit, spent and held amounts for a month. */
  readonly budgets: { status(owner: string, period?: string): Promise<BudgetStatus> }
  /**
   * What batches billed from `from` to `to` cost, of one owner or all, by model, UTC day or owner,
   * from the billing records: exact to the token and the cent. See docs/cost-tracking.md.
   */
  spend(query: SpendQuery): Promise<SpendReport>
  /** Stops following batches and delivering events, and closes provider connections; safe to call twice. The store is the caller's. */
  close(): Promise<void>
}

/**
 * Creates the API over a store and providers, and starts following batches and delivering events
 * in the background; mount `kit.http` with an adapter, or call the services directly.
 */
export function createBatchKit(options: BatchKitOptions): BatchKit {
  const keyv = options.store ?? new Keyv()
  makeStoreStrict(keyv)
  const logger = options.logger ?? SILENT_LOGGER
  const reportError: ErrorReporter =
    options.onError ?? (options.logger ? loggerReporter(options.logger) : stderrReporter)
  const guard = new StoreGuard(storeTimeout(options.storeTimeoutMs), reportError)
  const { index, leases, ledger } = guardCoordination(options.coordination ?? coordinationFor(keyv), guard)
  const retryAttempts = options.requestRetries?.attempts ?? 0
  if (!Number.isInteger(retryAttempts) || retryAttempts < 0) {
    throw new Error(`requestRetries.attempts must be a whole number, 0 or more, not ${retryAttempts}`)
  }
  if (retryAttempts > 0 && options.tracking?.enabled === false) {
    throw new Error('requestRetries need tracking: the tracker runs the follow-up rounds')
  }
  if (options.budgets && options.estimates?.enabled === false) {
    throw new Error('budgets need estimates: remove estimates: { enabled: false }, or budgets')
  }
  const budgets = new Budgets(ledger, options.budgets)
  const multiInstanceSafe = index.shared && leases.shared && (!options.budgets || ledger.shared)
  if (!multiInstanceSafe && !(adapterOf(keyv) instanceof Map)) warnSingleInstance(options.logger)
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  const store = new RecordStore(keyv, index, guard)
  const spend = new SpendReporter(store)
  const providers = new ProviderRegistry(options.providers, {
    defaultName: options.defaultProvider,
    routes: options.models,
    queueRetry: options.queueRetry,
    requestRetries: options.requestRetries,
  })
  const pricing = createPricing(options.prices, {
    // Without a logger, the pricing's own default warns through the process.
    onUnpricedModel: options.logger
      ? (model) => logger.warn({ model }, 'batchkit has no price for this model: its cost is null')
      : undefined,
  })
  const queues = {
    webhooks: new DueQueue(index, 'webhooks'),
    callbacks: new DueQueue(index, 'outbox'),
    tracking: new DueQueue(index, 'tracking'),
  }
  const webhooks =
    options.webhooks &&
    new WebhookOutbox(resolveWebhookOptions(options.webhooks), {
      store,
      queue: queues.webhooks,
      leases,
      holder,
      reportError,
      logger,
    })
  const outbox = new EventOutbox(
    options.callbacks ?? [],
    store,
    queues.callbacks,
    leases,
    holder,
    options.delivery ?? {},
    reportError,
    logger,
    webhooks ? [webhooks] : [],
  )
  const intents = new IntentLog(
    store,
    new DueQueue(index, 'intents'),
    leases,
    holder,
    options.reconcile?.graceMs ?? 120_000,
    reportError,
  )
  const idempotency = new IdempotencyKeys(store, leases, intents, holder, reportError)
  const uploadLimits = { ...DEFAULT_UPLOAD_LIMITS, ...options.limits }
  const files = new FileService(
    store,
    providers,
    uploadLimits,
    reportError,
    intents,
    idempotency,
    options.limits?.maxBatchRequests === undefined,
    options.estimates?.enabled === false ? undefined : { pricing, sampling: options.estimates ?? {} },
  )
  let tracker: BatchTracker | undefined
  const finish = createFinisher({
    store,
    providers,
    pricing,
    outbox,
    runDeferredDelete: (id) => files.runDeferredDelete(id),
    budgets,
  })
  // Nudges run in the background; `close` waits for them, so none touches a store the caller has closed.
  const nudges = new Set<Promise<void>>()
  const settle: FinishBatch = (batch) =>
    finish(batch).catch((error: unknown) => {
      // The tracker bills it on its next poll: ask for that now.
      const nudge = (tracker?.nudge(batch.id) ?? Promise.resolve())
        .catch((e) => reportError(e, `nudging the tracker for ${batch.id}`))
        .finally(() => nudges.delete(nudge))
      nudges.add(nudge)
      throw error
    })
  const batches = new BatchService(
    store,
    providers,
    reportError,
    {
      async created(batch, requestCount) {
        // Followed first: a create undone because this failed has announced nothing.
        await tracker?.follow(batch)
        await outbox.emit(createdEvent(batch, requestCount))
        recordBatchCreated({
          provider: batch.provider,
          providerKind: providers.get(batch.provider).kind,
          model: batch.model,
          endpoint: batch.endpoint,
        })
      },
      settle,
    },
    intents,
    idempotency,
    new FreshnessWindow(leases, holder, options.freshnessMs ?? DEFAULT_FRESHNESS_MS),
    new FailedRequests(store, files, uploadLimits.maxLineBytes, reportError),
    budgets,
  )
  const reconciler = new IntentReconciler(
    intents,
    (intent: Intent) => (intent.kind === 'batch' ? batches.settleIntent(intent) : files.settleIntent(intent)),
    options.reconcile?.intervalMs ?? 10_000,
    reportError,
    logger,
  )
  tracker = new BatchTracker(
    batches,
    store,
    queues.tracking,
    leases,
    holder,
    finish,
    options.tracking ?? {},
    reportError,
    logger,
    (provider) => providers.kindOf(provider),
  )
  if (options.tracking?.enabled !== false) {
    tracker.start()
    reconciler.start()
  }
  outbox.start()
  const stopGauges = observeGauges({
    openBatches: () => queues.tracking.size(),
    eventsBacklog: async () => ({
      ...(options.callbacks?.length ? { callbacks: await queues.callbacks.size() } : {}),
      ...(webhooks ? { webhooks: await queues.webhooks.size() } : {}),
    }),
  })

  return {
    files,
    batches,
    http: createHttpHandler({ files, batches, authenticate: options.authenticate, reportError }),
    authenticated: options.authenticate !== undefined,
    multiInstanceSafe,
    budgets: { status: (owner, period) => budgets.status(owner, period) },
    spend: (query) => spend.report(query),
    close: once(async () => {
      stopGauges()
      await Promise.all([tracker?.stop(), outbox.stop(), reconciler.stop(), batches.idle()])
      await Promise.all(nudges)
      await providers.close()
    }),
  }
}

function storeTimeout(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_STORE_TIMEOUT_MS
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`storeTimeoutMs must be a positive number, not ${ms}`)
  return ms
}

/**
 * A store outside this process with lists and leases inside it: two instances on it would each keep
 * their own lists and leases, so say so loudly, to the logger and to the process.
 */
function warnSingleInstance(logger: Logger | undefined): void {
  const message =
    "batchkit keeps this store's lists and leases in this process (it is neither Redis nor PostgreSQL): " +
    'run one instance on it, or pass `coordination` to createBatchKit.'
  logger?.warn({ multiInstanceSafe: false }, message)
  process.emitWarning(message, { code: 'BATCHKIT_SINGLE_INSTANCE_STORE' })
}

/** Failures to the user's logger, as pino takes an error: under `err`. */
function loggerReporter(logger: Logger): ErrorReporter {
  return (error, context) => logger.error({ err: error, context }, `batchkit error while ${context}`)
}

function stderrReporter(error: unknown, context: string): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  process.stderr.write(`[batchkit] error while ${context}: ${message}\n`)
}

/** A function that runs `fn` the first time and returns that same promise after, so closing twice is harmless. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined
  return () => {
    result ??= fn()
    return result
  }
}
