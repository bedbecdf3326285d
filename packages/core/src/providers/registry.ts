import { ApiError } from '../errors.js'
import type { Provider } from './types.js'

/** The configured providers by name, and the choice of one for a new upload. */
export class ProviderRegistry {
  private readonly byName: ReadonlyMap<string, Provider>
  private readonly defaultName: string

  constructor(providers: Record<string, Provider>, defaultName?: string) {
    this.byName = new Map(Object.entries(providers))
    const first = this.byName.keys().next().value
    if (first === undefined) throw new TypeError('createBatchKit(): configure at least one provider')
    if (defaultName !== undefined && !this.byName.has(defaultName)) {
      throw new TypeError(`createBatchKit(): defaultProvider '${defaultName}' is not among the providers`)
    }
    this.defaultName = defaultName ?? first
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

  /**
   * The provider for a new upload whose requests name `model` (undefined for other files): the
   * default one, until routing by model arrives with the Azure and Vertex providers.
   */
  forModel(_model: string | undefined): { name: string; provider: Provider } {
    return { name: this.defaultName, provider: this.get(this.defaultName) }
  }

  /** Closes every provider's connections. */
  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((provider) => provider.close?.()))
  }
}
