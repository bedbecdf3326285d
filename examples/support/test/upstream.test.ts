import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type FakeAzure, startFakeAzure } from '@batchkit/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { exampleUpstream } from '../src/upstream.js'

let azure: FakeAzure
beforeAll(async () => {
  azure = await startFakeAzure()
})
afterAll(() => azure?.close())

describe('the example environment contract', () => {
  it('adds Azure and Vertex providers and reads the model list inline or from a file', async () => {
    const routes = [
      { model: 'gpt-4o-mini', provider: 'azure', providerModel: 'gpt-4o-mini' },
      { model: 'gemini-*', provider: 'vertex' },
    ]
    const dir = await mkdtemp(join(tmpdir(), 'batchkit-models-'))
    await writeFile(join(dir, 'models.json'), JSON.stringify(routes))
    for (const models of [JSON.stringify(routes), join(dir, 'models.json')]) {
      const config = configFromEnv({
        AZURE_OPENAI_ENDPOINT: azure.endpoint,
        AZURE_OPENAI_API_KEY: azure.apiKey,
        VERTEX_PROJECT: 'p',
        VERTEX_LOCATION: 'global',
        VERTEX_BUCKET: 'b',
        VERTEX_ACCESS_TOKEN: 't',
        BATCHKIT_MODELS: models,
      })
      const logs: string[] = []
      const upstream = await exampleUpstream(config, (line) => logs.push(line))
      expect(Object.keys(upstream.providers).sort()).toEqual(['azure', 'vertex'])
      expect(upstream.providers.azure?.kind).toBe('azure')
      expect(upstream.providers.vertex?.kind).toBe('vertex')
      expect(upstream.models).toEqual(routes)
      expect(logs).toEqual([])
      await upstream.close()
    }
  })

  it('starts the fake OpenAI upstream, and says so, when no provider is configured', async () => {
    const logs: string[] = []
    const upstream = await exampleUpstream(configFromEnv({}), (line) => logs.push(line))
    expect(Object.keys(upstream.providers)).toEqual(['openai'])
    expect(logs[0]).toMatch(/OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream/)
    await upstream.close()
  })

  it('refuses settings that cannot work, with the variable to fix', () => {
    expect(() => configFromEnv({ VERTEX_PROJECT: 'p' })).toThrow(/VERTEX_BUCKET is required/)
    expect(() => configFromEnv({ BATCHKIT_POLL_INTERVAL_MS: 'soon' })).toThrow(/BATCHKIT_POLL_INTERVAL_MS/)
    expect(() => configFromEnv({ PORT: 'http' })).toThrow(/PORT/)
  })
})
