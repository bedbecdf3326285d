import { SpanKind } from '@opentelemetry/api'
import { ApiError } from '../errors.js'
import { genAiProviderName, inSpan } from '../observability/telemetry.js'
import { type ModelRoute, ModelRouter } from './routing.js'
import type { QueueRetryOptions } from './split/queue-retry.js'
import type { RequestRetryOptions } from './split/request-retries.js'
import { SplittingProvider } from './split/splitting-provider.js'
import type { PartLimits } from './split/upload-parts.js'
import type { Provider } from './types.js'

/** How the providers are chosen among and wrapped. */
export interface RegistryOptions {
  /** The provider for uploads that no route names. @default the first */
  defaultName?: string
  /** Which provider runs each model. */
  routes?: readonly ModelRoute[]
  /** How batches turned down for a full queue are submitted again, or `false`. @default on */
  queueRetry?: QueueRetryOptions | false
  /** Follow-up rounds of requests that failed for a transient reason. @default off */
  requestRetries?: RequestRetryOptions
}

/** The configured providers by name, and the choice of one for a new upload. */
export class ProviderRegistry {
  private readonly byName: ReadonlyMap<string, Provider>
  private readonly defaultName: string
  private readonly router: ModelRouter

  constructor(
    providers: Record<string, Provider>,
    { defaultName, routes = [], queueRetry, requestRetries }: RegistryOptions = {},
  ) {
    this.byName = new Map(
      Object.entries(providers).map(([name, provider]) => [
        name,
        new SplittingProvider(traced(name, provider), partLimitsOf(provider), { queueRetry, requestRetries }),
      ]),
    )
    const first = this.byName.keys().next().value
    if (first === undefined) throw new TypeError('createBatchKit(): configure at least one provider')
    if (defaultName !== undefined && !this.byName.has(defaultName)) {
      throw new TypeError(`createBatchKit(): defaultProvider '${defaultName}' is not among the providers`)
    }
    this.defaultName = defaultName ?? first
    this.router = new ModelRouter(routes, new Set(this.byName.keys()), this.defaultName)
  }

  /** The provider that stored a record; its absence means the configuration lost a provider. */
  get(name: string): Provider {
    const provider = this.byName.get(name)
    if (!provider) {
      throw new ApiError(503, `The provider '${name}' that holds this object is not configured.`, {
        code: 'provider_not_configured',
        headers: { 'x-should-retry': 'false' },
      })
    }
    return provider
  }

  /** The kind of a configured provider (`openai`, `azure`, `vertex`); the name itself for one no longer configured. */
  kindOf(name: string): string {
    return this.byName.get(name)?.kind ?? name
  }

  /**
   * The provider for a new upload whose requests name `model` (undefined for other files), by the
   * model list, or the one the client asked for; with the name the provider knows the model by.
   */
  route(model: string | undefined, requested?: string): { name: string; provider: Provider; providerModel?: string } {
    const choice = this.router.choose(model, requested)
    return { name: choice.provider, provider: this.get(choice.provider), providerModel: choice.providerModel }
  }

  /** Closes every provider's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((provider) => provider.close?.()))
  }
}

/** The provider with each call in a span named for it (no-ops unless an OpenTelemetry SDK is registered). */
function traced(name: string, provider: Provider): Provider {
  const attributes = {
    'batchkit.provider': name,
    'batchkit.provider.kind': provider.kind,
    'gen_ai.provider.name': genAiProviderName(provider.kind),
  }
  const wrap =
    <A extends unknown[], R>(method: string, call: (...args: A) => Promise<R>) =>
    (...args: A) =>
      inSpan(`batchkit provider ${method}`, attributes, () => call(...args), SpanKind.CLIENT)
  return {
    ...provider,
    kind: provider.kind,
    uploadFile: wrap('uploadFile', (upload) => provider.uploadFile(upload)),
    retrieveFile: wrap('retrieveFile', (id) => provider.retrieveFile(id)),
    downloadFile: wrap('downloadFile', (id, signal) => provider.downloadFile(id, signal)),
    deleteFile: wrap('deleteFile', (id) => provider.deleteFile(id)),
    createBatch: wrap('createBatch', (request) => provider.createBatch(request)),
    retrieveBatch: wrap('retrieveBatch', (id) => provider.retrieveBatch(id)),
    cancelBatch: wrap('cancelBatch', (id) => provider.cancelBatch(id)),
    // Named one by one: the spread above copies no methods of a class instance.
    findFile: wrap('findFile', (tag, since, parts) => provider.findFile(tag, since, parts)),
    findBatch: wrap('findBatch', (tag, since, request) => provider.findBatch(tag, since, request)),
    close: () => provider.close?.() ?? Promise.resolve(),
  }
}

/** The most one of the provider's batches takes: OpenAI's where the provider names no limit of its own. */
function partLimitsOf(provider: Provider): PartLimits {
  return {
    maxRequests: provider.limits?.maxBatchRequests ?? 50_000,
    maxBytes: provider.limits?.maxBatchFileBytes ?? 200 * 1000 * 1000,
  }
}
