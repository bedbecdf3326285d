import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { type FakeAzure, startFakeAzure } from '@batchkit/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { isApiError } from '../src/errors.js'
import { type AzureProviderOptions, azure } from '../src/providers/azure/index.js'
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

let fake: FakeAzure | undefined
let provider: Provider | undefined

afterEach(async () => {
  await provider?.close?.()
  await fake?.close()
  provider = undefined
  fake = undefined
})

async function start(
  options: Partial<AzureProviderOptions> = {},
  objectStyle: 'current' | 'legacy' = 'current',
): Promise<{ p: Provider; fake: FakeAzure }> {
  fake = await startFakeAzure({ objectStyle })
  provider = azure({
    endpoint: fake.endpoint,
    apiKey: fake.apiKey,
    fileProcessing: { initialDelayMs: 5, maxDelayMs: 20, timeoutMs: 5_000 },
    ...options,
  })
  return { p: provider, fake }
}

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

const listCalls = (fake: FakeAzure, path: string) =>
  fake.requests.filter((r) => r.method === 'GET' && r.path.replace('/openai/v1', '/openai') === path)

describe.each(['dated', 'v1'] as const)('on the %s API', (api) => {
  it('finds the file uploaded under its tag, and no other, nor one older than `since`', async () => {
    const { p, fake } = await start({ api })
    const tag = fileTag()
    const uploaded = await p.uploadFile(upload(tag))
    await p.uploadFile(upload(fileTag()))

    expect(uploaded.filename).toBe('requests.jsonl')
    expect(fake.files.get(uploaded.id)?.filename).toBe(`${tag}.jsonl`)
    expect(await p.findFile(tag, uploaded.createdAt - 60)).toMatchObject({ id: uploaded.id, bytes: uploaded.bytes })
    expect(await p.findFile(fileTag(), uploaded.createdAt - 60)).toBeUndefined()
    expect(await p.findFile(tag, uploaded.createdAt + 1)).toBeUndefined()
    const call = listCalls(fake, '/openai/files').at(-1)
    expect(call?.query).toContain('order=desc')
    if (api === 'dated') expect(call?.apiVersion).toBe('2025-04-01-preview')
  })

  it('finds the batch created under its tag, with its status', async () => {
    const { p, fake } = await start({ api })
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag))

    expect(fake.batches.get(created.id)?.metadata).toEqual({ batchkit_id: tag })
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id, status: 'validating' })
    expect(await p.findBatch(batchTag(), now() - 60)).toBeUndefined()
    expect(await p.findBatch(tag, now() + 60)).toBeUndefined()
  })
})

describe('searching Azure lists', () => {
  it('pages through files and batches with `after`', async () => {
    const { p, fake } = await start({ search: { pageSize: 1, maxPages: 5 } })
    const fileTags = [fileTag(), fileTag(), fileTag()]
    const files = []
    for (const tag of fileTags) files.push(await p.uploadFile(upload(tag)))
    const tags = [batchTag(), batchTag(), batchTag()]
    const batches = []
    for (const tag of tags) batches.push(await p.createBatch(batchRequest(files[0]!.id, tag)))

    expect(await p.findFile(fileTags[0]!, now() - 60)).toMatchObject({ id: files[0]!.id })
    expect(await p.findBatch(tags[0]!, now() - 60)).toMatchObject({ id: batches[0]!.id })
    const fileCalls = listCalls(fake, '/openai/files')
    const batchCalls = listCalls(fake, '/openai/batches')
    expect(fileCalls).toHaveLength(3)
    expect(batchCalls).toHaveLength(3)
    expect(fileCalls[2]?.query).toContain(`after=${files[1]!.id}`)
    expect(batchCalls[2]?.query).toContain(`after=${batches[1]!.id}`)
  })

  it('reads the ISO-8601 timestamps and PascalCase statuses of older Azure objects', async () => {
    const { p } = await start({}, 'legacy')
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag))
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id, status: 'validating' })
    expect(await p.findBatch(tag, now() + 60)).toBeUndefined()
  })

  it('says the search is incomplete when its page bound runs out before `since`', async () => {
    const { p } = await start({ search: { pageSize: 1, maxPages: 2 } })
    const tag = fileTag()
    await p.uploadFile(upload(tag))
    for (let i = 0; i < 2; i++) await p.uploadFile(upload(fileTag()))
    const error = await p.findFile(tag, now() - 60).catch((reason: unknown) => reason)
    expect(isApiError(error) && error.code).toBe('upstream_search_incomplete')
  })

  it("keeps the client's first 15 metadata keys upstream, then batchkit_id", async () => {
    const { p, fake } = await start()
    const file = await p.uploadFile(upload(fileTag()))
    const metadata = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`key${i}`, `value${i}`]))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag, metadata))
    const upstream = fake.batches.get(created.id)?.metadata ?? {}
    expect(Object.keys(upstream)).toEqual([...Object.keys(metadata).slice(0, 15), 'batchkit_id'])
    expect(upstream.batchkit_id).toBe(tag)
  })
})
