import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { BatchEvent } from '../src/events/types.js'
import { type BatchKit, type BatchKitOptions, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord } from '../src/types.js'
import type { WebhookEndpoint, WebhookOptions } from '../src/webhooks/options.js'
import { webhookBody, webhookMessageOf } from '../src/webhooks/payload.js'
import { testBackends, useBackend } from './support/backends.js'
import {
  newWebhookSecret,
  type ReceivedWebhook,
  startWebhookReceiver,
  unwrap,
  type WebhookReceiver,
} from './support/webhook-receiver.js'

/** Fast enough for tests; the fake advances a batch one step per poll. */
const FAST = {
  tracking: { initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
  delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
  freshnessMs: 0,
}

let fake: FakeOpenAI
beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

/** Everything batchkit told the logger and onError, as text, to look for secrets in. */
interface Reports {
  errors: { error: unknown; context: string }[]
  logged: string[]
  events: BatchEvent[]
}

let owners = 0
/** A tenant of the test's own, so a store shared by the tests of a file never mixes their webhooks. */
function newOwner(): string {
  owners++
  return `tenant-${owners}-${Date.now().toString(36)}`
}

function kitWith(options: {
  store: BatchKitOptions['store']
  owner: string
  endpoints: () => WebhookEndpoint[]
  /** Endpoints of other owners of the same test. */
  others?: Record<string, () => WebhookEndpoint[]>
  webhooks?: Partial<WebhookOptions>
  tracking?: BatchKitOptions['tracking']
  reports: Reports
}): BatchKit {
  const { reports } = options
  const log = (level: string) => (fields: unknown, message?: string) =>
    void reports.logged.push(`${level} ${message ?? ''} ${JSON.stringify(fields)}`)
  return createBatchKit({
    store: options.store,
    providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
    ...FAST,
    tracking: { ...FAST.tracking, ...options.tracking },
    callbacks: [(event) => void reports.events.push(event)],
    webhooks: {
      endpoints: (owner) => (owner === options.owner ? options.endpoints() : (options.others?.[owner]?.() ?? [])),
      allowAddresses: ['loopback'],
      pollIntervalMs: 10,
      retryDelayMs: 20,
      ...options.webhooks,
    },
    onError: (error, context) => void reports.errors.push({ error, context }),
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
  })
}

function newReports(): Reports {
  return { errors: [], logged: [], events: [] }
}

const lines = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `r-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i}` }] },
    }),
  ).join('\n')

