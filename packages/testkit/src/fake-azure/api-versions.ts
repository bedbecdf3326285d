import type { AzureApi } from './types.js'

/** Azure OpenAI's generally available `api-version` of the dated API. */
export const AZURE_GA_API_VERSION = '2024-10-21'

/**
 * The first dated `api-version` whose spec has `expires_after` on uploads and `output_expires_after` on
 * batch creates. Earlier versions (the GA `2024-10-21` among them) drop both: their files never expire.
 */
export const AZURE_EXPIRY_API_VERSION = '2025-03-01-preview'

/**
 * Models released after the GA `api-version`, which Global Batch does not run on it: they need a newer
 * preview version or the v1 API, as Azure's batch guide says of `o3-mini`.
 */
export const AZURE_POST_GA_MODELS: readonly string[] = [
  'o1',
  'o3-mini',
  'o3',
  'o4-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
]

/** Which API a request came in on, and its `api-version` (null on the v1 API). */
export interface AzureSurface {
  api: AzureApi
  apiVersion: string | null
}

/** Whether the surface knows `expires_after` and `output_expires_after` (the v1 API, or a dated version from 2025-03-01-preview). */
export function honoursExpiry(surface: AzureSurface): boolean {
  return surface.api === 'v1' || dateOf(surface.apiVersion) >= dateOf(AZURE_EXPIRY_API_VERSION)
}

/** Whether Global Batch runs `model` for a batch created on the surface. */
export function runsModel(surface: AzureSurface, model: string): boolean {
  if (surface.api === 'v1' || dateOf(surface.apiVersion) > dateOf(AZURE_GA_API_VERSION)) return true
  return !AZURE_POST_GA_MODELS.includes(model)
}

/** `2025-03-01-preview` → `2025-03-01`; comparable as a string. */
function dateOf(apiVersion: string | null): string {
  return (apiVersion ?? '').slice(0, 10)
}
