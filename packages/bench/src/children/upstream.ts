// A fake OpenAI upstream in a process of its own. BENCH_UPSTREAM picks which:
//   testkit  the project's fake (`startFakeOpenAI`), with batches held still for an hour, or advanced
//            one step every BENCH_UPSTREAM_PROGRESS_MS ms when that is set (validating, in_progress,
//            finalizing, completed), so a batch runs to its end;
//   minimal  the bench's own minimal fake (see minimal-fake.ts).
// BENCH_BATCH_STATUS=completed makes the minimal fake create every batch already finished.
import type { Server } from 'node:http'
import { UPSTREAM_API_KEY } from '../constants.js'
import { announce, listenOnLoopback } from './ipc.js'
import { createMinimalFake } from './minimal-fake.js'

const apiKey = process.env.BENCH_UPSTREAM_KEY ?? UPSTREAM_API_KEY
const kind = process.env.BENCH_UPSTREAM ?? 'minimal'

if (kind === 'testkit') {
  // Imported only here, so the minimal fake's process holds nothing of the testkit's.
  const { startFakeOpenAI } = await import('@batchkit/testkit')
  const progress = Number(process.env.BENCH_UPSTREAM_PROGRESS_MS ?? 3_600_000)
  if (!Number.isInteger(progress) || progress < 1) {
    throw new Error(
      `BENCH_UPSTREAM_PROGRESS_MS must be a whole number of ms, not '${process.env.BENCH_UPSTREAM_PROGRESS_MS}'`,
    )
  }
  const fake = await startFakeOpenAI({ apiKey, host: '127.0.0.1', progress })
  const port = Number(new URL(fake.baseURL).port)
  // The testkit fake owns its server; announce its address and close it through its own API.
  process.send?.({ type: 'listening', port, address: '127.0.0.1' })
  const exit = () => void fake.close().finally(() => process.exit(0))
  process.once('SIGTERM', exit)
  process.once('disconnect', exit)
} else if (kind === 'minimal') {
  const status = process.env.BENCH_BATCH_STATUS === 'completed' ? 'completed' : 'validating'
  const server: Server = createMinimalFake({ apiKey, batchStatus: status })
  server.keepAliveTimeout = 60_000
  await listenOnLoopback(server)
  announce(server)
} else {
  throw new Error(`BENCH_UPSTREAM must be 'testkit' or 'minimal', not '${kind}'`)
}
