// A host framework alone (BENCH_HOST: Express, Koa, ...), mounted as its batchkit adapter is and
// answering every request under /v1 with one fixed Batch object, in a process of its own: the
// control-plane table's floor for that host, what it costs per request before batchkit does anything.
import { hostNamed } from '../hosts.js'
import { announce, listenOnLoopback } from './ipc.js'

const host = hostNamed(process.env.BENCH_HOST ?? '')
if (!host.serveAlone) throw new Error(`no fixed-answer entry for ${host.name} yet`)

// The size and shape of what batchkit answers a create with (OpenAI's Batch object, every field present).
const batch = {
  id: 'batch_8d5c4c3e9a1b4f0e8c7d6b5a49382716',
  object: 'batch',
  endpoint: '/v1/chat/completions',
  model: 'gpt-4o-mini',
  errors: null,
  input_file_id: 'file-b6aQLdU7aCze62I2HG3p7giy',
  completion_window: '24h',
  status: 'validating',
  output_file_id: null,
  error_file_id: null,
  created_at: 1796657283,
  in_progress_at: null,
  expires_at: 1796743683,
  finalizing_at: null,
  completed_at: null,
  failed_at: null,
  expired_at: null,
  cancelling_at: null,
  cancelled_at: null,
  request_counts: { total: 10, completed: 0, failed: 0 },
  usage: null,
  metadata: null,
}
const hosted = await host.serveAlone(JSON.stringify(batch))
hosted.server.keepAliveTimeout = 60_000
await listenOnLoopback(hosted.server)
announce(hosted.server, () => hosted.close())
