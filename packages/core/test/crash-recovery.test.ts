import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { type DelayProxy, type FakeOpenAI, fakeUsage, startDelayProxy, startFakeOpenAI } from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import { POSTGRES_URL, REDIS_URL, testBackends, useBackend } from './support/backends.js'
import { newWebhookSecret, startWebhookReceiver, unwrap } from './support/webhook-receiver.js'

/**
 * kill -9 at the bad moments of a create: a batchkit server in a child process is killed while its
 * provider call is under way (the provider has made the object; the answer is held back by a
 * delaying proxy), at moments spread evenly from the provider's making the object to well after its
 * answer arrives, so some rounds always die before the answer and some after. A new server on the same store
 * must then leave no provider object without a record, and give every batch exactly one
 * `acreate_batch` and one `batch_success`.
 */
const RESPONSE_DELAY_MS = 300
// Long enough that a live creator's lease renewals (every third of it) survive a loaded CI machine.
const GRACE_MS = 3000
const BATCH_ROUNDS = 6
const FILE_ROUNDS = 4
const LINES = 3

const backends = await testBackends(['redis', 'postgres'])

describe.each(backends)('crash recovery on $label', (backend) => {
  if (!useBackend(backend)) return
  let fake: FakeOpenAI
  let proxy: DelayProxy
  let dir: string
  let eventsFile: string
  const children: ChildProcess[] = []

  beforeAll(async () => {
    fake = await startFakeOpenAI()
    const target = new URL(fake.baseURL)
    proxy = await startDelayProxy({
      target: { host: target.hostname, port: Number(target.port) },
      responseDelayMs: RESPONSE_DELAY_MS,
    })
    dir = mkdtempSync(join(tmpdir(), 'batchkit-crash-'))
    eventsFile = join(dir, 'events.jsonl')
    writeFileSync(eventsFile, '')
  })

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL')
    await proxy?.close()
    await fake?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /**
   * Starts a server on the shared store; resolves with a client for it. With `dieAfterWrite`, the server
   * kills itself the moment it stores a record whose key starts with it.
   */
  async function startServer(
    dieAfterWrite = '',
    extraEnv: Record<string, string> = {},
  ): Promise<{ child: ChildProcess; client: OpenAI }> {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@batchkit/source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./fixtures/crash-server.ts', import.meta.url)),
      ],
      {
        env: {
          ...process.env,
          STORE_KIND: backend.name,
          STORE_URL: backend.name === 'redis' ? REDIS_URL : POSTGRES_URL,
          STORE_TABLE: 'batchkit_test_keyv',
          STORE_NAMESPACE: backend.namespace,
          UPSTREAM_API_KEY: fake.apiKey,
          UPSTREAM_BASE_URL: proxy.url(fake.baseURL),
          GRACE_MS: String(GRACE_MS),
          EVENTS_FILE: eventsFile,
          DIE_AFTER_WRITE: dieAfterWrite,
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    children.push(child)
    const [first] = await once(createInterface({ input: child.stdout as Readable }), 'line')
    const { port } = JSON.parse(first as string) as { port: number }
    return { child, client: new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 }) }
  }

  /**
   * Kills the servers earlier tests left running: every server on the store follows every batch and
   * settles every intent, so a test whose servers are set up differently must run alone.
   */
  async function stopServers(): Promise<void> {
    const running = children.filter((child) => child.exitCode === null && child.signalCode === null)
    for (const child of running) child.kill('SIGKILL')
    await Promise.all(running.map((child) => once(child, 'exit')))
  }

  /**
   * Reads a batch with `read` until it shows `completed` and its `batch_success` has been delivered, or
   * 60 s pass; the last read.
   */
  async function untilSucceeded(
    batchId: string,
    read: () => Promise<OpenAI.Batches.Batch | undefined>,
  ): Promise<OpenAI.Batches.Batch | undefined> {
    const deadline = Date.now() + 60_000
    for (;;) {
      const batch = await read()
      const ended = readEvents(eventsFile).some((e) => e.batchId === batchId && e.type === 'batch_success')
      if ((batch?.status === 'completed' && ended) || Date.now() > deadline) return batch
      await sleep(200)
    }
  }

  /** Kills `child` the `share` (0 to 1) of twice the provider's delay after `happened()` turns true. */
  async function killAfter(child: ChildProcess, happened: () => boolean, share: number): Promise<void> {
    const deadline = Date.now() + 10_000
    while (!happened()) {
      if (Date.now() > deadline) throw new Error('the provider never saw the create')
      await sleep(1)
    }
    await sleep(Math.round(share * 2 * RESPONSE_DELAY_MS))
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  it('leaves every provider object with one record, and every batch with one acreate_batch and one batch_success', {
    timeout: 180_000,
  }, async () => {
    for (let round = 0; round < BATCH_ROUNDS; round++) {
      const { child, client } = await startServer()
      const input = await client.files.create({
        file: await toFile(Buffer.from(requests(round)), 'in.jsonl'),
        purpose: 'batch',
      })
      const before = fake.batches.size
      const create = client.batches
        .create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
        .catch(() => undefined)
      await killAfter(child, () => fake.batches.size > before, round / BATCH_ROUNDS)
      await create
    }
    for (let round = 0; round < FILE_ROUNDS; round++) {
      const { child, client } = await startServer()
      // A new upload, not a count: the reconciler may delete the last round's orphan meanwhile.
      const before = new Set(fake.files.keys())
      const upload = client.files
        .create({ file: await toFile(Buffer.from(requests(100 + round)), 'in.jsonl'), purpose: 'batch' })
        .catch(() => undefined)
      const arrived = () => [...fake.files.values()].some((f) => f.purpose === 'batch' && !before.has(f.id))
      await killAfter(child, arrived, round / FILE_ROUNDS)
      await upload
    }
    expect(fake.batches.size).toBe(BATCH_ROUNDS)

    // A new server on the same store settles what the dead ones left, and follows every batch to its end.
    const uploadsBefore = [...fake.files.values()].filter((f) => f.purpose === 'batch').length
    const { child: survivor, client } = await startServer()
    const upstreamBatches = [...fake.batches.values()]
    const deadline = Date.now() + 100_000
    let listed: OpenAI.Batches.Batch[] = []
    let events: { type: string; batchId: string; pid: number }[] = []
    for (;;) {
      listed = (await client.batches.list({ limit: 100 })).data
      events = readEvents(eventsFile)
      const ended = events.filter((e) => e.type === 'batch_success').length
      const recorded = new Set((await client.files.list()).data.map((f) => f.id))
      const orphans = [...fake.files.values()].filter((f) => f.purpose === 'batch' && !recorded.has(tagOf(f.filename)))
      // Each event is delivered on its own, in no set order: wait for every batch's announcement too.
      const announced = listed.every((b) => events.some((e) => e.batchId === b.id && e.type === 'acreate_batch'))
      const settled =
        listed.length === upstreamBatches.length && ended >= listed.length && announced && orphans.length === 0
      if (settled || Date.now() > deadline) break
      await sleep(200)
    }

    // Every batch the provider ran has exactly one record, under the id it was tagged with.
    const ids = listed.map((b) => b.id).sort()
    expect(ids).toEqual(upstreamBatches.map((b) => b.metadata?.batchkit_id).sort())
    expect(new Set(ids).size).toBe(ids.length)
    for (const batch of listed) {
      expect(batch.status).toBe('completed')
      expect(batch.usage?.total_tokens).toBeGreaterThan(0)
      const mine = events.filter((e) => e.batchId === batch.id)
      expect(mine.filter((e) => e.type === 'acreate_batch')).toHaveLength(1)
      expect(mine.filter((e) => e.type === 'batch_success')).toHaveLength(1)
    }

    // Every upload the provider holds has a record; the ones whose server died before recording them are gone.
    const files = (await client.files.list()).data
    const recorded = new Set(files.map((f) => f.id))
    const uploads = [...fake.files.values()].filter((f) => f.purpose === 'batch')
    for (const upload of uploads) {
      expect(
        recorded.has(tagOf(upload.filename)),
        `upload ${upload.filename} (created ${upload.created_at}) has no record`,
      ).toBe(true)
    }
    expect(uploads.length).toBeLessThanOrEqual(BATCH_ROUNDS + FILE_ROUNDS)
    const announcedAfterRestart = events.filter((e) => e.type === 'acreate_batch' && e.pid === survivor.pid).length
    console.info(
      `[crash recovery on ${backend.label}] ${BATCH_ROUNDS} batch creates and ${FILE_ROUNDS} uploads killed: ` +
        `${listed.length}/${upstreamBatches.length} provider batches recorded, ${announcedAfterRestart} of them ` +
        `adopted or first announced after the restart; ${uploadsBefore - uploads.length} orphan uploads deleted, ` +
        `${uploads.length} left, all recorded`,
    )
  })

  it('lists an upload and a batch whose server died between storing the record and listing it', {
    timeout: 120_000,
  }, async () => {
    const uploader = await startServer('batchkit:file:')
    const uploadsBefore = new Set(fake.files.keys())
    await expect(
      uploader.client.files.create({ file: await toFile(Buffer.from(requests(200)), 'in.jsonl'), purpose: 'batch' }),
    ).rejects.toThrow()
    const [upload] = [...fake.files.values()].filter((f) => !uploadsBefore.has(f.id))

    const creator = await startServer('batchkit:batch:')
    const input = await creator.client.files.create({
      file: await toFile(Buffer.from(requests(201)), 'in.jsonl'),
      purpose: 'batch',
    })
    const batchesBefore = new Set(fake.batches.keys())
    await expect(
      creator.client.batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    ).rejects.toThrow()
    const [upstream] = [...fake.batches.values()].filter((b) => !batchesBefore.has(b.id))
    expect(upload).toBeDefined()
    expect(upstream).toBeDefined()
    const uploadId = tagOf(upload?.filename ?? '')
    const batchId = upstream?.metadata?.batchkit_id ?? ''

    // Both records were stored and neither was listed; the reconciler of a new server lists them.
    const { client } = await startServer()
    const deadline = Date.now() + 60_000
    let batch: OpenAI.Batches.Batch | undefined
    let fileIds: string[] = []
    for (;;) {
      batch = (await client.batches.list({ limit: 100 })).data.find((b) => b.id === batchId)
      fileIds = (await client.files.list()).data.map((f) => f.id)
      const events = readEvents(eventsFile).filter((e) => e.batchId === batchId)
      if ((batch?.status === 'completed' && events.some((e) => e.type === 'batch_success')) || Date.now() > deadline)
        break
      await sleep(200)
    }
    expect(fileIds).toContain(uploadId)
    expect(batch?.status).toBe('completed')
    expect(batch?.usage?.total_tokens).toBeGreaterThan(0)
    const events = readEvents(eventsFile).filter((e) => e.batchId === batchId)
    expect(events.filter((e) => e.type === 'acreate_batch')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'batch_success')).toHaveLength(1)
  })

  it('finishes a batch whose server died between creating its parts: each part runs once', {
    timeout: 120_000,
  }, async () => {
    // The provider takes 4 requests a batch: 12 requests run as 3 parts, created one after another.
    const { child, client } = await startServer('', { PART_REQUESTS: '4' })
    const lines = `${Array.from({ length: 4 }, (_, i) => requests(300 + i)).join('\n')}\n`
    const input = await client.files.create({ file: await toFile(Buffer.from(lines), 'big.jsonl'), purpose: 'batch' })
    const before = new Set(fake.batches.keys())
    const create = client.batches
      .create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch(() => undefined)
    // Killed once the provider has made two parts, while the server waits for the second one's answer.
    await killAfter(child, () => fake.batches.size >= before.size + 2, 0)
    await create
    const started = [...fake.batches.values()].filter((b) => !before.has(b.id))
    expect(started).toHaveLength(2)
    const batchId = started[0]?.metadata?.batchkit_id ?? ''

    const { client: survivor } = await startServer('', { PART_REQUESTS: '4' })
    const batch = await untilSucceeded(batchId, async () =>
      (await survivor.batches.list({ limit: 100 })).data.find((b) => b.id === batchId),
    )
    // Every part ran exactly once upstream, and the client sees one batch of all 12 requests.
    const tags = [...fake.batches.values()]
      .filter((b) => !before.has(b.id))
      .map((b) => b.metadata?.batchkit_id)
      .sort()
    expect(tags).toEqual([batchId, `${batchId}_p1`, `${batchId}_p2`])
    expect(batch?.status).toBe('completed')
    expect(batch?.request_counts).toEqual({ total: 12, completed: 12, failed: 0 })
    const events = readEvents(eventsFile).filter((e) => e.batchId === batchId)
    expect(events.filter((e) => e.type === 'acreate_batch')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'batch_success')).toHaveLength(1)
  })

  it('adopts a batch submitted again after a full queue whose server died before storing it: it runs once', {
    timeout: 120_000,
  }, async () => {
    await stopServers()
    const ours = requests(600)
    const theirs = requests(601)
    // The queue holds one of the two at a time.
    const queueFake = await startFakeOpenAI({ enqueuedTokenLimit: promptTokensOf(ours) })
    try {
      expect(promptTokensOf(theirs)).toBe(promptTokensOf(ours))
      // Another client of the same organisation fills the queue.
      const direct = new OpenAI({ baseURL: queueFake.baseURL, apiKey: queueFake.apiKey })
      const otherInput = await direct.files.create({
        file: await toFile(Buffer.from(theirs), 'o.jsonl'),
        purpose: 'batch',
      })
      const other = await direct.batches.create({
        input_file_id: otherInput.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      expect((await direct.batches.retrieve(other.id)).status).toBe('in_progress')

      // Submitted again 1.5 s after the provider turned it down; the server dies once the provider has it.
      const env = { UPSTREAM_BASE_URL: queueFake.baseURL, QUEUE_RETRY_MS: '1500' }
      const { child, client } = await startServer('', { ...env, DIE_AFTER_CREATE_TAGGED: '_q\\d+$' })
      const input = await client.files.create({ file: await toFile(Buffer.from(ours), 'in.jsonl'), purpose: 'batch' })
      const batch = await client.batches.create({
        input_file_id: input.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      const tags = () =>
        [...queueFake.batches.values()]
          .map((b) => b.metadata?.batchkit_id ?? '')
          .filter((tag) => tag.startsWith(batch.id))
          .sort()
      const deadline = Date.now() + 20_000
      while (![...queueFake.batches.values()].some((b) => b.errors?.data[0]?.code === 'token_limit_exceeded')) {
        if (Date.now() > deadline) throw new Error('the provider never turned the batch down')
        await sleep(20)
      }
      expect((await client.batches.retrieve(batch.id)).status).toBe('validating')
      for (let i = 0; i < 2; i++) await direct.batches.retrieve(other.id)
      await once(child, 'exit')
      expect(child.signalCode).toBe('SIGKILL')
      expect(tags()).toEqual([batch.id, `${batch.id}_q1`])

      // A new server finds the submission by its tag instead of making another, and follows it to its end.
      const { client: survivor } = await startServer('', env)
      const shown = await untilSucceeded(batch.id, () => survivor.batches.retrieve(batch.id))
      expect(tags()).toEqual([batch.id, `${batch.id}_q1`])
      expect(shown?.status).toBe('completed')
      expect(shown?.request_counts).toEqual({ total: LINES, completed: LINES, failed: 0 })
      expect(shown?.usage?.input_tokens).toBe(promptTokensOf(ours))
      const events = readEvents(eventsFile).filter((e) => e.batchId === batch.id)
      expect(events.filter((e) => e.type === 'acreate_batch')).toHaveLength(1)
      expect(events.filter((e) => e.type === 'batch_success')).toHaveLength(1)
    } finally {
      // Stopped before their provider goes, so they do not poll a closed server.
      await stopServers()
      await queueFake.close()
    }
  })

  it('finishes a file delete whose server died between deleting the provider’s copy and the record', {
    timeout: 60_000,
  }, async () => {
    const { child, client } = await startServer('', { DIE_AFTER_UPSTREAM_DELETE: '1' })
    const file = await client.files.create({
      file: await toFile(Buffer.from(requests(500)), 'in.jsonl'),
      purpose: 'batch',
    })
    const upstream = [...fake.files.values()].find((f) => tagOf(f.filename) === file.id)
    expect(upstream).toBeDefined()
    const deleting = client.files.delete(file.id).catch(() => undefined)
    await once(child, 'exit')
    await deleting
    expect(child.signalCode).toBe('SIGKILL')
    expect(fake.files.has(upstream?.id ?? '')).toBe(false)

    // The next server's reconciler finishes the delete: no record is left of a file the provider no longer has.
    const { client: survivor } = await startServer()
    await expect
      .poll(
        () =>
          survivor.files.retrieve(file.id).then(
            () => 200,
            (error: { status?: number }) => error.status,
          ),
        {
          timeout: 30_000,
          interval: 200,
        },
      )
      .toBe(404)
    expect((await survivor.files.list({ limit: 100 })).data.map((f) => f.id)).not.toContain(file.id)
  })

  it('adopts a follow-up round of transient failures whose server died before storing it: it runs once', {
    timeout: 120_000,
  }, async () => {
    await stopServers()
    // The fake fails `flaky-1-` requests with a 500 the first time it runs them.
    const lines = ['ok', 'flaky-1-a', 'flaky-1-b'].map((name) =>
      JSON.stringify({
        custom_id: `${name}-${Date.now()}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${name}` }] },
      }),
    )
    const text = `${lines.join('\n')}\n`
    const env = { REQUEST_RETRIES: '1' }
    const { child, client } = await startServer('', { ...env, DIE_AFTER_CREATE_TAGGED: '_r\\d+$' })
    const input = await client.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' })
    const batch = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    // The server follows the batch to its end, makes the follow-up round of the two failures, and dies.
    await once(child, 'exit')
    expect(child.signalCode).toBe('SIGKILL')
    const tags = () =>
      [...fake.batches.values()]
        .map((b) => b.metadata?.batchkit_id ?? '')
        .filter((tag) => tag.startsWith(batch.id))
        .sort()
    const roundInputs = () => [...fake.files.values()].filter((f) => tagOf(f.filename) === `${batch.id}_r1`)
    expect(tags()).toEqual([batch.id, `${batch.id}_r1`])
    expect(roundInputs()).toHaveLength(1)

    // A new server finds the round's input and batch by their tags instead of making them again.
    const { client: survivor } = await startServer('', env)
    const shown = await untilSucceeded(batch.id, () => survivor.batches.retrieve(batch.id))
    expect(tags()).toEqual([batch.id, `${batch.id}_r1`])
    expect(roundInputs()).toHaveLength(1)
    expect(shown?.status).toBe('completed')
    expect(shown?.request_counts).toEqual({ total: 3, completed: 3, failed: 0 })
    expect(shown?.error_file_id).toBeNull()
    expect(shown?.usage?.input_tokens).toBe(promptTokensOf(text.trimEnd()))
    const events = readEvents(eventsFile).filter((e) => e.batchId === batch.id)
    expect(events.filter((e) => e.type === 'acreate_batch')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'batch_success')).toHaveLength(1)
    // Its servers run again the failures of every batch: later tests' servers do not.
    await stopServers()
  })

  it('deletes the parts of an upload whose server died before recording it', { timeout: 120_000 }, async () => {
    const { child, client } = await startServer('', { PART_REQUESTS: '4' })
    const lines = `${Array.from({ length: 4 }, (_, i) => requests(400 + i)).join('\n')}\n`
    const before = new Set(fake.files.keys())
    const added = () => [...fake.files.values()].filter((f) => !before.has(f.id) && f.purpose === 'batch')
    const upload = client.files
      .create({ file: await toFile(Buffer.from(lines), 'big.jsonl'), purpose: 'batch' })
      .catch(() => undefined)
    // Killed once the provider holds two of the three parts, whose answers the proxy still holds back.
    await killAfter(child, () => added().length >= 2, 0)
    await upload
    const tag = tagOf(added()[0]?.filename ?? '').replace(/_p\d+$/, '')

    const { client: survivor } = await startServer('', { PART_REQUESTS: '4' })
    const deadline = Date.now() + 60_000
    while (added().length > 0 && Date.now() < deadline) await sleep(200)
    expect(added()).toEqual([])
    expect((await survivor.files.list()).data.map((f) => f.id)).not.toContain(tag)
  })

  it.each([
    ['its billing record', 'batchkit:billing:'],
    ['its webhook, before sending it', 'batchkit:webhook:'],
  ])(
    'delivers the webhook of a batch whose server died right after storing %s, once, after a restart',
    {
      timeout: 120_000,
    },
    async (_moment, prefix) => {
      // Servers of earlier tests would follow this batch too: only the ones started here may.
      await stopServers()
      const receiver = await startWebhookReceiver()
      const secret = newWebhookSecret()
      const webhookEnv = { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret }
      try {
        const dying = await startServer(prefix, webhookEnv)
        const exited = once(dying.child, 'exit')
        const input = await dying.client.files.create({
          file: await toFile(Buffer.from(requests(300)), 'in.jsonl'),
          purpose: 'batch',
        })
        const batch = await dying.client.batches.create({
          input_file_id: input.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        })
        // Its tracker follows the batch to its end, bills it and dies at the write.
        const [, signal] = (await exited) as [number | null, string | null]
        expect(signal).toBe('SIGKILL')
        const ofBatch = () => receiver.received.filter((r) => r.body.includes(batch.id))
        expect(ofBatch()).toEqual([])

        await startServer('', webhookEnv)
        const ended = () => readEvents(eventsFile).filter((e) => e.batchId === batch.id && e.type === 'batch_success')
        // The webhook and the callback are delivered apart: wait for both, then for any repeat.
        const deadline = Date.now() + 60_000
        while ((ofBatch().length === 0 || ended().length === 0) && Date.now() < deadline) await sleep(100)
        await sleep(500)
        const received = ofBatch()
        expect(received).toHaveLength(1)
        expect(await unwrap(received[0] as NonNullable<(typeof received)[0]>, secret)).toMatchObject({
          object: 'event',
          type: 'batch.completed',
          data: { id: batch.id },
        })
        expect(ended()).toHaveLength(1)
      } finally {
        await receiver.close()
      }
    },
  )

  it('lets go the budget hold of a create killed between taking it and asking the provider', {
    timeout: 60_000,
  }, async () => {
    const budgets = { BUDGETS: JSON.stringify({ default: 5 }) }
    const reader = createBatchKit({
      store: backend.connect(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      budgets: { limitFor: () => 5 },
    })
    try {
      const before = (await reader.budgets.status('default')).reserved
      const dying = await startServer('', { ...budgets, DIE_AFTER_BUDGET_HOLD: '1' })
      const input = await dying.client.files.create({
        file: await toFile(Buffer.from(requests(300)), 'in.jsonl'),
        purpose: 'batch',
      })
      const batchesBefore = fake.batches.size
      await expect(
        dying.client.batches.create({
          input_file_id: input.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        }),
      ).rejects.toThrow()
      // The dead server held the batch's estimate and never asked the provider.
      const leaked = (await reader.budgets.status('default')).reserved - before
      expect(leaked).toBeGreaterThan(0)
      expect(fake.batches.size).toBe(batchesBefore)

      // A new server's reconciler finds nothing upstream for the intent, and the hold goes back.
      const { client } = await startServer('', budgets)
      await expect
        .poll(async () => (await reader.budgets.status('default')).reserved, { timeout: 30_000, interval: 200 })
        .toBeCloseTo(before, 9)
      expect(fake.batches.size).toBe(batchesBefore)
      expect((await client.batches.list({ limit: 100 })).data.map((b) => b.input_file_id)).not.toContain(input.id)
    } finally {
      await reader.close()
    }
  })
})

/** batchkit's id of an upload, from the name it gives the provider's copy. */
function tagOf(filename: string): string {
  return filename.replace(/\.jsonl$/, '')
}

function requests(seed: number): string {
  return Array.from({ length: LINES }, (_, i) =>
    JSON.stringify({
      custom_id: `r-${seed}-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${seed}.${i}` }] },
    }),
  ).join('\n')
}

/** The prompt tokens of a batch input, as the fake counts them for its queue and its usage. */
function promptTokensOf(jsonl: string): number {
  return jsonl.split('\n').reduce((sum, line) => sum + fakeUsage(JSON.parse(line)).prompt_tokens, 0)
}

function readEvents(file: string): { type: string; batchId: string; pid: number }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { type: string; batchId: string; pid: number })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
