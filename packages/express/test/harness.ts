import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { apiKeyAuth, type BatchKit, type BatchKitOptions, createBatchKit, openai } from '@batchkit/core'
import { createSchemaValidator, type FakeOpenAI, type FakeOpenAIOptions, startFakeOpenAI } from '@batchkit/testkit'
import express from 'express'
import OpenAI from 'openai'
import { createExpressRouter } from '../src/index.js'

/** Keys of the two callers every test can use. */
export const KEYS = { alice: 'sk-alice-0123456789', bob: 'sk-bob-0123456789' } as const

/** A fake OpenAI upstream, and an Express app mounting batchkit at `/v1` in front of it. */
export interface Harness {
  fake: FakeOpenAI
  kit: BatchKit
  /** The app's base URL with `/v1`, the `baseURL` for OpenAI's client. */
  baseURL: string
  client(key?: string): OpenAI
  schemas: ReturnType<typeof createSchemaValidator>
  close(): Promise<void>
}

/** Boots the fake upstream and the Express app on loopback ports chosen by the OS. */
export async function startHarness(
  options: { fake?: FakeOpenAIOptions; kit?: Partial<BatchKitOptions>; timeoutMs?: number } = {},
): Promise<Harness> {
  const fake = await startFakeOpenAI(options.fake)
  const kit = createBatchKit({
    providers: {
      openai: openai({
        apiKey: fake.apiKey,
        baseURL: fake.baseURL,
        timeoutMs: options.timeoutMs,
        idleTimeoutMs: options.timeoutMs,
      }),
    },
    authenticate: apiKeyAuth({ [KEYS.alice]: 'alice', [KEYS.bob]: 'bob' }),
    onError: () => undefined,
    // The fake advances a batch on every poll: only the tests' own reads may move it, unless a test tracks.
    tracking: { enabled: false },
    // Every read of an unfinished batch starts a background refresh; `kit.batches.idle()` waits for them.
    freshnessMs: 0,
    ...options.kit,
  })
  const app = express()
  app.use(express.json())
  app.use('/v1', createExpressRouter(kit))
  app.get('/health', (_req, res) => {
    res.json({ ok: true })
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  return {
    fake,
    kit,
    baseURL,
    client: (key = KEYS.alice) => new OpenAI({ baseURL, apiKey: key, maxRetries: 0 }),
    schemas: createSchemaValidator(),
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await kit.close()
      await fake.close()
    },
  }
}

/** A batch input file of `n` chat requests for one model, one JSON object per line. */
export function chatLines(n: number, options: { model?: string; prefix?: string } = {}): string {
  const lines: string[] = []
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `${options.prefix ?? 'request'}-${i + 1}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: options.model ?? 'gpt-4o-mini',
          messages: [{ role: 'user', content: `Say hello to number ${i + 1}, with ünïcödé ✓.` }],
          max_tokens: 20 + i,
        },
      }),
    )
  }
  return `${lines.join('\n')}\n`
}