async function submit(kit: BatchKit, owner: string): Promise<BatchRecord> {
  const principal = { owner }
  const file = await kit.files.create(principal, { file: Readable.from([lines(2)]), purpose: 'batch' })
  return kit.batches.create(principal, {
    inputFileId: file.id,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
  })
}

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const started = Date.now()
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Reads a batch until it shows an end, as a polling client would; each read refreshes it from the provider. */
async function readUntilEnded(kit: BatchKit, owner: string, batchId: string): Promise<void> {
  const started = Date.now()
  for (;;) {
    const batch = await kit.batches.retrieve({ owner }, batchId)
    await kit.batches.idle()
    if (['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) return
    if (Date.now() - started > 15_000) throw new Error(`batch ${batchId} never ended (${batch.status})`)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The requests a receiver got for one batch. */
function forBatch(receiver: WebhookReceiver, batchId: string): ReceivedWebhook[] {
  return receiver.received.filter((r) => (JSON.parse(r.body) as { data: { id: string } }).data.id === batchId)
}

/** Neither a secret nor its key bytes in anything batchkit logged or reported. */
function expectNoSecrets(reports: Reports, secrets: string[]): void {
  const text = [
    ...reports.logged,
    ...reports.errors.map(({ error, context }) => {
      const e = error as Error
      return `${context} ${e?.message} ${e?.stack} ${String((e?.cause as Error | undefined)?.message)}`
    }),
    JSON.stringify(reports.events),
  ].join('\n')
  for (const secret of secrets) {
    expect(text).not.toContain(secret)
    expect(text).not.toContain(secret.slice('whsec_'.length))
  }
}

const backends = await testBackends()

describe.each(backends)('webhooks on $label', (backend) => {
  if (!useBackend(backend)) return
  let receiver: WebhookReceiver
  beforeEach(async () => {
    receiver = await startWebhookReceiver()
  })
  afterEach(() => receiver.close())

  it('sends a completed and a cancelled batch once each, as OpenAI does, verified by openai webhooks.unwrap', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    // The tracker waits; reads move the batches along (each read refreshes once), so the cancel lands in progress.
    const kit = kitWith({
      store: backend.connect(),
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [secret] }],
      tracking: { initialIntervalMs: 60_000 },
      reports,
    })
    try {
      const completed = await submit(kit, owner)
      const cancelled = await submit(kit, owner)
      await kit.batches.retrieve({ owner }, cancelled.id)
      await kit.batches.idle()
      await kit.batches.cancel({ owner }, cancelled.id)
      await readUntilEnded(kit, owner, cancelled.id)
      await readUntilEnded(kit, owner, completed.id)
      await until('both webhooks', () =>
        forBatch(receiver, completed.id).length > 0 && forBatch(receiver, cancelled.id).length > 0 ? true : undefined,
      )
      // Long enough for a second delivery of either to show up, at this pace.
      await sleep(300)

      for (const [batch, type, callbackType] of [
        [completed, 'batch.completed', 'batch_success'],
        [cancelled, 'batch.cancelled', 'batch_cancelled'],
      ] as const) {
        const received = forBatch(receiver, batch.id)
        expect(received).toHaveLength(1)
        const [only] = received as [ReceivedWebhook]
        const event = await unwrap(only, secret)
        const shown = await kit.batches.retrieve({ owner }, batch.id)
        const callbackEvent = reports.events.find((e) => e.batchId === batch.id && e.type === callbackType)
        expect(event).toEqual({
          id: callbackEvent?.id,
          object: 'event',
          created_at: type === 'batch.completed' ? shown.completedAt : shown.cancelledAt,
          type,
          data: { id: batch.id },
        })
        expect(only.headers['webhook-id']).toMatch(/^wh_[0-9a-f]{32}$/)
        expect(only.headers['content-type']).toBe('application/json')
      }
      expect(reports.errors).toEqual([])
      expectNoSecrets(reports, [secret])
    } finally {
      await kit.close()
    }
  })

  it('retries a delivery answered 500 with the same webhook-id, each attempt signed and verifiable', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    receiver.respond = (index) => (index < 2 ? 500 : 200)
    const kit = kitWith({
      store: backend.connect(),
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [secret] }],
      reports,
    })
    try {
      const batch = await submit(kit, owner)
      await until('a delivery answered 200', () => (receiver.received.some((r) => r.status === 200) ? true : undefined))
      await sleep(300)
      const received = forBatch(receiver, batch.id)
      expect(received.map((r) => r.status)).toEqual([500, 500, 200])
      expect(new Set(received.map((r) => r.headers['webhook-id'])).size).toBe(1)
      const events = await Promise.all(received.map((r) => unwrap(r, secret)))
      expect(new Set(events.map((e) => e.id)).size).toBe(1)
      expect(events[0]).toMatchObject({ type: 'batch.completed', data: { id: batch.id } })
      expect(reports.logged.filter((l) => l.includes('batchkit webhook delivery failed; will retry'))).toHaveLength(2)
      expect(reports.errors).toEqual([])
      expectNoSecrets(reports, [secret])
    } finally {
      await kit.close()
    }
  })

  it('signs with every secret during a rotation, so a receiver holding either one verifies it', async () => {
    const owner = newOwner()
    const [next, previous, unrelated] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()]
    const reports = newReports()
    const kit = kitWith({
      store: backend.connect(),
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [next, previous] }],
      reports,
    })
    try {
      const batch = await submit(kit, owner)
      const [received] = await until('the webhook', () => {
        const got = forBatch(receiver, batch.id)
        return got.length > 0 ? got : undefined
      })
      if (!received) throw new Error('no webhook')
      expect(String(received.headers['webhook-signature']).split(' ')).toHaveLength(2)
      expect(await unwrap(received, next)).toMatchObject({ type: 'batch.completed', data: { id: batch.id } })
      expect(await unwrap(received, previous)).toMatchObject({ type: 'batch.completed', data: { id: batch.id } })
      await expect(unwrap(received, unrelated)).rejects.toThrow(/signature does not match/)
      expectNoSecrets(reports, [next, previous])
    } finally {
      await kit.close()
    }
  })
})

