import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import KeyvPostgres from '@keyv/postgres'
import KeyvRedis, { createClient } from '@keyv/redis'
import Keyv from 'keyv'
import { afterAll, beforeAll, it } from 'vitest'

/**
 * The stores batchkit is tested against: the default in-memory Keyv, and real Redis and
 * PostgreSQL servers. Every test file gets a fresh namespace, so runs never see each other's
 * records and everything they wrote can be removed afterwards.
 *
 * A server that is not reachable skips its tests on a developer machine, with a warning naming the
 * service and its address; under CI (`CI=true`) it fails them instead, so a broken service
 * container can never turn the multi-instance tests into a silent pass.
 */
export interface Backend {
  /** `memory`, `redis` or `postgres`. */
  readonly name: BackendName
  /** A readable name for test titles: `memory`, `Redis` or `PostgreSQL`. */
  readonly label: string
  /** Where the server is expected, such as `redis://127.0.0.1:6379`; `in process` for memory. */
  readonly address: string
  /** The Keyv namespace every connection of this test file uses. */
  readonly namespace: string
  /** Whether the server answered when the file started (always true for memory). */
  readonly available: boolean
  /** Whether several server instances can share this store, as `kit.multiInstanceSafe` should say. */
  readonly multiInstanceSafe: boolean
  /**
   * A new Keyv connection to this backend and namespace, as a separate server instance would open
   * one. For memory every call is a separate, empty store.
   */
  connect(): Keyv
  /** Removes everything written under the namespace and closes every connection `connect` opened. */
  cleanup(): Promise<void>
}

export type BackendName = 'memory' | 'adapter' | 'redis' | 'postgres'

export const REDIS_URL = process.env.BATCHKIT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const POSTGRES_URL = process.env.BATCHKIT_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'

const IN_CI = process.env.CI === 'true'
const PROBE_TIMEOUT_MS = 1000
/** The table `@keyv/postgres` keeps records in during tests; rows are namespaced, so runs share it. */
const POSTGRES_TABLE = 'batchkit_test_keyv'

/**
 * The backends to test, probed once. Call it with top-level `await` so that availability is known
 * when the tests are collected.
 */
