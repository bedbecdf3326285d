import { readFileSync } from 'node:fs'
import { azure, type ModelRoute, openai, type Provider, vertex } from '@batchkit/core'
import { startFakeOpenAI } from '@batchkit/testkit'
import type { ExampleConfig } from './config.js'

/** The providers the settings ask for, the model list, and what to stop at shutdown. */
export interface ExampleUpstream {
  providers: Record<string, Provider>
  models: ModelRoute[] | undefined
  /** Stops the fake upstream, if one was started. */
  close(): Promise<void>
}

/**
 * OpenAI with `OPENAI_API_KEY`, Azure OpenAI with `AZURE_OPENAI_ENDPOINT`, Vertex AI with
 * `VERTEX_PROJECT`, and the model list from `BATCHKIT_MODELS`. With none of them, the project's
 * fake OpenAI upstream on loopback, announced through `log`, so the example runs offline.
 */
export async function exampleUpstream(
  config: ExampleConfig,
  log: (line: string) => void,
  fakeStepMs = 1000,
): Promise<ExampleUpstream> {
  const providers: Record<string, Provider> = {}
  if (config.openaiApiKey) providers.openai = openai({ apiKey: config.openaiApiKey, baseURL: config.openaiBaseURL })
  if (config.azure) {
    if (!config.azure.apiKey) throw new Error('AZURE_OPENAI_API_KEY is required with AZURE_OPENAI_ENDPOINT')
    providers.azure = azure({
      endpoint: config.azure.endpoint,
      apiKey: config.azure.apiKey,
      apiVersion: config.azure.apiVersion,
    })
  }
  if (config.vertex) providers.vertex = vertex(config.vertex)
  const models = modelsFrom(config.models)
  if (Object.keys(providers).length > 0) return { providers, models, close: async () => undefined }

  const fake = await startFakeOpenAI({ progress: fakeStepMs })
  log(`OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream at ${fake.baseURL} (no real model runs).`)
  return {
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    models,
    close: () => fake.close(),
  }
}

/** `BATCHKIT_MODELS`: a JSON array of `{ model, provider, providerModel? }`, inline or in a file. */
function modelsFrom(value: string | undefined): ModelRoute[] | undefined {
  if (value === undefined) return undefined
  const text = value.trimStart().startsWith('[') ? value : readFileSync(value, 'utf8')
  const routes: unknown = JSON.parse(text)
  if (!Array.isArray(routes) || routes.some((r) => typeof r?.model !== 'string' || typeof r?.provider !== 'string')) {
    throw new Error('BATCHKIT_MODELS must be a JSON array of { "model", "provider", "providerModel"? } entries')
  }
  return routes as ModelRoute[]
}