describe('webhooks that cannot or should not be delivered', () => {
  let receiver: WebhookReceiver
  beforeEach(async () => {
    receiver = await startWebhookReceiver()
  })
  afterEach(() => receiver.close())

  it('refuses loopback endpoints unless allowed, by the address connected to, and reports each refusal once', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    const port = receiver.port
    const urls = [
      `http://127.0.0.1:${port}/hooks`,
      // A name that resolves to loopback: refused after DNS, where a check of the URL alone would let it pass.
      `http://localhost:${port}/hooks?token=${secret.slice(6, 20)}`,
      `http://[::1]:${port}/hooks`,
      `http://[::ffff:127.0.0.1]:${port}/hooks`,
      `http://[::ffff:7f00:1]:${port}/hooks`,
    ]
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => urls.map((url) => ({ url, secrets: [secret] })),
      webhooks: { allowAddresses: [] },
      reports,
    })
    try {
      const batch = await submit(kit, owner)
      await until('every refusal', () => (reports.errors.length >= urls.length ? true : undefined))
      await sleep(300)
      expect(receiver.received).toEqual([])
      expect(reports.errors).toHaveLength(urls.length)
      for (const { error, context } of reports.errors) {
        expect(context).toMatch(/refused, not retried$/)
        expect(String((error as Error).message)).toMatch(/which webhooks may not reach/)
      }
      // The refusals change nothing for in-process callbacks.
      expect(reports.events.filter((e) => e.batchId === batch.id).map((e) => e.type)).toEqual([
        'acreate_batch',
        'batch_success',
      ])
      // The query (which may carry a token) is never shown.
      expectNoSecrets(reports, [secret, secret.slice(6, 20)])
    } finally {
      await kit.close()
    }
  })

  it('gives up after the retry horizon and reports it to onError, never silently', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    receiver.respond = () => 503
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [secret] }],
      webhooks: { retryDelayMs: 20, retryHorizonMs: 400 },
      reports,
    })
    try {
      const batch = await submit(kit, owner)
      const report = await until('the report', () => reports.errors[0])
      const received = forBatch(receiver, batch.id)
      expect(received.length).toBeGreaterThanOrEqual(2)
      expect(new Set(received.map((r) => r.headers['webhook-id'])).size).toBe(1)
      expect(report.context).toMatch(new RegExp(`given up after ${received.length} attempts$`))
      expect(report.context).toContain(`http://127.0.0.1:${receiver.port}/hooks`)
      expect((report.error as Error).message).toMatch(/answered 503/)
      await sleep(200)
      expect(forBatch(receiver, batch.id)).toHaveLength(received.length)
      expectNoSecrets(reports, [secret])
    } finally {
      await kit.close()
    }
  })

  it('lets a hanging endpoint hold up no other: the others, later webhooks and the callbacks go on; it is retried', async () => {
    const [owner, other] = [newOwner(), newOwner()]
    const secret = newWebhookSecret()
    const reports = newReports()
    const hanging = await startHangingServer()
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => [
        { url: hanging.url, secrets: [secret] },
        { url: receiver.url, secrets: [secret] },
      ],
      others: { [other]: () => [{ url: receiver.url, secrets: [secret] }] },
      webhooks: { timeoutMs: 4000 },
      reports,
    })
    try {
      const first = await submit(kit, owner)
      await until('the working endpoint', () => (forBatch(receiver, first.id).length > 0 ? true : undefined))
      // While the hanging endpoint holds its request open, another batch's webhook is sent, and its callbacks run.
      const second = await submit(kit, other)
      await until("the other batch's webhook", () => (forBatch(receiver, second.id).length > 0 ? true : undefined))
      expect(hanging.requests).toHaveLength(1)
      expect(hanging.open()).toBe(1)
      expect(reports.events.filter((e) => e.type === 'batch_success').map((e) => e.batchId)).toEqual([
        first.id,
        second.id,
      ])
      // Its timeout ends that attempt; the retry carries the same webhook-id, and goes to it alone.
      await until('a retry to the hanging endpoint', () => (hanging.requests.length >= 2 ? true : undefined))
      expect(new Set(hanging.requests.map((r) => r.headers['webhook-id'])).size).toBe(1)
      expect(hanging.requests[0]?.headers['webhook-id']).toBe(forBatch(receiver, first.id)[0]?.headers['webhook-id'])
      expect(forBatch(receiver, first.id)).toHaveLength(1)
    } finally {
      await kit.close()
      await hanging.close()
    }
  })

  it('reports a malformed secret at once without showing it, and retries an endpoints hook that failed', async () => {
    const owner = newOwner()
    const good = newWebhookSecret()
    const malformed = 'whsec_not base64 at all!'
    const reports = newReports()
    let calls = 0
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => {
        calls++
        if (calls === 1) throw new Error('tenant settings unavailable')
        return [
          { url: receiver.url, secrets: [good] },
          { url: `${receiver.url}/second`, secrets: [malformed] },
        ]
      },
      reports,
    })
    try {
      const batch = await submit(kit, owner)
      await until('the delivery', () => (forBatch(receiver, batch.id).length > 0 ? true : undefined))
      await until('the report', () => reports.errors[0])
      await sleep(200)
      expect(forBatch(receiver, batch.id)).toHaveLength(1)
      expect(await unwrap(forBatch(receiver, batch.id)[0] as ReceivedWebhook, good)).toMatchObject({
        data: { id: batch.id },
      })
      expect(reports.errors).toHaveLength(1)
      const [refusal] = reports.errors as [{ error: Error; context: string }]
      expect(refusal.context).toMatch(/\/hooks\/second; refused, not retried$/)
      expect(refusal.error.message).toMatch(/secret #1 is not a Standard Webhooks secret/)
      expect(reports.logged.some((l) => l.includes('tenant settings unavailable'))).toBe(true)
      expectNoSecrets(reports, [good, malformed])
    } finally {
      await kit.close()
    }
  })

  it('sends batch.failed once for a batch the provider failed while validating, verified by openai webhooks.unwrap', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [secret] }],
      reports,
    })
    try {
      const principal = { owner }
      const file = await kit.files.create(principal, { file: Readable.from([lines(2)]), purpose: 'batch' })
      // OpenAI creates a batch over a file it lost and fails it while validating.
      const deleted = await fetch(`${fake.baseURL}/files/${file.providerFileId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${fake.apiKey}` },
      })
      expect(deleted.status).toBe(200)
      const batch = await kit.batches.create(principal, {
        inputFileId: file.id,
        endpoint: '/v1/chat/completions',
        completionWindow: '24h',
      })
      const [received] = await until('the webhook', () => {
        const got = forBatch(receiver, batch.id)
        return got.length > 0 ? got : undefined
      })
      await sleep(300)
      expect(forBatch(receiver, batch.id)).toHaveLength(1)
      const shown = await kit.batches.retrieve(principal, batch.id)
      expect(shown.status).toBe('failed')
      const callbackEvent = reports.events.find((e) => e.batchId === batch.id && e.type === 'batch_failed')
      expect(await unwrap(received as ReceivedWebhook, secret)).toEqual({
        id: callbackEvent?.id,
        object: 'event',
        created_at: shown.failedAt,
        type: 'batch.failed',
        data: { id: batch.id },
      })
      expect(reports.errors).toEqual([])
    } finally {
      await kit.close()
    }
  })

  it('sends batch.expired for a batch that expired', async () => {
    const owner = newOwner()
    const secret = newWebhookSecret()
    const reports = newReports()
    const kit = kitWith({
      store: undefined,
      owner,
      endpoints: () => [{ url: receiver.url, secrets: [secret] }],
      reports,
      webhooks: {},
    })
    try {
      const batch = await submit(kit, owner)
      await fake.expire(batch.providerBatchId)
      const [received] = await until('the webhook', () => {
        const got = forBatch(receiver, batch.id)
        return got.length > 0 ? got : undefined
      })
      expect(await unwrap(received as ReceivedWebhook, secret)).toMatchObject({
        type: 'batch.expired',
        data: { id: batch.id },
      })
    } finally {
      await kit.close()
    }
  })

  it.each([
    ['batch_success', 'batch.completed'],
    ['batch_failed', 'batch.failed'],
    ['batch_cancelled', 'batch.cancelled'],
    ['batch_expired', 'batch.expired'],
  ] as const)('names the end %s %s, and sends nothing for acreate_batch', (type, webhookType) => {
    const base = {
      id: 'evt_1',
      createdAt: 200,
      batchId: 'batch_1',
      owner: 'alice',
      provider: 'openai',
      model: 'gpt-4o-mini',
      endpoint: '/v1/chat/completions',
      metadata: null,
    }
    const ended = { ...base, type, timings: { endedAt: 150 } } as unknown as BatchEvent
    const message = webhookMessageOf(ended)
    expect(message && webhookBody(message.event)).toBe(
      `{"id":"evt_1","object":"event","created_at":150,"type":"${webhookType}","data":{"id":"batch_1"}}`,
    )
    expect(webhookMessageOf({ ...base, type: 'acreate_batch', requestCount: 1, responseCost: 0 })).toBeUndefined()
  })

  it('refuses settings that cannot work when the kit is made', () => {
    const base = { providers: { openai: openai({ apiKey: 'k', baseURL: fake.baseURL }) } }
    expect(() =>
      createBatchKit({ ...base, webhooks: { endpoints: () => [], allowAddresses: ['everything' as 'private'] } }),
    ).toThrow(/allowAddresses takes loopback, private, link-local; not 'everything'/)
    expect(() => createBatchKit({ ...base, webhooks: { endpoints: () => [], retryHorizonMs: 0 } })).toThrow(
      /retryHorizonMs must be a positive number/,
    )
  })
})

/** A server that reads each request and never answers it. */
async function startHangingServer() {
  const requests: IncomingMessage[] = []
  const open = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    requests.push(req)
    open.add(res)
    req.resume()
    res.on('close', () => open.delete(res))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`,
    requests,
    open: () => open.size,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
