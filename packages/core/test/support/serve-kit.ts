import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { serveNodeRequest } from '../../src/http/node.js'
import type { BatchKit } from '../../src/kit.js'

/** A kit served over HTTP on loopback, and OpenAI's client for it. */
export interface ServedKit {
  /** `http://127.0.0.1:<port>/v1`. */
  baseURL: string
  /** OpenAI's client on `baseURL`, with no retries. */
  client: OpenAI
  /** Closes the server and its connections; the kit is the caller's. */
  close(): Promise<void>
}

/** Serves `kit.http` at `/v1` on a free loopback port, as a plain Node server mounts it. */
export async function serveKit(kit: BatchKit, apiKey = 'unused'): Promise<ServedKit> {
  const server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  return {
    baseURL,
    client: new OpenAI({ baseURL, apiKey, maxRetries: 0 }),
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const ENDED = ['completed', 'failed', 'expired', 'cancelled']

/**
 * Retrieves a batch until it has ended (so it is billed), letting the reads' background refreshes finish
 * and pausing `pauseMs` between reads; throws after `polls` reads.
 */
export async function untilEnded(
  client: OpenAI,
  kit: BatchKit,
  id: string,
  { polls = 300, pauseMs = 20 }: { polls?: number; pauseMs?: number } = {},
): Promise<OpenAI.Batches.Batch> {
  for (let i = 0; i < polls; i++) {
    const batch = await client.batches.retrieve(id)
    if (ENDED.includes(batch.status)) return batch
    await kit.batches.idle()
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
  throw new Error(`${id} did not end`)
}
