import { openai, type Provider } from '@batchkit/core'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import type { ExampleConfig } from './config.js'

/** The OpenAI provider the settings ask for, or batchkit's fake upstream when there is no key. */
export interface ExampleUpstream {
  provider: Provider
  /** Stops the fake upstream, if one was started. */
  close(): Promise<void>
}

/**
 * OpenAI with `OPENAI_API_KEY` (and `OPENAI_BASE_URL`); without a key, the project's fake OpenAI
 * upstream on loopback, announced through `log`, so the example runs offline.
 */
export async function exampleUpstream(
  config: ExampleConfig,
  log: (line: string) => void,
  fakeStepMs = 1000,
): Promise<ExampleUpstream> {
  if (config.openaiApiKey) {
    return {
      provider: openai({ apiKey: config.openaiApiKey, baseURL: config.openaiBaseURL }),
      close: async () => undefined,
    }
  }
  const fake: FakeOpenAI = await startFakeOpenAI({ progress: fakeStepMs })
  log(`OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream at ${fake.baseURL} (no real model runs).`)
  return { provider: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }), close: () => fake.close() }
}
