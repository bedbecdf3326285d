import type { ProviderLimits } from './types.js'

/**
 * A provider's limits for one batch: the service's own (`defaults`), with what the user set in their place
 * (a service's limits differ between accounts and change over time). `factory` names the provider
 * function in errors.
 */
export function providerLimits(
  set: ProviderLimits | undefined,
  defaults: ProviderLimits,
  factory: string,
): ProviderLimits {
  for (const [name, value] of Object.entries(set ?? {})) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new TypeError(`${factory}(): limits.${name} must be a positive integer`)
    }
  }
  return { ...defaults, ...set }
}
