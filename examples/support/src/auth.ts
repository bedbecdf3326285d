import { type Authenticate, apiKeyAuth, parseApiKeys } from '@batchkit/core'
import type { ExampleConfig } from './config.js'

/** The `authenticate` hook for `BATCHKIT_API_KEYS`; without keys, undefined and a loud warning. */
export function exampleAuth(config: ExampleConfig, log: (line: string) => void): Authenticate | undefined {
  if (config.apiKeys) return apiKeyAuth(parseApiKeys(config.apiKeys))
  log('WARNING: BATCHKIT_API_KEYS is not set. Every caller shares ONE owner and can read and delete everything.')
  return undefined
}

/** A key a demo client can use: the first configured one, or any string when there is no auth. */
export function demoApiKey(config: ExampleConfig): string {
  return config.apiKeys ? (Object.keys(parseApiKeys(config.apiKeys))[0] as string) : 'sk-demo'
}
