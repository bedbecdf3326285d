import {
  ApiError,
  type BatchEndedEvent,
  type BatchEvent,
  DEFAULT_PRICES,
  openai,
  type Principal,
  type Provider,
  type ProviderBatchRequest,
  type ProviderUpload,
} from '@batchkit/core'
import { fakeUsage } from '@batchkit/testkit'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatLines, type Harness, KEYS, startHarness } from './harness.js'

const ALICE: Principal = { owner: 'alice' }
const ENDED = new Set(['completed', 'failed', 'cancelled', 'expired'])

let h: Harness

beforeAll(async () => {
  h = await startHarness()
})
afterAll(() => h.close())

/** Request options that send an `Idempotency-Key` (openai 6 sends none by itself). */
const withKey = (key: string) => ({ headers: { 'Idempotency-Key': key } })

/** A key no other test uses. */
const newKey = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`

async function upload(client: OpenAI, text: string, name = 'requests.jsonl', key?: string) {
  return client.files.create(
    { file: await toFile(Buffer.from(text), name), purpose: 'batch' },
    key === undefined ? undefined : withKey(key),
  )
}

function batchBody(inputFileId: string, metadata: Record<string, string> | null = null) {
  return {
    input_file_id: inputFileId,
    endpoint: '/v1/chat/completions' as const,
    completion_window: '24h' as const,
    metadata,
  }
}

/** The usage the fake bills for these input lines (lines named `fail-…` fail and cost nothing), in the Batch's shape. */
function expectedUsage(text: string) {
  const usages = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((line) => !String(line.custom_id).startsWith('fail-'))
    .map(fakeUsage)
  const sum = (pick: (u: ReturnType<typeof fakeUsage>) => number) => usages.reduce((s, u) => s + pick(u), 0)
  return {
    input_tokens: sum((u) => u.prompt_tokens),
    input_tokens_details: { cached_tokens: sum((u) => u.prompt_tokens_details.cached_tokens) },
    output_tokens: sum((u) => u.completion_tokens),
    output_tokens_details: { reasoning_tokens: sum((u) => u.completion_tokens_details.reasoning_tokens) },
    total_tokens: sum((u) => u.total_tokens),
  }
}

/** What gpt-4o-mini's batch prices make of that usage, in USD. */
function expectedCost(text: string): number {
  const usage = expectedUsage(text)
  const price = DEFAULT_PRICES['gpt-4o-mini']
  if (!price) throw new Error('gpt-4o-mini must be priced')
  const cached = usage.input_tokens_details.cached_tokens
  return (
    ((usage.input_tokens - cached) * price.inputPerMTok +
      cached * price.cachedInputPerMTok +
      usage.output_tokens * price.outputPerMTok) /
    1e6
  )
}

/** Polls a batch as a client does, every 10 ms, until it ends. */
async function runToEnd(client: OpenAI, id: string, timeoutMs = 10_000) {
  const seen: string[] = []
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    const batch = await client.batches.retrieve(id)
    seen.push(batch.status)
    if (ENDED.has(batch.status)) return { batch, seen }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`batch ${id} did not end: ${seen.join(' -> ')}`)
}

async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const started = Date.now()
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The ids the fake holds now that it did not hold in `before`. */
const added = (before: ReadonlySet<string>, now: Iterable<string>) => [...now].filter((id) => !before.has(id))

/**
 * OpenAI's provider, scripted: it can lose its answers to the first batch create and the first upload
 * on the way back (a timeout after the provider did the work), and be slow to create batches; a
 * class, as the real providers are.
 */
class ScriptedUpstream implements Provider {
  readonly kind = 'openai'
  inner: Provider | undefined
  private lostBatch: boolean
  private lostUpload: boolean
  private readonly createDelayMs: number
  constructor(options: { loseFirstAnswers?: boolean; createDelayMs?: number }) {
    this.lostBatch = this.lostUpload = !options.loseFirstAnswers
    this.createDelayMs = options.createDelayMs ?? 0
  }
  private get real(): Provider {
    if (!this.inner) throw new Error('no upstream yet')
    return this.inner
  }
  uploadFile(upload: ProviderUpload) {
    return this.real.uploadFile(upload).then((file) => {
      if (this.lostUpload) return file
      this.lostUpload = true
      throw new ApiError(504, 'The openai provider did not answer in time.', { code: 'upstream_timeout' })
    })
  }
  retrieveFile(id: string) {
    return this.real.retrieveFile(id)
  }
  downloadFile(id: string, signal?: AbortSignal) {
    return this.real.downloadFile(id, signal)
  }
  deleteFile(id: string) {
    return this.real.deleteFile(id)
  }
  async createBatch(request: ProviderBatchRequest) {
    await new Promise((resolve) => setTimeout(resolve, this.createDelayMs))
    return this.real.createBatch(request).then((batch) => {
      if (this.lostBatch) return batch
      this.lostBatch = true
      throw new ApiError(504, 'The openai provider did not answer in time.', { code: 'upstream_timeout' })
    })
  }
  retrieveBatch(id: string) {
    return this.real.retrieveBatch(id)
  }
  cancelBatch(id: string) {
    return this.real.cancelBatch(id)
  }
  findFile(tag: string, since: number) {
    return this.real.findFile(tag, since)
  }
  findBatch(tag: string, since: number) {
    return this.real.findBatch(tag, since)
  }
  async close() {
    await this.inner?.close?.()
  }
}

describe('Idempotency-Key on batch creates', () => {
  it('answers a retry with the first batch, refuses another body, and keeps owners apart', async () => {
    const alice = h.client()
    const bob = h.client(KEYS.bob)
    const key = newKey('create')
    const input = await upload(alice, chatLines(2))
    const upstreamBefore = h.fake.batches.size

    const first = await alice.batches.create(batchBody(input.id, { run: '1' }), withKey(key))
    const again = await alice.batches.create(batchBody(input.id, { run: '1' }), withKey(key))
    expect(again.id).toBe(first.id)
    expect(again).toMatchObject({ input_file_id: input.id, metadata: { run: '1' }, created_at: first.created_at })
    expect(h.fake.batches.size).toBe(upstreamBefore + 1)

    await expect(alice.batches.create(batchBody(input.id, { run: '2' }), withKey(key))).rejects.toMatchObject({
      status: 400,
      code: 'idempotency_key_reused',
    })
    expect(h.fake.batches.size).toBe(upstreamBefore + 1)
    // The refused reuse did not spoil the key for its own request.
    expect((await alice.batches.create(batchBody(input.id, { run: '1' }), withKey(key))).id).toBe(first.id)

    // Bob's key `key` is his own: a new batch, on his own file.
    const bobInput = await upload(bob, chatLines(2))
    const bobs = await bob.batches.create(batchBody(bobInput.id, { run: '1' }), withKey(key))
    expect(bobs.id).not.toBe(first.id)
    expect(bobs.input_file_id).toBe(bobInput.id)
    expect(h.fake.batches.size).toBe(upstreamBefore + 2)
    expect((await bob.batches.create(batchBody(bobInput.id, { run: '1' }), withKey(key))).id).toBe(bobs.id)
    await expect(bob.batches.retrieve(first.id)).rejects.toMatchObject({ status: 404 })
    expect(h.fake.batches.size).toBe(upstreamBefore + 2)
  })

  it('lets exactly one of five concurrent creates with one key reach the provider', async () => {
    const alice = h.client()
    const key = newKey('race')
    const input = await upload(alice, chatLines(2))
    const before = new Set(h.fake.batches.keys())

    const answers = await Promise.allSettled(
      Array.from({ length: 5 }, () => alice.batches.create(batchBody(input.id), withKey(key))),
    )
    const upstream = added(before, h.fake.batches.keys())
    expect(upstream).toHaveLength(1)
    const ids = new Set<string>()
    for (const answer of answers) {
      if (answer.status === 'fulfilled') ids.add(answer.value.id)
      else expect(answer.reason).toMatchObject({ status: 409, code: 'idempotency_key_in_use' })
    }
    expect(ids.size).toBe(1)
    const [id] = ids
    // The SDK retries a 409: that retry answers the one batch.
    expect((await alice.batches.create(batchBody(input.id), withKey(key))).id).toBe(id)
    expect(added(before, h.fake.batches.keys())).toHaveLength(1)
  })

  it('answers 409 to creates with one key that overlap a slow provider create, and makes one batch', async () => {
    const slow = new ScriptedUpstream({ createDelayMs: 150 })
    const local = await startHarness({ kit: { providers: { openai: slow } } })
    slow.inner = openai({ apiKey: local.fake.apiKey, baseURL: local.fake.baseURL })
    try {
      const client = local.client()
      const key = newKey('slow-race')
      const input = await upload(client, chatLines(2))
      // Every later request arrives while the first is still waiting on the provider.
      const answers = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) =>
          new Promise((resolve) => setTimeout(resolve, i * 20)).then(() =>
            client.batches.create(batchBody(input.id), withKey(key)),
          ),
        ),
      )
      expect(local.fake.batches.size).toBe(1)
      const [first, ...later] = answers
      expect(first?.status).toBe('fulfilled')
      for (const answer of later) {
        expect(answer.status).toBe('rejected')
        if (answer.status === 'rejected')
          expect(answer.reason).toMatchObject({ status: 409, code: 'idempotency_key_in_use' })
      }
      const id = first?.status === 'fulfilled' ? first.value.id : undefined
      expect((await client.batches.create(batchBody(input.id), withKey(key))).id).toBe(id)
      expect((await client.batches.list()).data.map((b) => b.id)).toEqual([id])
      expect(local.fake.batches.size).toBe(1)
    } finally {
      await local.close()
    }
  })

  it('ends at once a create the provider refused with a 4xx: a retry with its key creates without a search', async () => {
    const alice = h.client()
    const key = newKey('rejected')
    const input = await upload(alice, chatLines(2))
    const upstreamBefore = h.fake.batches.size
    const searches = () => h.fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/batches').length

    h.fake.failNext({ status: 400, pathPrefix: '/v1/batches', method: 'POST' })
    await expect(alice.batches.create(batchBody(input.id), withKey(key))).rejects.toMatchObject({
      status: 502,
      code: 'upstream_rejected',
    })
    expect(h.fake.batches.size).toBe(upstreamBefore)

    // A refusal proves nothing was made, so nothing is left to look for upstream before creating again.
    const searchesBefore = searches()
    const batch = await alice.batches.create(batchBody(input.id), withKey(key))
    expect(searches()).toBe(searchesBefore)
    expect(h.fake.batches.size).toBe(upstreamBefore + 1)
    expect((await alice.batches.list()).data.map((b) => b.id)).toContain(batch.id)
  })

  it('frees a key whose first request was refused, for the corrected request', async () => {
    const alice = h.client()
    const key = newKey('fix')
    const input = await upload(alice, chatLines(2))
    const upstreamBefore = h.fake.batches.size

    // The requests in the file are chat completions: another endpoint is refused before the provider is asked.
    await expect(
      alice.batches.create({ ...batchBody(input.id), endpoint: '/v1/embeddings' }, withKey(key)),
    ).rejects.toMatchObject({ status: 400, param: 'endpoint' })
    expect(h.fake.batches.size).toBe(upstreamBefore)

    const fixed = await alice.batches.create(batchBody(input.id), withKey(key))
    expect(fixed).toMatchObject({ endpoint: '/v1/chat/completions', input_file_id: input.id })
    expect(h.fake.batches.size).toBe(upstreamBefore + 1)
    expect((await alice.batches.create(batchBody(input.id), withKey(key))).id).toBe(fixed.id)
    // Now the key is bound to the corrected request: the refused one is another request.
    await expect(
      alice.batches.create({ ...batchBody(input.id), endpoint: '/v1/embeddings' }, withKey(key)),
    ).rejects.toMatchObject({ status: 400, code: 'idempotency_key_reused' })
    expect(h.fake.batches.size).toBe(upstreamBefore + 1)
  })
})

describe('a retry after an answer lost on the way back', () => {
  it('adopts the batch the provider made instead of making a second one, and the upload likewise', async () => {
    const lossy = new ScriptedUpstream({ loseFirstAnswers: true })
    const local = await startHarness({ kit: { providers: { openai: lossy } } })
    lossy.inner = openai({ apiKey: local.fake.apiKey, baseURL: local.fake.baseURL })
    try {
      const client = local.client()
      const text = chatLines(2)

      const uploadKey = newKey('lost-upload')
      await expect(upload(client, text, 'requests.jsonl', uploadKey)).rejects.toMatchObject({ status: 504 })
      expect(local.fake.files.size).toBe(1)
      const file = await upload(client, text, 'requests.jsonl', uploadKey)
      // The orphan the lost answer left was deleted, and the retry's upload is the one file.
      expect(local.fake.files.size).toBe(1)
      expect(await (await client.files.content(file.id)).text()).toBe(text)
      expect((await upload(client, text, 'requests.jsonl', uploadKey)).id).toBe(file.id)
      expect((await client.files.list()).data.map((f) => f.id)).toEqual([file.id])

      const batchKey = newKey('lost-batch')
      await expect(client.batches.create(batchBody(file.id), withKey(batchKey))).rejects.toMatchObject({
        status: 504,
      })
      expect(local.fake.batches.size).toBe(1)
      const adopted = await client.batches.create(batchBody(file.id), withKey(batchKey))
      expect(local.fake.batches.size).toBe(1)
      expect(adopted).toMatchObject({ input_file_id: file.id, endpoint: '/v1/chat/completions' })
      expect((await client.batches.create(batchBody(file.id), withKey(batchKey))).id).toBe(adopted.id)
      expect((await client.batches.list()).data.map((b) => b.id)).toEqual([adopted.id])
      const { batch } = await runToEnd(client, adopted.id)
      expect(batch.status).toBe('completed')
      expect(batch.usage).toEqual(expectedUsage(text))
      expect(local.fake.batches.size).toBe(1)
    } finally {
      await local.close()
    }
  })
})

describe('a create whose answer was lost and that nobody retries', () => {
  it('is settled by the reconciler once its grace period has passed: an orphan upload deleted, a batch adopted', async () => {
    const lossy = new ScriptedUpstream({ loseFirstAnswers: true })
    const settled: Array<Record<string, unknown>> = []
    const events: BatchEvent[] = []
    const local = await startHarness({
      kit: {
        providers: { openai: lossy },
        // The reconciler runs beside the tracker.
        tracking: { enabled: true },
        reconcile: { graceMs: 300, intervalMs: 50 },
        callbacks: [(event) => void events.push(event)],
        delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
        logger: {
          debug() {},
          info: (fields, message) => {
            if (message === 'batchkit settled an abandoned create') settled.push(fields)
          },
          warn() {},
          error() {},
        },
      },
    })
    lossy.inner = openai({ apiKey: local.fake.apiKey, baseURL: local.fake.baseURL })
    try {
      const client = local.client()
      const text = chatLines(2)
      await expect(upload(client, text)).rejects.toMatchObject({ status: 504 })
      expect(local.fake.files.size).toBe(1)
      // No client ever got that upload's id: the reconciler deletes it upstream.
      await until('the orphan upload deleted', () => (local.fake.files.size === 0 ? true : undefined))
      expect((await client.files.list()).data).toEqual([])
      const file = await upload(client, text)

      await expect(client.batches.create(batchBody(file.id))).rejects.toMatchObject({ status: 504 })
      const batch = await until('the adopted batch', async () => (await client.batches.list()).data[0])
      expect(batch).toMatchObject({ input_file_id: file.id, endpoint: '/v1/chat/completions' })
      await until('its acreate_batch', async () => events.find((event) => event.type === 'acreate_batch'))
      // Later passes of the reconciler find nothing more to settle.
      await new Promise((resolve) => setTimeout(resolve, 400))
      expect(local.fake.files.size).toBe(1)
      expect(local.fake.batches.size).toBe(1)
      expect((await client.files.list()).data.map((f) => f.id)).toEqual([file.id])
      expect((await client.batches.list()).data.map((b) => b.id)).toEqual([batch.id])
      expect(events.filter((event) => event.type === 'acreate_batch').map((event) => event.batchId)).toEqual([batch.id])
      expect(settled.map((fields) => fields.kind)).toEqual(['file', 'batch'])
      expect(settled.every((fields) => typeof fields.intentId === 'string')).toBe(true)
    } finally {
      await local.close()
    }
  })
})

describe('Idempotency-Key on uploads', () => {
  it('answers a retry of the same bytes with the first file and refuses other bytes or names', async () => {
    const alice = h.client()
    const key = newKey('upload')
    const text = chatLines(3)
    const upstreamBefore = h.fake.files.size

    const first = await upload(alice, text, 'requests.jsonl', key)
    const again = await upload(alice, text, 'requests.jsonl', key)
    expect(again).toEqual(first)
    expect(h.fake.files.size).toBe(upstreamBefore + 1)

    await expect(upload(alice, chatLines(3, { prefix: 'other' }), 'requests.jsonl', key)).rejects.toMatchObject({
      status: 400,
      code: 'idempotency_key_reused',
    })
    await expect(upload(alice, text, 'renamed.jsonl', key)).rejects.toMatchObject({
      status: 400,
      code: 'idempotency_key_reused',
    })
    expect(h.fake.files.size).toBe(upstreamBefore + 1)
    expect((await upload(alice, text, 'requests.jsonl', key)).id).toBe(first.id)

    // Bob's uploads under the same key are his own.
    const bobs = await upload(h.client(KEYS.bob), text, 'requests.jsonl', key)
    expect(bobs.id).not.toBe(first.id)
    expect(h.fake.files.size).toBe(upstreamBefore + 2)
    expect(await (await alice.files.content(first.id)).text()).toBe(text)
  })
})

describe('an ended batch is shown only with its billing', () => {
  it('never answers completed without the exact usage, on retrieves, concurrent retrieves and lists', async () => {
    const local = await startHarness({ kit: { authenticate: () => ({ owner: 'settler' }) } })
    try {
      const client = local.client('sk-settler')
      const texts = [chatLines(2), chatLines(3) + chatLines(1, { prefix: 'fail' }), chatLines(4, { prefix: 'x' })]
      const expected = new Map<string, ReturnType<typeof expectedUsage>>()
      const costs = new Map<string, number>()
      const ids: string[] = []
      for (const text of texts) {
        const input = await upload(client, text)
        const batch = await client.batches.create(batchBody(input.id))
        expected.set(batch.id, expectedUsage(text))
        costs.set(batch.id, expectedCost(text))
        ids.push(batch.id)
      }
      const [first, second] = ids as [string, string, string]
      let completedAnswers = 0
      const check = (batch: OpenAI.Batches.Batch) => {
        expect(['failed', 'cancelled', 'expired']).not.toContain(batch.status)
        if (batch.status !== 'completed') return
        completedAnswers++
        expect(batch.usage).toEqual(expected.get(batch.id))
        expect(batch.completed_at).not.toBeNull()
      }

      // The first batch by retrieves, each refreshing it in the background for the next:
      // validating -> in_progress -> finalizing -> completed.
      const seen: string[] = []
      for (let i = 0; i < 10 && seen.at(-1) !== 'completed'; i++) {
        const batch = await client.batches.retrieve(first)
        check(batch)
        seen.push(batch.status)
        await local.kit.batches.idle()
      }
      expect(seen).toEqual(['validating', 'in_progress', 'finalizing', 'completed'])

      // The second: two polls to finalizing, then five readers at once, whose one refresh sees its end.
      for (let i = 0; i < 2; i++) {
        check(await client.batches.retrieve(second))
        await local.kit.batches.idle()
      }
      const together = await Promise.all(Array.from({ length: 5 }, () => client.batches.retrieve(second)))
      for (const batch of together) {
        check(batch)
        expect(['finalizing', 'completed']).toContain(batch.status)
      }

      // All three by lists only, until every one has ended.
      for (let i = 0; i < 10; i++) {
        const page = await client.batches.list()
        for (const batch of page.data) check(batch)
        if (page.data.every((batch) => batch.status === 'completed')) break
        await local.kit.batches.idle()
      }
      const final = await client.batches.list()
      expect(final.data.map((b) => b.status)).toEqual(['completed', 'completed', 'completed'])
      for (const batch of final.data) check(batch)
      // At least the first retrieve's and the final list's.
      expect(completedAnswers).toBeGreaterThanOrEqual(4)

      // Server code sees the billing behind each answer: exact tokens and the price table's cost.
      const records = await local.kit.batches.list({ owner: 'settler' })
      for (const record of records.data) {
        expect(record.status).toBe('completed')
        const usage = expected.get(record.id)
        expect(record.billing?.totals).toMatchObject({
          inputTokens: usage?.input_tokens,
          cachedTokens: usage?.input_tokens_details.cached_tokens,
          outputTokens: usage?.output_tokens,
          totalTokens: usage?.total_tokens,
        })
        expect(record.billing?.totals.cost).toBeCloseTo(costs.get(record.id) as number, 9)
      }
    } finally {
      await local.close()
    }
  })
})

describe('deleting a batch output before billing', () => {
  it('bills a batch whose output and error files were deleted exactly like its untouched twin', async () => {
    const alice = h.client()
    const text = chatLines(3, { prefix: 'twin' }) + chatLines(1, { prefix: 'fail' })
    const input = await upload(alice, text)
    const request = {
      inputFileId: input.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    } as const
    const deleted = await h.kit.batches.create(ALICE, request)
    const twin = await h.kit.batches.create(ALICE, request)

    // The tracker's path to the end: refreshes register the output files but never bill.
    let record = deleted
    for (let i = 0; i < 3; i++) record = await h.kit.batches.refresh(record)
    expect(record.status).toBe('completed')
    expect(record.billing ?? null).toBeNull()
    const outputId = record.outputFileId as string
    const errorId = record.errorFileId as string
    const providerOutput = record.providerOutputFileId as string
    const providerError = record.providerErrorFileId as string
    expect(outputId).toMatch(/^file-/)
    expect(errorId).toMatch(/^file-/)
    expect(h.fake.files.has(providerOutput)).toBe(true)
    expect(h.fake.files.has(providerError)).toBe(true)

    for (const id of [outputId, errorId]) {
      expect(await alice.files.delete(id)).toEqual({ id, object: 'file', deleted: true })
      // Gone for the client at once.
      await expect(alice.files.retrieve(id)).rejects.toMatchObject({ status: 404 })
      await expect(alice.files.content(id)).rejects.toMatchObject({ status: 404 })
    }
    const listed = (await alice.files.list({ purpose: 'batch_output' })).data.map((f) => f.id)
    expect(listed).not.toContain(outputId)
    expect(listed).not.toContain(errorId)
    // The provider's copies wait for billing, which reads them.
    expect(h.fake.files.has(providerOutput)).toBe(true)
    expect(h.fake.files.has(providerError)).toBe(true)

    // Its end is shown only once billed, which the first read starts.
    expect((await alice.batches.retrieve(deleted.id)).status).toBe('finalizing')
    await h.kit.batches.idle()
    const shown = await alice.batches.retrieve(deleted.id)
    const { batch: twinShown } = await runToEnd(alice, twin.id)
    expect(shown.status).toBe('completed')
    expect(twinShown.status).toBe('completed')
    expect(shown.request_counts).toEqual({ total: 4, completed: 3, failed: 1 })
    expect(shown.usage).toEqual(expectedUsage(text))
    expect(twinShown.usage).toEqual(shown.usage)

    const [billedDeleted, billedTwin] = await Promise.all([
      h.kit.batches.retrieve(ALICE, deleted.id),
      h.kit.batches.retrieve(ALICE, twin.id),
    ])
    expect(billedDeleted.billing?.totals).toEqual(billedTwin.billing?.totals)
    expect(billedDeleted.billing?.totals.cost).toBeCloseTo(expectedCost(text), 9)

    // Billing done, the deferred deletes ran upstream; the twin's files are untouched.
    expect(h.fake.files.has(providerOutput)).toBe(false)
    expect(h.fake.files.has(providerError)).toBe(false)
    expect(h.fake.files.has(billedTwin.providerOutputFileId as string)).toBe(true)
    await expect(alice.files.retrieve(outputId)).rejects.toMatchObject({ status: 404 })
  })
})

describe('a batch the provider no longer knows', () => {
  it('ends as failed with upstream_not_found after three 404 polls, billed zero, with one batch_failed event', async () => {
    const events: BatchEvent[] = []
    const local = await startHarness({
      kit: {
        tracking: { enabled: true, initialIntervalMs: 10, maxIntervalMs: 40, tickMs: 10 },
        callbacks: [(event) => void events.push(event)],
        delivery: { pollIntervalMs: 10, retryDelayMs: 10 },
      },
    })
    try {
      const client = local.client()
      const input = await upload(client, chatLines(2))
      const before = new Set(local.fake.batches.keys())
      const created = await client.batches.create(batchBody(input.id))
      const [providerId] = added(before, local.fake.batches.keys())
      if (!providerId) throw new Error('the create made no upstream batch')
      local.fake.failNext({ status: 404, times: 3, pathPrefix: `/v1/batches/${providerId}`, method: 'GET' })
      // The premise: the tracker had not yet polled the batch to its end.
      expect(['validating', 'in_progress', 'finalizing']).toContain(local.fake.batches.get(providerId)?.status)

      const ended = (id: string) =>
        events.filter((e): e is BatchEndedEvent => e.type !== 'acreate_batch' && e.batchId === id)
      const [failed] = await until('batch_failed', () => (ended(created.id).length ? ended(created.id) : undefined))
      expect(failed).toMatchObject({
        type: 'batch_failed',
        status: 'failed',
        batchId: created.id,
        owner: 'alice',
        responseCost: 0,
        usage: { inputTokens: 0, cachedTokens: 0, outputTokens: 0, totalTokens: 0 },
      })

      // Exactly the three 404 polls: the third made it lost, and nothing asked the provider again.
      const polls = () =>
        local.fake.requests.filter((r) => r.method === 'GET' && r.path === `/v1/batches/${providerId}`).length
      expect(polls()).toBe(3)

      const shown = await client.batches.retrieve(created.id)
      expect(shown.status).toBe('failed')
      expect(shown.failed_at).not.toBeNull()
      expect(shown.errors?.data?.[0]?.code).toBe('upstream_not_found')
      expect(shown.usage).toEqual({
        input_tokens: 0,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 0,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 0,
      })
      expect((await client.batches.list()).data.find((b) => b.id === created.id)?.status).toBe('failed')
      const record = await local.kit.batches.retrieve(ALICE, created.id)
      expect(record.billing?.totals).toMatchObject({ inputTokens: 0, outputTokens: 0, cost: 0 })

      // Later reads, ticks and deliveries add nothing: one end, one event.
      await new Promise((resolve) => setTimeout(resolve, 300))
      await client.batches.retrieve(created.id)
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(ended(created.id).map((e) => e.type)).toEqual(['batch_failed'])
      expect(events.filter((e) => e.type === 'acreate_batch' && e.batchId === created.id)).toHaveLength(1)
      expect(polls()).toBe(3)
    } finally {
      await local.close()
    }
  })
})