export async function testBackends(
  names: readonly BackendName[] = ['memory', 'redis', 'postgres'],
): Promise<Backend[]> {
  // Short, and only [a-z0-9_], so it also fits in the PostgreSQL index table name batchkit derives from it.
  const namespace = `bk_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  return Promise.all(
    names.map((name) => {
      if (name === 'memory') return memoryBackend(namespace)
      if (name === 'adapter') return adapterBackend(namespace)
      if (name === 'redis') return redisBackend(namespace)
      return postgresBackend(namespace)
    }),
  )
}

/**
 * Sets a backend up for the tests of the current `describe`, and says whether they should run.
 * Returns false (after registering one skipped test that names the service and its address) when
 * the server is not reachable outside CI. Under CI an unreachable server fails the suite. Registers
 * the clean-up that runs after the suite.
 *
 *     describe.each(backends)('lists in $label', (backend) => {
 *       if (!useBackend(backend)) return
 *       ...
 *     })
 */
export function useBackend(backend: Backend): boolean {
  if (!backend.available && !IN_CI) {
    const message = `${backend.label} at ${backend.address} is not reachable: skipping its tests (under CI=true they would fail)`
    console.warn(`[batchkit tests] ${message}`)
    it.skip(message, () => undefined)
    return false
  }
  beforeAll(() => {
    if (!backend.available) {
      throw new Error(
        `${backend.label} at ${backend.address} is not reachable, and CI=true requires it. Start the service, or point ` +
          `BATCHKIT_TEST_${backend.name.toUpperCase()}_URL at one.`,
      )
    }
  })
  afterAll(() => backend.cleanup())
  return true
}

async function memoryBackend(namespace: string): Promise<Backend> {
  return {
    name: 'memory',
    label: 'memory',
    address: 'in process',
    namespace,
    available: true,
    multiInstanceSafe: false,
    connect: () => new Keyv(),
    cleanup: async () => undefined,
  }
}

/**
 * A Keyv storage adapter batchkit does not recognise (as `@keyv/sqlite`, `@keyv/mongo` or a user's
 * own would be), kept in this process: batchkit keeps its lists in the store itself then. Every call
 * is a separate, empty store, as for memory.
 */
async function adapterBackend(namespace: string): Promise<Backend> {
  return {
    name: 'adapter',
    label: 'another Keyv adapter',
    address: 'in process',
    namespace,
    available: true,
    multiInstanceSafe: false,
    connect: () => keyvOverAdapter(new Map(), namespace),
    cleanup: async () => undefined,
  }
}

/**
 * A Keyv over a plain adapter object around `entries` (the Map itself is never the store), which
 * batchkit takes for an adapter it does not recognise, as it would `@keyv/sqlite` or a user's own.
 */
export function keyvOverAdapter(entries: Map<string, unknown>, namespace?: string): Keyv {
  return new Keyv({
    store: {
      get: async (key: string) => entries.get(key),
      set: async (key: string, value: unknown) => void entries.set(key, value),
      delete: async (key: string) => entries.delete(key),
      clear: async () => entries.clear(),
      on: () => undefined,
    },
    namespace,
  })
}

async function redisBackend(namespace: string): Promise<Backend> {
  const url = new URL(REDIS_URL)
  const port = Number(url.port || 6379)
  const available = await probe(url.hostname, port, Buffer.from('PING\r\n'), (reply) => reply.startsWith('+PONG'))
  const opened: Keyv[] = []
  return {
    name: 'redis',
    label: 'Redis',
    address: REDIS_URL,
    namespace,
    available,
    multiInstanceSafe: true,
    connect() {
      const keyv = new Keyv(new KeyvRedis(REDIS_URL), { namespace })
      opened.push(keyv)
      return keyv
    },
    async cleanup() {
      if (available) {
        // Records live under `<ns>::…` (the adapter's prefix) and batchkit's sorted sets under
        // `<ns>:batchkit:index:…`; both start with `<ns>:`, and the namespace is this run's alone.
        const client = await createClient({ url: REDIS_URL }).connect()
        const keys: string[] = []
        for await (const batch of client.scanIterator({ MATCH: `${namespace}:*`, COUNT: 1000 })) keys.push(...batch)
        if (keys.length > 0) await client.unlink(keys)
        client.destroy()
      }
      await Promise.all(opened.splice(0).map((keyv) => keyv.disconnect()))
    },
  }
}

async function postgresBackend(namespace: string): Promise<Backend> {
  const url = new URL(POSTGRES_URL)
  const port = Number(url.port || 5432)
  // An SSLRequest: any PostgreSQL server answers it with one byte, `S` or `N`, before authentication.
  const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
  const available = await probe(url.hostname, port, sslRequest, (reply) => reply === 'S' || reply === 'N')
  const opened: Keyv[] = []
  return {
    name: 'postgres',
    label: 'PostgreSQL',
    address: POSTGRES_URL,
    namespace,
    available,
    multiInstanceSafe: true,
    // `@keyv/postgres` keeps one pg pool per process for a given URI, so the connections of one test
    // file share it; each still gets its own Keyv, RecordStore and index, as separate servers would.
    connect() {
      const keyv = new Keyv(new KeyvPostgres({ uri: POSTGRES_URL, table: POSTGRES_TABLE }), { namespace })
      opened.push(keyv)
      return keyv
    },
    async cleanup() {
      const keyv = opened[0]
      if (available && keyv) {
        await keyv.clear()
        // batchkit keeps its ordered index in a table of its own, its list names prefixed with the namespace.
        await (keyv.store as KeyvPostgres).query('DELETE FROM batchkit_index WHERE list LIKE $1', [`${namespace}:%`])
      }
      opened.length = 0
      // Ending the shared pool once closes every connection; a second end() would throw.
      await keyv?.disconnect()
    },
  }
}

/** Whether a server answers `request` on host:port as `accept` expects, within a second. */
function probe(host: string, port: number, request: Buffer, accept: (reply: string) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    let reply = ''
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS)
    socket.setEncoding('latin1')
    socket.once('connect', () => socket.write(request))
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (accept(reply)) done(true)
      else if (reply.length >= 5) done(false)
    })
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}
