import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serveNodeRequest } from '@batchkit/core'
import { type RedisCommandClient, removePostgresTestData, removeRedisTestData } from '@batchkit/testkit'
import type KeyvPostgres from '@keyv/postgres'
import type KeyvRedis from '@keyv/redis'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { runDemo } from '../src/demo-flow.js'
import { createExampleKit, type ExampleKit } from '../src/kit.js'
import { storeFromUri } from '../src/store.js'

/**
 * The examples' own store path, exactly as they build it: `BATCHKIT_STORE` through
 * `configFromEnv`, `storeFromUri` (namespace `batchkit`) and `createExampleKit`, on real Redis,
 * PostgreSQL and a SQLite file. What a client creates must come back in its lists, with usage once billed.
 */

const IN_CI = process.env.CI === 'true'
const SQLITE_FILE = join(tmpdir(), `batchkit-example-${process.pid}-${Date.now().toString(36)}.sqlite`)
const STORES = [
  { label: 'Redis', uri: process.env.BATCHKIT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  { label: 'PostgreSQL', uri: process.env.BATCHKIT_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' },
  { label: 'SQLite', uri: `sqlite://${SQLITE_FILE}` },
]
const available = await Promise.all(
  STORES.map(({ uri }) => (uri.startsWith('sqlite:') ? true : reachable(new URL(uri)))),
)

describe.each(STORES.map((store, i) => ({ ...store, up: available[i] })))(
  'the example on BATCHKIT_STORE=$label',
  ({ label, uri, up }) => {
    if (!up && !IN_CI) {
      console.warn(`[batchkit tests] ${label} at ${uri} is not reachable: skipping (under CI=true this fails)`)
      it.skip(`${label} is not reachable`, () => undefined)
      return
    }
    const owner = `example-store-${Date.now().toString(36)}`
    const apiKey = `sk-${owner}`
    const marks: string[] = [owner]
    const events: { id?: string }[] = []
    let example: ExampleKit
    let closed = false
    let server: Server
    let baseURL: string
    const warnings: (Error & { code?: string })[] = []
    const stderr: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    const write = process.stderr.write.bind(process.stderr)

    beforeAll(async () => {
      if (!up) throw new Error(`${label} at ${uri} is not reachable, and CI=true requires it`)
      process.on('warning', onWarning)
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk, ...rest) => {
        stderr.push(String(chunk))
        return write(chunk, ...(rest as []))
      })
      const config = configFromEnv({
        PORT: '0',
        BATCHKIT_STORE: uri,
        BATCHKIT_API_KEYS: `${apiKey}:${owner}`,
        BATCHKIT_POLL_INTERVAL_MS: '20',
        BATCHKIT_FRESHNESS_MS: '20',
        BATCHKIT_REQUEST_RETRIES: '1',
      })
      example = await createExampleKit(config, () => undefined, {
        fakeStepMs: 20,
        printEvent: (line) => events.push(JSON.parse(line)),
      })
      server = createServer((req, res) => void serveNodeRequest(example.kit.http, req, res, { basePath: '/v1' }))
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
    })

    afterAll(async () => {
      process.off('warning', onWarning)
      vi.restoreAllMocks()
      server?.closeAllConnections()
      await new Promise((resolve) => server?.close(resolve))
      if (!closed) await example?.close()
      if (up) await removeTestData(uri, [...marks, ...events.flatMap((e) => (e.id ? [e.id] : []))])
    })

    it('lists what the demo created, and shows the usage of its batch', async () => {
      const { batchId } = await runDemo(baseURL, apiKey, () => undefined, 20)
      const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 })
      const files = (await client.files.list()).data.map((f) => f.id)
      marks.push(batchId, ...files)

      const batch = await client.batches.retrieve(batchId)
      expect(files).toContain(batch.input_file_id)
      expect(files).toContain(batch.output_file_id)
      expect((await client.batches.list()).data.map((b) => b.id)).toEqual([batchId])

      // Usage is attached once the tracker has billed the batch, soon after it completes.
      let usage = batch.usage
      for (let i = 0; i < 200 && !usage; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25))
        usage = (await client.batches.retrieve(batchId)).usage
      }
      expect(usage?.total_tokens).toBeGreaterThan(0)
      expect((await client.batches.list()).data[0]?.usage).toEqual(usage)
    })

    it('runs again, in the same batch, a request its provider failed with a server error', async () => {
      const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 })
      // The demo upstream fails a `flaky-1-` request with a 500 the first time it runs it.
      const lines = [`ok-${owner}`, `flaky-1-${owner}`].map((id) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Hello ${id}` }] },
        }),
      )
      const input = await client.files.create({
        file: new File([`${lines.join('\n')}\n`], 'retries.jsonl'),
        purpose: 'batch',
      })
      const created = await client.batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      marks.push(input.id, created.id)
      let batch = created
      for (let i = 0; i < 400 && batch.status !== 'completed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25))
        batch = await client.batches.retrieve(created.id)
      }
      if (batch.output_file_id) marks.push(batch.output_file_id)
      expect(batch.status).toBe('completed')
      expect(batch.request_counts).toEqual({ total: 2, completed: 2, failed: 0 })
      expect(batch.error_file_id).toBeNull()
      expect((await client.batches.list()).data.map((b) => b.id)).toContain(created.id)
    })

    // Only SQLite's store is for one instance; on the others the test does not exist (rather than skipped).
    if (label === 'SQLite')
      it('warns at start that SQLite is for one instance, and closes the store after the kit without SQLITE_MISUSE', async () => {
        expect(example.kit.multiInstanceSafe).toBe(false)
        expect(warnings.map((w) => w.code)).toContain('BATCHKIT_SINGLE_INSTANCE_STORE')
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
        closed = true
        await example.close()
        // Anything left running would touch the closed database within a few poll intervals.
        await new Promise((resolve) => setTimeout(resolve, 200))
        expect(stderr.join('')).not.toMatch(/SQLITE_MISUSE|Database handle is closed/)
      })
  },
)

/** Removes what this file wrote from the shared store, through the example's own store settings. */
async function removeTestData(uri: string, marks: string[]): Promise<void> {
  if (uri.startsWith('sqlite:')) return rm(SQLITE_FILE, { force: true })
  const keyv = storeFromUri(uri)
  try {
    if (uri.startsWith('redis')) {
      const client = (await (keyv.store as KeyvRedis<unknown>).getClient()) as unknown as RedisCommandClient
      await removeRedisTestData(client, 'batchkit', marks)
    } else {
      const query = (sql: string, values?: unknown[]) => (keyv.store as KeyvPostgres).query(sql, values)
      await removePostgresTestData(query, { keyvTable: 'keyv', namespace: 'batchkit', marks })
    }
  } finally {
    await keyv.disconnect()
  }
}

/** Whether something accepts TCP connections at the URL's host and port within a second. */
function reachable(url: URL): Promise<boolean> {
  const port = Number(url.port || (url.protocol.startsWith('redis') ? 6379 : 5432))
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
