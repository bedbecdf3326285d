import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'

/** Options of {@link createMinimalFake}. */
export interface MinimalFakeOptions {
  /** The key callers must send as `Authorization: Bearer <key>`. */
  apiKey: string
  /** The status every batch is created with and keeps. @default 'validating' */
  batchStatus?: 'validating' | 'completed'
}

/** Calls a fake has answered since it started, as `GET /bench/calls?from=<ms>&to=<ms>` tells them. */
export interface UpstreamCalls {
  /** The fake's clock (`performance.now()`) when it answered. */
  atMs: number
  /** Every request but `GET /bench/calls` itself. */
  requests: number
  /** `GET /v1/batches/{id}`: reads of one batch. */
  batchReads: number
  /** Reads of one batch that arrived from `from` (included) to `to` (excluded) on the fake's clock; 0 without them. */
  batchReadsBetween: number
}

/**
 * The least an OpenAI Files + Batches upstream must do for the bench's calls, and nothing more:
 * uploads are read and counted, not parsed or stored; batches never advance. It keeps the upstream
 * cheap so that a gateway's own cost shows. Routes: `POST /v1/files`, `GET|DELETE /v1/files/{id}`,
 * `POST /v1/batches`, `GET /v1/batches/{id}`, and `GET /bench/calls` ({@link UpstreamCalls}, for the
 * bench alone).
 */
export function createMinimalFake(options: MinimalFakeOptions): Server {
  const expected = `Bearer ${options.apiKey}`
  const status = options.batchStatus ?? 'validating'
  const batches = new Map<string, string>()
  const files = new Map<string, string>()
  let requests = 0
  /** When each read of one batch arrived, on this process's clock. */
  const batchReads: number[] = []

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url?.startsWith('/bench/calls')) {
      const query = new URL(req.url, 'http://fake').searchParams
      const [from, to] = [Number(query.get('from') ?? 0), Number(query.get('to') ?? 0)]
      const between = batchReads.filter((at) => at >= from && at < to).length
      const calls: UpstreamCalls = {
        atMs: performance.now(),
        requests,
        batchReads: batchReads.length,
        batchReadsBetween: between,
      }
      return send(res, 200, JSON.stringify(calls))
    }
    requests++
    if (req.headers.authorization !== expected) return send(res, 401, error('Incorrect API key provided.'))
    const url = req.url ?? '/'
    const path = url.includes('?') ? url.slice(0, url.indexOf('?')) : url
    const [, v1, collection, id, extra] = path.split('/')
    if (v1 !== 'v1' || extra !== undefined) return send(res, 404, error(`Invalid URL (${req.method} ${path})`))
    if (collection === 'files') {
      if (id === undefined && req.method === 'POST') {
        let bytes = 0
        for await (const chunk of req as AsyncIterable<Buffer>) bytes += chunk.length
        const file = fileObject(`file-${randomBytes(12).toString('hex')}`, bytes)
        files.set(JSON.parse(file).id, file)
        return send(res, 200, file)
      }
      const file = id === undefined ? undefined : files.get(id)
      if (!file) return send(res, 404, error(`No such File object: ${id}`))
      if (req.method === 'GET') return send(res, 200, file)
      if (req.method === 'DELETE') {
        files.delete(id as string)
        return send(res, 200, JSON.stringify({ id, object: 'file', deleted: true }))
      }
    }
    if (collection === 'batches') {
      if (id !== undefined && req.method === 'GET') batchReads.push(performance.now())
      if (id === undefined && req.method === 'POST') {
        const body = await readJson(req)
        const batch = batchObject(`batch_${randomBytes(16).toString('hex')}`, status, body)
        batches.set(JSON.parse(batch).id, batch)
        return send(res, 200, batch)
      }
      const batch = id === undefined ? undefined : batches.get(id)
      if (batch && req.method === 'GET') return send(res, 200, batch)
      if (!batch) return send(res, 404, error(`No batch found with id '${id}'.`))
    }
    send(res, 404, error(`Invalid URL (${req.method} ${path})`))
  }

  return createServer((req, res) => {
    handle(req, res).catch((e: unknown) => send(res, 500, error(String(e))))
  })
}

function send(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) return
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function error(message: string): string {
  return JSON.stringify({ error: { message, type: 'invalid_request_error', param: null, code: null } })
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
}

const now = () => Math.floor(Date.now() / 1000)

function fileObject(id: string, bytes: number): string {
  const created = now()
  return JSON.stringify({
    id,
    object: 'file',
    bytes,
    created_at: created,
    filename: 'input.jsonl',
    purpose: 'batch',
    status: 'processed',
    expires_at: created + 30 * 86_400,
    status_details: null,
  })
}

/** A Batch object as OpenAI answers it, every field present, as JSON text: for a batch made now from a create's `body`. */
export function batchObject(id: string, status: string, body: Record<string, unknown>): string {
  const created = now()
  return JSON.stringify({
    id,
    object: 'batch',
    endpoint: body.endpoint,
    model: null,
    errors: null,
    input_file_id: body.input_file_id,
    completion_window: body.completion_window,
    status,
    output_file_id: null,
    error_file_id: null,
    created_at: created,
    in_progress_at: null,
    expires_at: created + 86_400,
    finalizing_at: null,
    completed_at: status === 'completed' ? created : null,
    failed_at: null,
    expired_at: null,
    cancelling_at: null,
    cancelled_at: null,
    request_counts: { total: 0, completed: 0, failed: 0 },
    usage: null,
    metadata: body.metadata ?? null,
  })
}
