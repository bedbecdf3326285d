// The least a gateway that keeps batches can do, as a yardstick for the control-plane table: plain
// node:http, one bearer token, `POST /v1/batches` forwarded to the fake upstream (BENCH_UPSTREAM_URL)
// with undici and the answer kept in a Map, `GET /v1/batches/{id}` answered from that Map. No
// framework, no owner, no validation, no durable write, no tracking: what any gateway that makes
// one upstream call per create costs on this machine, whatever else it does.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { BENCH_API_KEY } from '../constants.js'
import { announce, listenOnLoopback } from './ipc.js'

const upstreamURL = process.env.BENCH_UPSTREAM_URL
const upstreamKey = process.env.BENCH_UPSTREAM_KEY
if (!upstreamURL || !upstreamKey) throw new Error('BENCH_UPSTREAM_URL and BENCH_UPSTREAM_KEY must be set')

const agent = new Agent({ connections: 64, keepAliveTimeout: 60_000 })
const batches = new Map<string, string>()
const expected = `Bearer ${BENCH_API_KEY}`

const send = (res: ServerResponse, status: number, body: string) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(body)
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.headers.authorization !== expected) return send(res, 401, '{"error":{"message":"bad key"}}')
  const path = req.url ?? '/'
  if (req.method === 'POST' && path === '/v1/batches') {
    let body = ''
    for await (const chunk of req) body += chunk
    const answer = await request(`${upstreamURL}/batches`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${upstreamKey}`, 'content-type': 'application/json' },
      body,
    })
    const text = await answer.body.text()
    if (answer.statusCode !== 200) return send(res, 502, text)
    const batch = JSON.parse(text) as { id: string }
    batches.set(batch.id, text)
    return send(res, 200, text)
  }
  const stored = req.method === 'GET' && path.startsWith('/v1/batches/') && batches.get(path.slice(12))
  if (stored) return send(res, 200, stored)
  req.resume()
  send(res, 404, '{"error":{"message":"not found"}}')
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => res.destroy())
})
server.keepAliveTimeout = 60_000
await listenOnLoopback(server)
announce(server, () => agent.close())
