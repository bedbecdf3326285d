import { ApiError, invalidValue } from '../errors.js'

/** One entry of the model list: which provider runs a public model, and under what name. */
export interface ModelRoute {
  /** The model name clients put in their JSONL: exact, a glob with `*` (`gemini-*`), or a RegExp. */
  model: string | RegExp
  /** The name of a configured provider. */
  provider: string
  /** The name the provider knows the model by (an Azure deployment, a Vertex model). @default the public name */
  providerModel?: string
}

/** Where a new upload goes, and the model name its lines get there. */
export interface RouteChoice {
  provider: string
  /** Set when the provider needs another name than the public one. */
  providerModel: string | undefined
}

/**
 * Picks a provider for an upload from the model its requests name: the first matching route, or
 * the one the client named (LiteLLM's `custom_llm_provider`). Without routes, everything goes to
 * the default provider, as it must for files that are not batch input.
 */
export class ModelRouter {
  private readonly routes: { test: (model: string) => boolean; route: ModelRoute }[]

  constructor(
    routes: readonly ModelRoute[],
    private readonly providerNames: ReadonlySet<string>,
    private readonly defaultProvider: string,
  ) {
    for (const route of routes) {
      if (!providerNames.has(route.provider)) {
        throw new TypeError(
          `createBatchKit(): the model list names provider '${route.provider}', which is not configured`,
        )
      }
    }
    this.routes = routes.map((route) => ({ test: matcher(route.model), route }))
  }

  /** The provider for requests naming `model` (undefined for a file without request lines). */
  choose(model: string | undefined, requested?: string): RouteChoice {
    if (requested !== undefined) {
      if (!this.providerNames.has(requested)) {
        throw invalidValue(
          'custom_llm_provider',
          `Invalid value for 'custom_llm_provider': no provider '${requested}' is configured.`,
        )
      }
      const route = model === undefined ? undefined : this.find(model, requested)
      return { provider: requested, providerModel: renamed(model, route) }
    }
    if (model === undefined || this.routes.length === 0)
      return { provider: this.defaultProvider, providerModel: undefined }
    const route = this.find(model)
    if (!route) {
      throw new ApiError(400, `No provider is configured for the model '${model.slice(0, 128)}'.`, {
        param: 'file',
        code: 'model_not_found',
      })
    }
    return { provider: route.provider, providerModel: renamed(model, route) }
  }

  private find(model: string, provider?: string): ModelRoute | undefined {
    return this.routes.find(({ test, route }) => test(model) && (provider === undefined || route.provider === provider))
      ?.route
  }
}

function renamed(model: string | undefined, route: ModelRoute | undefined): string | undefined {
  const name = route?.providerModel
  return name !== undefined && name !== model ? name : undefined
}

function matcher(pattern: string | RegExp): (model: string) => boolean {
  if (pattern instanceof RegExp) return (model) => pattern.test(model)
  if (!pattern.includes('*')) return (model) => model === pattern
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`)
  return (model) => regex.test(model)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
