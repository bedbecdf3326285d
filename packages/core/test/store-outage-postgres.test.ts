import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { type FakeOpenAI, fakeBatchUsage, startFakeOpenAI } from '@batchkit/testkit'
import KeyvPostgres from '@keyv/postgres'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveNodeRequest } from '../src/http/node.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { type Answer, OutageLoad } from './support/outage-load.js'
import { OwnPostgres } from './support/own-postgres.js'

/**
 * A PostgreSQL outage answers 503 within a bounded time, never a hang and never a false 404, and
 * nothing stored before it is lost: a PostgreSQL server of this file's own (never the shared one)
 * frozen (SIGSTOP to the postmaster and every backend), killed (SIGKILL, as in a crash) and
 * restarted on the same data directory, while several clients keep calling the API over HTTP.
 * Unlike the Redis test's store, PostgreSQL keeps its data through a kill: everything created
 * before the outage must be there again once the server has recovered, and a batch created before
 * it is still followed to its end.
 */

const IN_CI = process.env.CI === 'true'
const STORE_TIMEOUT_MS = 1000
const CLIENTS = 4

/** The model the tracked batch uses, routed to an upstream that advances slowly enough to span the outage. */
const SLOW_MODEL = 'gpt-4o'
/** One step every this many ms: validating, in progress, finalizing, completed about 15 s after its create. */
const SLOW_STEP_MS = 5000
const TRACKED_LINES = [0, 1, 2].map((i) => ({
  custom_id: `t-${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: SLOW_MODEL, messages: [{ role: 'user', content: `tracked ${i}` }], max_tokens: 5 + i },
}))

/**
 * WORKAROUND for a batchkit bug this test found. When PostgreSQL dies, every idle connection in the
 * `pg` pool inside `@keyv/postgres` ends, and the pool emits `error`; nothing listens (neither
 * `@keyv/postgres` nor batchkit, and the pool is private to `@keyv/postgres`, so a user cannot
 * either), so Node throws it as an uncaught exception: a kit on PostgreSQL crashes its whole process
 * when the database goes down. Until batchkit handles it, this test catches those pool errors that
 * have no listener and counts them, so that it can check everything else about an outage.
 * BATCHKIT_TEST_PG_UNGUARDED=1 turns the workaround off, to see the crash.
 */
function catchUnhandledPoolErrors(): { caught: unknown[]; restore(): void } {
  const caught: unknown[] = []
  if (process.env.BATCHKIT_TEST_PG_UNGUARDED === '1') return { caught, restore: () => undefined }
  // The very `pg` that `@keyv/postgres` imports (not a dependency of this package).
  const requireHere = createRequire(import.meta.url)
  const pg = createRequire(requireHere.resolve('@keyv/postgres'))('pg') as {
    Pool: { prototype: { emit(event: string | symbol, ...args: unknown[]): boolean; listenerCount(e: string): number } }
  }
  const proto = pg.Pool.prototype
  const emit = proto.emit
  proto.emit = function (this: typeof proto, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) {
      caught.push(args[0])
      return false
    }
    return emit.call(this, event, ...args)
  }
  const restore = () => {
    proto.emit = emit
  }
  return { caught, restore }
}

const started = await OwnPostgres.start()

describe('a PostgreSQL outage', () => {
  if (typeof started === 'string') {
    const why = `a private PostgreSQL server could not be started (${started})`
    if (IN_CI) {
      it('needs a private PostgreSQL server', () => {
        throw new Error(`${why}, and CI=true requires it`)
      })
    } else {
      console.warn(`[batchkit tests] ${why}: skipping the PostgreSQL outage tests`)
      it.skip(why, () => undefined)
    }
    return
  }
  const own = started
  let fake: FakeOpenAI
  let slow: FakeOpenAI
  let keyv: Keyv
  let kit: BatchKit
  let server: Server
  let origin: string
  const reported: string[] = []
  /** Files and batches the API said it created (200), which must never be lost while their store lives. */
  /** A batch on the slow upstream, created before the outage and still running when it begins. */
  let tracked: string

  const poolErrors = catchUnhandledPoolErrors()

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    slow = await startFakeOpenAI({ progress: SLOW_STEP_MS })
    keyv = new Keyv(new KeyvPostgres({ uri: own.url }), { namespace: 'outage' })
    kit = createBatchKit({
      store: keyv,
      storeTimeoutMs: STORE_TIMEOUT_MS,
      providers: {
        openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }),
        slow: openai({ apiKey: slow.apiKey, baseURL: slow.baseURL }),
      },
      models: [
        { model: 'gpt-4o-mini', provider: 'openai' },
        { model: SLOW_MODEL, provider: 'slow' },
      ],
      onError: (error, context) => reported.push(`${context}: ${String(error)}`),
      tracking: { initialIntervalMs: 50, maxIntervalMs: 200, tickMs: 50 },
      freshnessMs: 50,
    })
    server = createServer((req, res) => void serveNodeRequest(kit.http, req, res, { basePath: '/v1' }))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise((resolve) => server?.close(resolve))
    await kit?.close()
    await keyv?.disconnect().catch(() => undefined)
    await fake?.close()
    await slow?.close()
    await own.stop()
    poolErrors.restore()
    if (poolErrors.caught.length)
      console.warn(
        `[outage:postgres] BUG: the pg pool emitted ${poolErrors.caught.length} 'error' events nobody listened to ` +
          `(would have crashed the process), first: ${String(poolErrors.caught[0])}`,
      )
    if (reported.length)
      console.info(`[outage:postgres] ${reported.length} store failures reported, first: ${reported[0]}`)
  })

  const {
    files,
    batches,
    call,
    upload,
    createBatch,
    clientsFor,
    summary,
    expectOnly200or503,
    expectAllThere,
    recovered,
  } = new OutageLoad(() => origin, CLIENTS)

  it('serves normally before the outage', async () => {
    const file = await upload()
    expect(file.status).toBe(200)
    files.push(file.body.id as string)
    const batch = await createBatch(file.body.id as string)
    expect(batch.status).toBe(200)
    batches.push(batch.body.id as string)

    const trackedFile = await upload(TRACKED_LINES.map((line) => `${JSON.stringify(line)}\n`).join(''))
    expect(trackedFile.status).toBe(200)
    files.push(trackedFile.body.id as string)
    const trackedBatch = await createBatch(trackedFile.body.id as string)
    expect(trackedBatch.status).toBe(200)
    tracked = trackedBatch.body.id as string
    batches.push(tracked)

    const answers = await clientsFor(500)
    summary('before', answers)
    for (const answer of answers) expect(answer.status, answer.what).toBe(200)
    // Still running when the outage begins, so its end can only be recorded after the store recovers.
    const shown = (await call('retrieve batch', 'GET', `/v1/batches/${tracked}`)).body as { status?: string }
    expect(shown.status).not.toBe('completed')
  })

  it('answers 200 or 503 within 5 s while PostgreSQL is frozen, and loses nothing', async () => {
    own.freeze()
    let answers: Answer[]
    try {
      answers = await clientsFor(6000)
    } finally {
      own.thaw()
    }
    const counts = summary('frozen', answers)
    expectOnly200or503(answers)
    expect(counts[503]).toBeGreaterThan(0)
    await recovered(5000)
    await expectAllThere()
  })

  it('answers 503 at once while PostgreSQL is down, and has everything back after crash recovery', async () => {
    const before = { files: files.length, batches: batches.length }
    await own.kill()
    const answers = await clientsFor(2000)
    const counts = summary('killed', answers)
    expectOnly200or503(answers)
    expect(counts[503]).toBe(answers.length)
    expect(files.length).toBe(before.files)
    expect(batches.length).toBe(before.batches)

    const restarting = Date.now()
    expect(await own.restart()).toBe(true)
    await recovered(10_000)
    console.info(`[outage:postgres] restarted and serving again after ${Date.now() - restarting} ms`)
    // Nothing is forgotten: what was created before the kill, before the freeze included, is there.
    await expectAllThere()
    const file = files.at(-1) as string
    const batch = await createBatch(file)
    expect(batch.status).toBe(200)
    batches.push(batch.body.id as string)
    const after = await clientsFor(1000)
    summary('restarted', after)
    for (const answer of after) expect(answer.status, answer.what).toBe(200)
    await expectAllThere()
  })

  it('follows a batch created before the outage to completed, with its usage, once the store is back', async () => {
    const deadline = Date.now() + SLOW_STEP_MS * 3 + 10_000
    let shown: { status?: string; usage?: unknown; request_counts?: unknown } = {}
    while (Date.now() < deadline) {
      const answer = await call('retrieve batch', 'GET', `/v1/batches/${tracked}`)
      expect(answer.status).toBe(200)
      shown = answer.body as typeof shown
      if (shown.status === 'completed') break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    console.info(`[outage:postgres] tracked batch ${tracked}: ${shown.status}, usage ${JSON.stringify(shown.usage)}`)
    expect(shown.status).toBe('completed')
    expect(shown.request_counts).toEqual({ total: TRACKED_LINES.length, completed: TRACKED_LINES.length, failed: 0 })
    expect(shown.usage).toEqual(fakeBatchUsage(TRACKED_LINES))
  })
})
