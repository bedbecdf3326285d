import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth, type BatchKit, createBatchKit, openai, parseApiKeys } from '@batchkit/core'
import { createExpressRouter } from '@batchkit/express'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import express from 'express'
import type { ExampleConfig } from './config.js'
import { describeStore, storeFromUri } from './store.js'

/** A running example app. */
export interface RunningExample {
  /** The base URL to give an OpenAI client, `/v1` included. */
  baseURL: string
  kit: BatchKit
  close(): Promise<void>
}

/**
 * Starts the Express app with batchkit mounted at `/v1`. Without an OpenAI key it starts the
 * project's fake OpenAI upstream on loopback, so everything works offline.
 */
export async function startExample(
  config: ExampleConfig,
  log: (line: string) => void = (line) => console.log(line),
  options: { fakeStepMs?: number } = {},
): Promise<RunningExample> {
  let fake: FakeOpenAI | undefined
  let upstream = { apiKey: config.openaiApiKey ?? '', baseURL: config.openaiBaseURL }
  if (!config.openaiApiKey) {
    fake = await startFakeOpenAI({ progress: options.fakeStepMs ?? 1000 })
    upstream = { apiKey: fake.apiKey, baseURL: fake.baseURL }
    log(`OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream at ${fake.baseURL} (no real model runs).`)
  }

  const store = storeFromUri(config.store)
  const kit = createBatchKit({
    store,
    providers: { openai: openai(upstream) },
    authenticate: config.apiKeys ? apiKeyAuth(parseApiKeys(config.apiKeys)) : undefined,
  })
  if (!kit.authenticated) {
    log('WARNING: BATCHKIT_API_KEYS is not set. Every caller shares ONE owner and can read and delete everything.')
  }

  const app = express()
  app.use('/v1', createExpressRouter(kit))
  const server: Server = app.listen(config.port, '127.0.0.1')
  await once(server, 'listening')
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  log(`batchkit listening on ${baseURL} (store: ${describeStore(config.store)})`)

  return {
    baseURL,
    kit,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await kit.close()
      await store.disconnect()
      await fake?.close()
    },
  }
}
