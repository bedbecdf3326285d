import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord, FileRecord, Page, Principal } from '../src/types.js'
import { testBackends, useBackend } from './support/backends.js'

/**
 * Several server instances share one Redis or PostgreSQL store. Whatever instance a request lands
 * on, concurrent creates must never lose or duplicate an item in a list, and every instance must
 * list the same items in the same order.
 */

const backends = await testBackends(['redis', 'postgres'])

const INSTANCES = 3
const FILES = 60
const BATCHES = 30
const PAGE_SIZE = 7
const owner: Principal = { owner: 'team:acme/prod' }

const REQUEST_LINE = `${JSON.stringify({
  custom_id: 'r1',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
})}\n`

let fake: FakeOpenAI

beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

/** Runs every call at once and fails with the reasons of those that failed, if any. */
async function allSucceed<T>(calls: (() => Promise<T>)[]): Promise<T[]> {
  const results = await Promise.allSettled(calls.map((call) => call()))
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`call ${i}: ${String(r.reason)}`] : []))
  expect(failures, `${failures.length} of ${calls.length} concurrent calls failed`).toEqual([])
  return results.map((r) => (r as PromiseFulfilledResult<T>).value)
}

/** Every id a client sees following `after` cursors from the first page to the last. */
async function listAll<T extends { id: string }>(list: (after: string | undefined) => Promise<Page<T>>) {
  const ids: string[] = []
  let after: string | undefined
  for (let pages = 0; pages < 100; pages++) {
    const page = await list(after)
    ids.push(...page.data.map((item) => item.id))
    if (!page.hasMore) return ids
    after = page.data.at(-1)?.id
  }
  throw new Error('paging did not end after 100 pages')
}

/** Ids newest first, as lists show them; items of the same millisecond are ordered by id. */
function newestFirst(records: readonly (FileRecord | BatchRecord)[]): string[] {
  return [...records]
    .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((record) => record.id)
}

describe.each(backends)('$label shared by three server instances', (backend) => {
  if (!useBackend(backend)) return

  let kits: BatchKit[]
  let files: FileRecord[]
  let batches: BatchRecord[]

  beforeAll(() => {
    // Each instance opens its own connection to the same store and namespace.
    kits = Array.from({ length: INSTANCES }, () =>
      createBatchKit({
        store: backend.connect(),
        providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
        onError: () => {},
      }),
    )
  })
  afterAll(async () => {
    await Promise.all((kits ?? []).map((kit) => kit.close()))
  })

  const kitFor = (i: number) => kits[i % INSTANCES] as BatchKit

  it('says every instance is safe to run beside the others', () => {
    expect(kits.map((kit) => kit.multiInstanceSafe)).toEqual([true, true, true])
  })

  it(`accepts ${FILES} concurrent uploads spread over the instances`, async () => {
    files = await allSucceed(
      Array.from(
        { length: FILES },
        (_, i) => () =>
          kitFor(i).files.create(owner, {
            file: Readable.from([Buffer.from(REQUEST_LINE)]),
            filename: `requests-${i}.jsonl`,
            purpose: 'batch',
          }),
      ),
    )

    expect(new Set(files.map((file) => file.id)).size).toBe(FILES)
    for (const file of files) expect(fake.files.has(file.providerFileId)).toBe(true)
  })

  it('lists every uploaded file exactly once, newest first, from every instance', async () => {
    const expected = newestFirst(files)

    for (const [i, kit] of kits.entries()) {
      const listed = await listAll((after) => kit.files.list(owner, { limit: PAGE_SIZE, after }))
      expect(listed, `files listed by instance ${i + 1}`).toEqual(expected)

      const oldestFirst = await listAll((after) => kit.files.list(owner, { limit: PAGE_SIZE, after, order: 'asc' }))
      expect(oldestFirst, `files listed oldest first by instance ${i + 1}`).toEqual([...expected].reverse())

      const ofPurpose = await listAll((after) => kit.files.list(owner, { limit: PAGE_SIZE, after, purpose: 'batch' }))
      expect(ofPurpose, `batch files listed by instance ${i + 1}`).toEqual(expected)
    }
  })

  it(`accepts ${BATCHES} concurrent batch creates spread over the instances`, async () => {
    batches = await allSucceed(
      files.slice(0, BATCHES).map(
        (file, i) => () =>
          kitFor(i + 1).batches.create(owner, {
            inputFileId: file.id,
            endpoint: '/v1/chat/completions',
            completionWindow: '24h',
          }),
      ),
    )

    expect(new Set(batches.map((batch) => batch.id)).size).toBe(BATCHES)
  })

  it('lists every batch exactly once, newest first, from every instance', async () => {
    const expected = newestFirst(batches)

    for (const [i, kit] of kits.entries()) {
      const listed = await listAll((after) => kit.batches.list(owner, { limit: PAGE_SIZE, after }))
      expect(listed, `batches listed by instance ${i + 1}`).toEqual(expected)
    }
  })

  it('keeps the uploads listed while batches run and register their output files', async () => {
    // Listing batches refreshed them from the upstream, which may have finished some and so added
    // their output files; the uploads are all still there, once each, in order.
    const uploads = new Set(files.map((file) => file.id))
    for (const [i, kit] of kits.entries()) {
      const listed = await listAll((after) => kit.files.list(owner, { limit: PAGE_SIZE, after }))
      expect(new Set(listed).size, `no file listed twice by instance ${i + 1}`).toBe(listed.length)
      expect(
        listed.filter((id) => uploads.has(id)),
        `uploads listed by instance ${i + 1}`,
      ).toEqual(newestFirst(files))
    }
  })
})
