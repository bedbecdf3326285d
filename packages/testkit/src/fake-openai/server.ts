import { mkdir, mkdtemp } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assertLoopback, assertProgress, stopper } from '../loopback.js'
import { BatchRunner } from './batch-runner.js'
import { type BatchesContext, cancelBatch, createBatch, listBatches, retrieveBatch } from './batches.js'
import { ApiError, errorForStatus, incorrectApiKey, invalidUrl, missingApiKey } from './errors.js'
import { Faults } from './faults.js'
import { deleteFile, downloadFile, type FilesContext, listFiles, retrieveFile, uploadFile } from './files.js'
import { sendError } from './http.js'
import { newRequestId } from './ids.js'
import type { FakeBatch, FakeFile, FakeOpenAI, FakeOpenAIOptions } from './types.js'

type Context = FilesContext & BatchesContext

interface Route {
  method: string
  pattern: RegExp
  handle(ctx: Context, req: IncomingMessage, res: ServerResponse, id: string, query: URLSearchParams): unknown
}

const ID = '([^/]+)'
const ROUTES: Route[] = [
  { method: 'POST', pattern: /^\/v1\/files$/, handle: (ctx, req, res) => uploadFile(ctx, req, res) },
  { method: 'GET', pattern: /^\/v1\/files$/, handle: (ctx, _req, res, _id, query) => listFiles(ctx, query, res) },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/files/${ID}$`),
    handle: (ctx, _req, res, id) => retrieveFile(ctx, id, res),
  },
  {
    method: 'DELETE',
    pattern: new RegExp(`^/v1/files/${ID}$`),
    handle: (ctx, _req, res, id) => deleteFile(ctx, id, res),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/files/${ID}/content$`),
    handle: (ctx, _req, res, id) => downloadFile(ctx, id, res),
  },
  { method: 'POST', pattern: /^\/v1\/batches$/, handle: (ctx, req, res) => createBatch(ctx, req, res) },
  { method: 'GET', pattern: /^\/v1\/batches$/, handle: (ctx, _req, res, _id, query) => listBatches(ctx, query, res) },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/batches/${ID}$`),
    handle: (ctx, _req, res, id) => retrieveBatch(ctx, id, res),
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/batches/${ID}/cancel$`),
    handle: (ctx, _req, res, id) => cancelBatch(ctx, id, res),
  },
]

/**
 * Starts a loopback fake of OpenAI's Files and Batches API that speaks the real wire format (File and Batch
 * objects, list envelopes, error bodies, output/error JSONL), for tests and demos.
 */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const apiKey = options.apiKey ?? 'sk-fake-upstream'
  const host = options.host ?? '127.0.0.1'
  const progress = options.progress ?? 'per-poll'
  assertLoopback('startFakeOpenAI', host)
  assertProgress(progress)

  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'fake-openai-')))
  await mkdir(dataDir, { recursive: true })

  const files = new Map<string, FakeFile>()
  const batches = new Map<string, FakeBatch>()
  const runner = new BatchRunner({ files, batches, dataDir, progress, enqueuedTokenLimit: options.enqueuedTokenLimit })
  const ctx: Context = { files, batches, dataDir, runner }
  const faults = new Faults()
  const requests: Array<{ method: string; path: string; query: string }> = []
  const hanging = new Set<ServerResponse>()

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const url = new URL(req.url ?? '/', 'http://fake.invalid')
    requests.push({ method, path: url.pathname, query: url.search.replace(/^\?/, '') })
    res.setHeader('x-request-id', newRequestId())

    const fault = faults.take(method, url.pathname)
    if (fault === 'hang') {
      hanging.add(res)
      return
    }
    if (fault === 'reset') {
      req.socket.destroy()
      return
    }
    if (fault !== undefined) throw errorForStatus(fault)

    const authorization = req.headers.authorization
    if (!authorization) throw missingApiKey()
    const presented = authorization.replace(/^Bearer\s+/i, '')
    if (!/^Bearer\s+/i.test(authorization) || presented !== apiKey) throw incorrectApiKey(presented)

    for (const route of ROUTES) {
      if (route.method !== method) continue
      const match = route.pattern.exec(url.pathname)
      if (!match) continue
      await route.handle(ctx, req, res, decodeURIComponent(match[1] ?? ''), url.searchParams)
      return
    }
    throw invalidUrl(method, url.pathname)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const apiError =
        error instanceof ApiError
          ? error
          : new ApiError(500, `The fake OpenAI server failed: ${(error as Error).message}`, 'server_error')
      sendError(res, apiError)
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const urlHost = host.includes(':') ? `[${host}]` : host

  return {
    baseURL: `http://${urlHost}:${port}/v1`,
    apiKey,
    files,
    batches,
    requests,
    failNext: (opts) => faults.add(opts),
    expire: (batchId) => runner.expire(batchId),
    close: stopper({ runner, hanging, servers: [server], dataDir, ownsDataDir }),
  }
}
