// testkit's delay proxy in a process of its own, in front of the fake upstream on 127.0.0.1:BENCH_PROXY_PORT:
// every answer waits BENCH_PROXY_DELAY_MS, as a distant provider's would.
import { startDelayProxy } from '@batchkit/testkit'

const proxy = await startDelayProxy({
  target: { host: '127.0.0.1', port: Number(process.env.BENCH_PROXY_PORT) },
  responseDelayMs: Number(process.env.BENCH_PROXY_DELAY_MS),
})
process.send?.({ type: 'listening', port: proxy.port, address: '127.0.0.1' })
const exit = () => void proxy.close().finally(() => process.exit(0))
process.once('SIGTERM', exit)
process.once('disconnect', exit)
