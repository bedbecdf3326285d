import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { type FakeGcp, startFakeGcp } from '@batchkit/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isApiError } from '../src/errors.js'
import type { Provider, ProviderBatchRequest, ProviderUpload } from '../src/providers/types.js'
import { Layout } from '../src/providers/vertex/layout.js'
import { type VertexProviderOptions, vertex } from '../src/providers/vertex/provider.js'

const PROJECT = 'proj-1'
const LOCATION = 'us-central1'
const BUCKET = 'bkt'
const JSONL = `${JSON.stringify({
  custom_id: 'a',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] },
})}\n`

const fileTag = () => `file-${randomUUID().replaceAll('-', '')}`
const batchTag = () => `batch_${randomUUID().replaceAll('-', '')}`
const now = () => Math.floor(Date.now() / 1000)

let fake: FakeGcp
const providers: Provider[] = []

beforeEach(async () => {
  fake = await startFakeGcp({ project: PROJECT, location: LOCATION, buckets: [BUCKET] })
})
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close?.()))
  await fake.close()
})

function provider(options: Partial<VertexProviderOptions> = {}): Provider {
  const created = vertex({
    project: PROJECT,
    location: LOCATION,
    bucket: BUCKET,
    accessToken: fake.token,
    vertexEndpoint: fake.vertexBaseURL,
    gcsEndpoint: fake.gcsBaseURL,
    ...options,
  })
  providers.push(created)
  return created
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

function batchRequest(inputFileId: string, tag: string) {
  return {
    inputFileId,
    endpoint: '/v1/chat/completions',
    completionWindow: '24h',
    metadata: null,
    outputExpiresAfter: null,
    tag,
  } satisfies ProviderBatchRequest
}

const jobLists = () =>
  fake.requests.filter((r) => r.service === 'vertex' && r.method === 'GET' && r.path.endsWith('/batchPredictionJobs'))

describe('findFile', () => {
  it('finds the upload stored under the name its tag gives, and no other', async () => {
    const p = provider()
    const tag = fileTag()
    const uploaded = await p.uploadFile(upload(tag))
    await p.uploadFile(upload(fileTag()))

    expect(uploaded.id).toBe(Layout.inputIdForTag(tag))
    const original = fake.objects.get(`${BUCKET}/batchkit/files/${uploaded.id}/original`)
    expect(original?.metadata).toMatchObject({ batchkit_tag: tag, batchkit_filename: 'requests.jsonl' })
    expect(await p.findFile(tag, uploaded.createdAt - 60)).toEqual(uploaded)
    expect(await p.findFile(fileTag(), uploaded.createdAt - 60)).toBeUndefined()
    expect(await p.findFile(tag, uploaded.createdAt + 1)).toBeUndefined()
  })

  it('does not take an object at that name that carries another tag', async () => {
    const p = provider()
    const tag = fileTag()
    const name = `batchkit/files/${Layout.inputIdForTag(tag)}/original`
    const query = new URLSearchParams({ uploadType: 'media', name })
    const response = await fetch(`${fake.gcsBaseURL}/upload/storage/v1/b/${BUCKET}/o?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/octet-stream' },
      body: JSONL,
    })
    expect(response.status).toBe(200)
    expect(fake.objects.has(`${BUCKET}/${name}`)).toBe(true)
    expect(await p.findFile(tag, now() - 60)).toBeUndefined()
  })
})

describe('findBatch', () => {
  it('finds the job labelled with its tag, with its status', async () => {
    const p = provider()
    const file = await p.uploadFile(upload(fileTag()))
    const tag = batchTag()
    const created = await p.createBatch(batchRequest(file.id, tag))
    await p.createBatch(batchRequest(file.id, batchTag()))

    const job = [...fake.jobs.values()].find((entry) => entry.name === created.id)
    expect(job?.labels).toEqual({ batchkit_batch: tag })
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id, status: 'validating' })
    expect(new URLSearchParams(jobLists().at(-1)?.query).get('filter')).toBe(`labels.batchkit_batch="${tag}"`)
    expect(await p.findBatch(batchTag(), now() - 60)).toBeUndefined()
    expect(await p.findBatch(tag, now() + 60)).toBeUndefined()
  })

  it('labels a tag that is not a valid label value with a hash of it, and finds it by that', async () => {
    const p = provider()
    const file = await p.uploadFile(upload(fileTag()))
    const tag = 'Batch.Not-A-Label'
    const created = await p.createBatch(batchRequest(file.id, tag))
    const job = [...fake.jobs.values()].find((entry) => entry.name === created.id)
    expect(job?.labels?.batchkit_batch).toMatch(/^h-[0-9a-f]{40}$/)
    expect(await p.findBatch(tag, now() - 60)).toMatchObject({ id: created.id })
  })

  it('reads every page of jobs with the label, and says when its page bound ran out', async () => {
    const file = await provider().uploadFile(upload(fileTag()))
    const tag = batchTag()
    // A create retried after a lost answer leaves two jobs with one tag.
    const first = await provider().createBatch(batchRequest(file.id, tag))
    const second = await provider().createBatch(batchRequest(file.id, tag))

    const found = await provider({ search: { pageSize: 1, maxPages: 3 } }).findBatch(tag, now() - 60)
    expect([first.id, second.id]).toContain(found?.id)
    const lists = jobLists()
    expect(lists).toHaveLength(2)
    expect(new URLSearchParams(lists[1]?.query).get('pageToken')).toBeTruthy()

    const error = await provider({ search: { pageSize: 1, maxPages: 1 } })
      .findBatch(tag, now() - 60)
      .catch((reason: unknown) => reason)
    expect(isApiError(error) && error.code).toBe('upstream_search_incomplete')
  })
})
