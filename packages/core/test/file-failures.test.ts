import { Readable } from 'node:stream'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Intent } from '../src/intents/intent-log.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { Principal } from '../src/types.js'
import { keyvOverAdapter } from './support/backends.js'
import { BreakableMap } from './support/breakable-map.js'
import { chatRequests, rejection } from './support/chat-requests.js'

/**
 * Uploads and deletes that fail part way: what a client is told, what is left upstream and in the
 * store, and what the operator hears. Whatever may be left upstream keeps its intent for the
 * reconciler; whatever is known to be settled leaves none.
 */

describe('uploads and deletes that fail part way', () => {
  let fake: FakeOpenAI
  let kit: BatchKit
  const records = new BreakableMap()
  const reported: string[] = []
  const ann: Principal = { owner: 'ann' }

  beforeAll(async () => {
    fake = await startFakeOpenAI({ progress: 3_600_000 })
    kit = createBatchKit({
      store: keyvOverAdapter(records),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      onError: (_error, context) => void reported.push(context),
    })
  })
  afterEach(() => {
    records.failing = undefined
    reported.length = 0
  })
  afterAll(async () => {
    await kit?.close()
    await fake?.close()
  })

  const upload = (body = chatRequests(3)) => kit.files.create(ann, { file: Readable.from([body]), purpose: 'batch' })
  /** Intents left in the store: `file` for uploads, `delete` for deletes. */
  const intents = (kind: 'file' | 'delete') =>
    [...records.keys()].filter((key) => key.includes(kind === 'file' ? ':intent:file-' : ':intent:delete:'))
  const upstreamFiles = () => fake.files.size

  describe('an upload', () => {
    it('with a bad line leaves no file upstream and no intent', async () => {
      const before = upstreamFiles()
      const intentsBefore = intents('file').length
      // Far enough in, one line a chunk, that the upload to the provider is under way when the bad line comes.
      const chunks = [...`${chatRequests(500)}\n`.split(/(?<=\n)/), '{"custom_id": "broken"\n']
      const error = await rejection(kit.files.create(ann, { file: Readable.from(chunks), purpose: 'batch' }))
      expect(error).toMatchObject({ status: 400 })
      expect(upstreamFiles()).toBe(before)
      expect(intents('file')).toHaveLength(intentsBefore)
    })

    it('its client abandons mid-way leaves no file upstream and no intent', async () => {
      const before = upstreamFiles()
      const intentsBefore = intents('file').length
      const body = `${chatRequests(500)}\n`.split(/(?<=\n)/)
      let sent = 0
      const abandoned = new Readable({
        read() {
          if (sent === 300) this.destroy(new Error('client went away'))
          else this.push(body[sent++])
        },
      })
      expect(await rejection(kit.files.create(ann, { file: abandoned, purpose: 'batch' }))).toBeInstanceOf(Error)
      expect(upstreamFiles()).toBe(before)
      expect(intents('file')).toHaveLength(intentsBefore)
    })

    it('whose record cannot be stored deletes its upstream file and ends its intent', async () => {
      const before = upstreamFiles()
      const intentsBefore = intents('file').length
      records.failing = { op: 'set', key: /:file:file-/ }
      expect(await rejection(upload())).toMatchObject({ status: 503, code: 'store_unavailable' })
      records.failing = undefined
      expect(upstreamFiles()).toBe(before)
      expect(intents('file')).toHaveLength(intentsBefore)
      expect(reported).not.toContain('deleting an upstream file after a failed upload')
    })

    it('whose upstream file cannot be deleted again keeps its intent for the reconciler, and reports why', async () => {
      const before = upstreamFiles()
      const intentsBefore = intents('file').length
      records.failing = { op: 'set', key: /:file:file-/ }
      fake.failNext({ status: 500, method: 'DELETE', pathPrefix: '/v1/files/' })
      expect(await rejection(upload())).toMatchObject({ status: 503 })
      records.failing = undefined
      expect(upstreamFiles()).toBe(before + 1)
      expect(intents('file')).toHaveLength(intentsBefore + 1)
      expect(reported).toContain('deleting an upstream file after a failed upload')
    })

    it('succeeds when only forgetting its intent fails, and reports it', async () => {
      records.failing = { op: 'delete', key: /:intent:file-/ }
      const file = await upload()
      records.failing = undefined
      expect((await kit.files.retrieve(ann, file.id)).id).toBe(file.id)
      expect(reported).toContain(`ending the intent of ${file.id}`)
    })
  })

  describe('a delete', () => {
    it('of a file its provider no longer has succeeds', async () => {
      const file = await upload()
      fake.failNext({ status: 404, method: 'DELETE', pathPrefix: '/v1/files/' })
      expect(await kit.files.delete(ann, file.id)).toEqual({ id: file.id, deleted: true })
      expect(await rejection(kit.files.retrieve(ann, file.id))).toMatchObject({ status: 404 })
      expect(intents('delete')).toEqual([])
    })

    it('the provider refuses changes nothing, and leaves no intent', async () => {
      const file = await upload()
      fake.failNext({ status: 400, method: 'DELETE', pathPrefix: '/v1/files/' })
      expect(await rejection(kit.files.delete(ann, file.id))).toMatchObject({ status: 502 })
      expect((await kit.files.retrieve(ann, file.id)).id).toBe(file.id)
      expect(intents('delete')).toEqual([])
    })

    it('the provider cannot be reached for keeps its intent, so the reconciler finishes it', async () => {
      const file = await upload()
      fake.failNext({ status: 500, method: 'DELETE', pathPrefix: '/v1/files/' })
      expect(await rejection(kit.files.delete(ann, file.id))).toMatchObject({ status: 502 })
      expect(intents('delete').map((key) => key.slice(key.indexOf(':intent:') + 8))).toEqual([`delete:${file.id}`])
      records.delete(intents('delete')[0] as string)
    })

    it('whose record cannot be dropped after the provider deleted its copy keeps its intent', async () => {
      const file = await upload()
      records.failing = { op: 'delete', key: /:file:file-/ }
      expect(await rejection(kit.files.delete(ann, file.id))).toMatchObject({ status: 503 })
      records.failing = undefined
      expect(intents('delete')).toHaveLength(1)
      const [key] = intents('delete')
      const intent = records.get(key as string)
      expect(JSON.stringify(intent)).toContain(file.id)
      // The reconciler finishes it: the provider's copy is gone already, the record goes now.
      await kit.files.settleIntent(JSON.parse(JSON.parse(String(intent)).value) as Intent)
      expect(await rejection(kit.files.retrieve(ann, file.id))).toMatchObject({ status: 404 })
      records.delete(key as string)
    })
  })

  describe('a leftover upload intent', () => {
    it('of a stored file lists it again and keeps it', async () => {
      const file = await upload()
      const intent: Intent = {
        kind: 'file',
        id: file.id,
        owner: 'ann',
        provider: 'openai',
        createdAtMs: file.createdAtMs,
        key: 'k',
        attempts: 0,
      }
      const upstream = upstreamFiles()
      await kit.files.settleIntent(intent)
      expect(upstreamFiles()).toBe(upstream)
      expect((await kit.files.list(ann)).data.map((f) => f.id)).toContain(file.id)
    })

    it('is refused for another kind of intent', async () => {
      const intent = {
        kind: 'batch',
        id: 'batch_x',
        owner: 'ann',
        provider: 'openai',
        createdAtMs: 0,
        key: 'k',
        attempts: 0,
      }
      await expect(kit.files.settleIntent(intent as Intent)).rejects.toThrow('not a file intent: batch_x')
    })
  })

  describe('a list', () => {
    it('refuses a page size outside 1 to 10,000, naming it', async () => {
      for (const limit of [0, 10_001, 2.5]) {
        expect(await rejection(kit.files.list(ann, { limit }))).toMatchObject({
          status: 400,
          param: 'limit',
          message: `Invalid value for 'limit': ${limit}. It must be an integer from 1 to 10000.`,
        })
      }
    })

    it('refuses a page after a file that is not the caller’s', async () => {
      expect(await rejection(kit.files.list(ann, { after: 'file-nope' }))).toMatchObject({
        status: 400,
        param: 'after',
        message: "Invalid value for 'after': no file 'file-nope' to list after.",
      })
    })
  })
})
