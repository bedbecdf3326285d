// A host framework alone (BENCH_HOST: Express, Koa, ...), mounted as its batchkit adapter is and
// answering every request under /v1 with one fixed Batch object, in a process of its own: the
// control-plane table's floor for that host, what it costs per request before batchkit does anything.
import { ENDPOINT } from '../constants.js'
import { hostNamed } from '../hosts.js'
import { announce, listenOnLoopback } from './ipc.js'
import { batchObject } from './minimal-fake.js'

const host = hostNamed(process.env.BENCH_HOST ?? '')
if (!host.serveHandler) throw new Error(`no bench handler entry for ${host.name} yet`)

// The size and shape of what batchkit answers a create with: OpenAI's Batch object, every field present.
const batch = batchObject('batch_8d5c4c3e9a1b4f0e8c7d6b5a49382716', 'validating', {
  endpoint: ENDPOINT,
  input_file_id: 'file-b6aQLdU7aCze62I2HG3p7giy',
  completion_window: '24h',
})
const answer = { status: 200, body: batch }
const hosted = await host.serveHandler(async (req) => {
  req.resume()
  return answer
})
hosted.server.keepAliveTimeout = 60_000
await listenOnLoopback(hosted.server)
announce(hosted.server, () => hosted.close())
