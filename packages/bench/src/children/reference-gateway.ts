// The least a gateway that keeps batches can do, as a yardstick for the control-plane table: one
// bearer token, `POST /v1/batches` forwarded to the fake upstream (BENCH_UPSTREAM_URL) with undici and
// the answer kept in a Map, `GET /v1/batches/{id}` answered from that Map. No owner, no validation, no
// durable write, no tracking: what any gateway that makes one upstream call per create costs on this
// machine, whatever else it does. On plain node:http, or with BENCH_HOST inside that host framework,
// mounted as its batchkit adapter is: what such a gateway can reach there.
import { createServer, type Server } from 'node:http'
import { Agent, request } from 'undici'
import { BENCH_API_KEY } from '../constants.js'
import { type BenchAnswer, type HostRequest, hostNamed, nodeMiddleware } from '../hosts.js'
import { announce, listenOnLoopback } from './ipc.js'

const upstreamURL = process.env.BENCH_UPSTREAM_URL
const upstreamKey = process.env.BENCH_UPSTREAM_KEY
if (!upstreamURL || !upstreamKey) throw new Error('BENCH_UPSTREAM_URL and BENCH_UPSTREAM_KEY must be set')

const agent = new Agent({ connections: 64, keepAliveTimeout: 60_000 })
const batches = new Map<string, string>()
const expected = `Bearer ${BENCH_API_KEY}`

/** The JSON body as sent: the host's parser may have read it already (NestJS's does). */
async function bodyOf(req: HostRequest): Promise<string> {
  if (typeof req.body === 'object' && req.body !== null) return JSON.stringify(req.body)
  let body = ''
  for await (const chunk of req) body += chunk
  return body
}

async function answer(req: HostRequest): Promise<BenchAnswer> {
  const path = req.originalUrl ?? req.url ?? '/'
  if (req.headers.authorization !== expected) {
    req.resume()
    return { status: 401, body: '{"error":{"message":"bad key"}}' }
  }
  if (req.method === 'POST' && path === '/v1/batches') {
    const upstream = await request(`${upstreamURL}/batches`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${upstreamKey}`, 'content-type': 'application/json' },
      body: await bodyOf(req),
    })
    const text = await upstream.body.text()
    if (upstream.statusCode !== 200) return { status: 502, body: text }
    const batch = JSON.parse(text) as { id: string }
    batches.set(batch.id, text)
    return { status: 200, body: text }
  }
  req.resume()
  const stored = req.method === 'GET' && path.startsWith('/v1/batches/') && batches.get(path.slice(12))
  return stored ? { status: 200, body: stored } : { status: 404, body: '{"error":{"message":"not found"}}' }
}

async function serve(): Promise<{ server: Server; close(): Promise<void> }> {
  const hostName = process.env.BENCH_HOST
  if (!hostName) {
    const serveNode = nodeMiddleware(answer)
    const server = createServer((req, res) => serveNode(req, res, () => res.destroy()))
    return { server, close: async () => undefined }
  }
  const host = hostNamed(hostName)
  if (!host.serveHandler) throw new Error(`no bench handler entry for ${host.name} yet`)
  return host.serveHandler(answer)
}

const hosted = await serve()
hosted.server.keepAliveTimeout = 60_000
await listenOnLoopback(hosted.server)
announce(hosted.server, async () => {
  await hosted.close()
  await agent.close()
})
