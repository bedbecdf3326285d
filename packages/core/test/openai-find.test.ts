import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiError, isApiError } from '../src/errors.js'
import { type OpenAIProviderOptions, openai } from '../src/providers/openai/index.js'
import type { Provider, ProviderBatchRequest, ProviderUpload } from '../src/providers/types.js'

const JSONL = `${JSON.stringify({
  custom_id: 'a',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
})}\n`

const fileTag = () => `file-${randomUUID().replaceAll('-', '')}`
const batchTag = () => `batch_${randomUUID().replaceAll('-', '')}`
const now = () => Math.floor(Date.now() / 1000)

let fake: FakeOpenAI
let provider: Provider

function start(options: Partial<OpenAIProviderOptions> = {}): Provider {
  provider = openai({ apiKey: fake.apiKey, baseURL: fake.baseURL, ...options })
  return provider
}

beforeEach(async () => {
  fake = await startFakeOpenAI()
})
afterEach(async () => {
  await provider?.close?.()
  await fake.close()
})

function upload(tag: string): ProviderUpload {
  return {
    body: Readable.from([Buffer.from(JSONL)]),
    filename: 'requests.jsonl',
    tag,
    purpose: Promise.resolve('batch'),
    expiresAfter: Promise.resolve(null),
    signal: new AbortController().signal,
  }
}

function batchRequest(inputFileId: string, tag: string, metadata: Record<string, string> | null = null) {
  return {
    inputFileId,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
    metadata,
    outputExpiresAfter: null,
    tag,
  } satisfies ProviderBatchRequest
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  if (!isApiError(error)) throw new Error(`expected an ApiError, got ${String(error)}`)
  return error
}

/** Makes every upstream file but `keep` look created `seconds` ago. */
function ageFiles(seconds: number, keep: string[] = []): void {
  for (const file of fake.files.values()) if (!keep.includes(file.id)) file.created_at = now() - seconds
}

const listCalls = (path: string) => fake.requests.filter((r) => r.method === 'GET' && r.path === path)

describe('findFile', () => {
  it('finds the file uploaded under its tag, and no other', async () => {
    const p = start()
    const tag = fileTag()
    const uploaded = await p.uploadFile(upload(tag))
    await p.uploadFile(upload(fileTag()))

    expect(uploaded.filename).toBe('requests.jsonl')
    expect(fake.files.get(uploaded.id)?.filename).toBe(`${tag}.jsonl`)
    const found = await p.findFile(tag, uploaded.createdAt - 60)
    expect(found).toMatchObject({ id: uploaded.id, bytes: uploaded.bytes, filename: `${tag}.jsonl` })
    expect(await p.findFile(fileTag(), uploaded.createdAt - 60)).toBeUndefined()
    expect(listCalls('/v1/files').at(-1)?.query).toContain('order=desc')
  })

  it('does not find a file created before `since`', async () => {
    const p = start()
    const tag = fileTag()
    const uploaded = await p.uploadFile(upload(tag))
    expect(await p.findFile(tag, uploaded.createdAt + 1)).toBeUndefined()
  })

  it('pages through the list with `after` until it finds the file', async () => {
    const p = start({ search: { pageSize: 2, maxPages: 5 } })
    const tag = fileTag()
    const oldest = await p.uploadFile(upload(tag))
    for (let i = 0; i < 4; i++) await p.uploadFile(upload(fileTag()))

    expect(await p.findFile(tag, now() - 60)).toMatchObject({ id: oldest.id })
    const calls = listCalls('/v1/files')
    expect(calls).toHaveLength(3)
    expect(calls[0]?.query).not.toContain('after=')
    expect(calls[1]?.query).toContain('after=')
    expect(calls.every((call) => call.query.includes('limit=2'))).toBe(true)
  })

  it('stops reading once the files are older than `since`', async () => {
    const p = start({ search: { pageSize: 2, maxPages: 5 } })
    const tag = fileTag()
    await p.uploadFile(upload(tag))
    const recent = []
    for (let i = 0; i < 4; i++) recent.push((await p.uploadFile(upload(fileTag()))).id)
    // The tagged file and two of the others fall before `since`: the second page ends the search.
    ageFiles(3600, recent.slice(2))

    expect(await p.findFile(tag, now() - 60)).toBeUndefined()
    expect(listCalls('/v1/files')).toHaveLength(2)
  })

  it('says the search is incomplete when its page bound runs out before `since`', async () => {
    const p = start({ search: { pageSize: 2, maxPages: 2 } })
    const tag = fileTag()
    await p.uploadFile(upload(tag))
    for (let i = 0; i < 4; i++) await p.uploadFile(upload(fileTag()))

    const error = await rejection(p.findFile(tag, now() - 60))
    expect(error).toMatchObject({ status: 503, code: 'upstream_search_incomplete' })
    expect(error.message).not.toContain(fake.apiKey)
    expect(listCalls('/v1/files')).toHaveLength(2)
  })
})

describe('findBatch', () => {
  it('finds the batch created under its tag, with its status', async () => {
    const p = start()
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag))
    await p.createBatch(batchRequest(file.id, batchTag()))

    expect(fake.batches.get(created.id)?.metadata).toEqual({ batchkit_id: tag })
    const found = await p.findBatch(tag, now() - 60)
    expect(found).toMatchObject({ id: created.id, status: 'validating', outputFileId: null })
    expect(await p.findBatch(batchTag(), now() - 60)).toBeUndefined()
    expect(await p.findBatch(tag, now() + 60)).toBeUndefined()

    await p.retrieveBatch(created.id)
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id, status: 'in_progress' })
  })

  it('pages through the batches with `after`', async () => {
    const p = start({ search: { pageSize: 1, maxPages: 5 } })
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const oldest = await p.createBatch(batchRequest(file.id, tag))
    for (let i = 0; i < 2; i++) await p.createBatch(batchRequest(file.id, batchTag()))

    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: oldest.id })
    const calls = listCalls('/v1/batches')
    expect(calls).toHaveLength(3)
    expect(calls[2]?.query).toContain('after=')
    expect(calls.every((call) => call.query.includes('limit=1'))).toBe(true)
  })

  it("keeps the client's first 15 metadata keys upstream, then batchkit_id", async () => {
    const p = start()
    const file = await p.uploadFile(upload(fileTag()))
    const metadata = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`key${i}`, `value${i}`]))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag, metadata))

    const upstream = fake.batches.get(created.id)?.metadata ?? {}
    expect(Object.keys(upstream)).toEqual([...Object.keys(metadata).slice(0, 15), 'batchkit_id'])
    expect(upstream.batchkit_id).toBe(tag)
    expect(upstream.key14).toBe('value14')
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id })
  })

  it("gives the tag precedence over a client's own batchkit_id key", async () => {
    const p = start()
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag, { batchkit_id: 'mine', team: 'a' }))
    expect(fake.batches.get(created.id)?.metadata).toEqual({ team: 'a', batchkit_id: tag })
  })
})
