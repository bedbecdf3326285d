import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { Provider } from '../src/providers/types.js'
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

/** Runs every call at once; what they returned, and why each of the others failed. */
async function runAtOnce<T>(calls: (() => Promise<T>)[]): Promise<{ results: T[]; failures: string[] }> {
  const settled = await Promise.allSettled(calls.map((call) => call()))
  return {
    results: settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])),
    failures: settled.flatMap((s, i) => (s.status === 'rejected' ? [`call ${i + 1}: ${String(s.reason)}`] : [])),
  }
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

/**
 * A gate that opens once `count` callers have arrived (or after five seconds, so that a call that
 * failed early cannot hang the test).
 */
function gate(count: number): () => Promise<void> {
  let arrived = 0
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  const timer = setTimeout(() => open(), 5000)
  void opened.then(() => clearTimeout(timer))
  return () => {
    if (++arrived >= count) open()
    return opened
  }
}

/** Where finished upstream calls wait before batchkit records them; open unless a test sets a gate. */
const gates = { uploads: async () => {}, batchCreates: async () => {} }

/**
 * The provider, except that finished uploads and batch creates wait at the current gate, so that
 * the instances record a burst of them at the same moment instead of as the upstream answers.
 */
function heldAtGates(provider: Provider): Provider {
  const held: Provider = Object.create(provider)
  held.uploadFile = async (upload) => {
    const file = await provider.uploadFile(upload)
    await gates.uploads()
    return file
  }
  held.createBatch = async (request) => {
    const batch = await provider.createBatch(request)
    await gates.batchCreates()
    return batch
  }
  return held
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
    // Each instance opens its own connection to the same, still empty, store and namespace.
    kits = Array.from({ length: INSTANCES }, () =>
      createBatchKit({
        store: backend.connect(),
        providers: { openai: heldAtGates(openai({ apiKey: fake.apiKey, baseURL: fake.baseURL })) },
        onError: () => {},
        // Every read refreshes in the background, and a window of 0 lets instances refresh at once.
        freshnessMs: 0,
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
    // The store is still empty, so these are also every instance's first writes to it.
    gates.uploads = gate(FILES)
    const uploads = await runAtOnce(
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
    // Later tests check the lists against the uploads that succeeded, even if some did not.
    files = uploads.results

    expect(uploads.failures, 'uploads that failed').toEqual([])
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
    const inputs = files.slice(0, BATCHES)
    gates.batchCreates = gate(inputs.length)
    const creates = await runAtOnce(
      inputs.map(
        (file, i) => () =>
          kitFor(i + 1).batches.create(owner, {
            inputFileId: file.id,
            endpoint: '/v1/chat/completions',
            completionWindow: '24h',
          }),
      ),
    )
    batches = creates.results

    expect(creates.failures, 'batch creates that failed').toEqual([])
    expect(new Set(batches.map((batch) => batch.id)).size).toBe(inputs.length)
  })

  it('lists every batch exactly once, newest first, from every instance', async () => {
    const expected = newestFirst(batches)

    for (const [i, kit] of kits.entries()) {
      const listed = await listAll((after) => kit.batches.list(owner, { limit: PAGE_SIZE, after }))
      expect(listed, `batches listed by instance ${i + 1}`).toEqual(expected)
    }
  })

  it("lists each finished batch's output once beside the uploads, from every instance", async () => {
    // Reads from every instance at once refresh the batches from the upstream, so they finish and gain
    // output files, which the instances that saw them registered concurrently under one id each.
    for (let round = 0; round < 6; round++) {
      await Promise.all(kits.flatMap((kit) => batches.map((batch) => kit.batches.retrieve(owner, batch.id))))
      await Promise.all(kits.map((kit) => kit.batches.idle()))
    }
    const refreshed = await Promise.all(batches.map((batch) => kitFor(0).batches.retrieve(owner, batch.id)))
    // Every batch of one valid request completed, with one output file and no error file.
    expect(refreshed.map((batch) => [batch.status, batch.errorFileId])).toEqual(batches.map(() => ['completed', null]))
    const outputs = refreshed.map((batch) => batch.outputFileId)
    expect(new Set(outputs).size, 'output files of the finished batches').toBe(BATCHES)
    const uploads = new Set(files.map((file) => file.id))

    for (const [i, kit] of kits.entries()) {
      const listed = await listAll((after) => kit.files.list(owner, { limit: PAGE_SIZE, after }))
      expect(
        listed.filter((id) => uploads.has(id)),
        `uploads listed by instance ${i + 1}`,
      ).toEqual(newestFirst(files))
      expect(listed.filter((id) => !uploads.has(id)).sort(), `output files listed by instance ${i + 1}`).toEqual(
        outputs.sort(),
      )
    }
  })
})
