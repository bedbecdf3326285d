import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveNodeRequest } from '../src/http/node.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { testBackends, useBackend } from './support/backends.js'

/**
 * A NUL (`%00`) in an id, cursor or purpose names nothing batchkit could have stored. PostgreSQL
 * refuses NUL in text, so such a name must never reach it: every store answers these requests
 * alike, without reporting a store error.
 */

const backends = await testBackends()

const CASES: [method: string, path: string, status: number, body?: unknown][] = [
  ['GET', '/v1/files/file-%00', 404],
  ['GET', '/v1/files/file-abc%00def/content', 404],
  ['DELETE', '/v1/files/%00', 404],
  ['GET', '/v1/batches/batch_%00', 404],
  ['POST', '/v1/batches/batch_%00/cancel', 404],
  ['GET', '/v1/files?after=file-%00', 400],
  ['GET', '/v1/batches?after=batch_%00', 400],
  ['GET', '/v1/files?purpose=%00', 400],
  [
    'POST',
    '/v1/batches',
    404,
    { input_file_id: 'file-\u0000', endpoint: '/v1/chat/completions', completion_window: '24h' },
  ],
]

describe.each(backends)('NUL in names on $label', (backend) => {
  if (!useBackend(backend)) return
  const reported: string[] = []
  let kit: BatchKit
  let server: Server
  let origin: string

  beforeAll(async () => {
    kit = createBatchKit({
      store: backend.connect(),
      providers: { openai: openai({ apiKey: 'sk-unused', baseURL: 'http://127.0.0.1:9/v1' }) },
      onError: (error, context) => reported.push(`${context}: ${String(error)}`),
      tracking: { enabled: false },
    })
    server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    await kit?.close()
  })

  it.each(CASES)('%s %s answers %i', async (method, path, status, body) => {
    const response = await fetch(origin + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    expect(response.status).toBe(status)
    if (status === 200) expect(((await response.json()) as { data: unknown[] }).data).toEqual([])
    expect(reported).toEqual([])
  })
})
