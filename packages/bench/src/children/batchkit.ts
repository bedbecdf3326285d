// batchkit on one host (BENCH_HOST: Express, Koa, ...) and one store (BENCH_STORE: memory or redis),
// proxying to the fake upstream at BENCH_UPSTREAM_URL, in a process of its own.
import { apiKeyAuth, openai } from '@batchkit/core'
import { Keyv } from 'keyv'
import { BENCH_API_KEY } from '../constants.js'
import { hostNamed } from '../hosts.js'
import { announce, listenOnLoopback } from './ipc.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

const host = hostNamed(env('BENCH_HOST'))
const storeKind = env('BENCH_STORE')
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
// A namespace of this run's own, so the bench never reads or clears anyone else's keys.
const namespace = `batchkit-bench-${process.pid}-${Date.now()}`

let store: Keyv
let cleanUp: () => Promise<void> = async () => undefined
if (storeKind === 'memory') {
  store = new Keyv()
} else if (storeKind === 'redis') {
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(redisUrl).hostname)) {
    throw new Error(`the bench only talks to a Redis on loopback, not ${redisUrl}`)
  }
  // Imported only here, so the in-memory rows do not carry the Redis client's memory.
  const { default: KeyvRedis } = await import('@keyv/redis')
  const redis = new KeyvRedis(redisUrl)
  store = new Keyv(redis, { namespace })
  cleanUp = async () => {
    const client = (await redis.getClient()) as { sendCommand(args: string[]): Promise<unknown> }
    let cursor = '0'
    do {
      const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${namespace}:*`, 'COUNT', '1000'])) as [
        string,
        string[],
      ]
      if (keys.length > 0) await client.sendCommand(['DEL', ...keys])
      cursor = String(next)
    } while (cursor !== '0')
    await store.disconnect()
  }
} else {
  throw new Error(`BENCH_STORE must be 'memory' or 'redis', not '${storeKind}'`)
}

if (!host.serve) throw new Error(`no bench entry for ${host.name} yet`)
const hosted = await host.serve({
  store,
  providers: { openai: openai({ apiKey: env('BENCH_UPSTREAM_KEY'), baseURL: env('BENCH_UPSTREAM_URL') }) },
  authenticate: apiKeyAuth({ [BENCH_API_KEY]: 'bench' }),
  // High enough for the 1 GB upload (OpenAI's own limits are 200 MB and 50,000 requests).
  limits: { maxBatchFileBytes: 4_000_000_000, maxBatchRequests: 10_000_000 },
  estimates: { enabled: process.env.BENCH_ESTIMATES !== 'off' },
})

const server = hosted.server
server.keepAliveTimeout = 60_000
await listenOnLoopback(server)
announce(server, async () => {
  await hosted.close()
  await cleanUp()
})
