import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type OpenAI from 'openai'
import { toFile } from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeOpenAI, type FileObject, type OpenAIErrorBody, startFakeOpenAI } from '../src/index.js'
import { chatLine, clientFor, getJson, type ListEnvelope, schemas, toJsonl, uploadBatchFile } from './helpers.js'

const THIRTY_DAYS = 30 * 24 * 60 * 60
const JSONL = toJsonl([chatLine('a', 'hello'), chatLine('b', 'world')])

let fake: FakeOpenAI
let client: OpenAI
let dataDir: string

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'testkit-files-'))
  fake = await startFakeOpenAI({ dataDir })
  client = clientFor(fake)
})

afterEach(async () => {
  await fake.close()
  await rm(dataDir, { recursive: true, force: true })
})

async function rawUpload(form: FormData): Promise<Response> {
  return fetch(`${fake.baseURL}/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fake.apiKey}` },
    body: form,
  })
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('POST /files', () => {
  it('uploads through the official client and returns a File object', async () => {
    const file = await uploadBatchFile(client, JSONL, 'requests.jsonl')
    schemas.assert('OpenAIFile', file)
    expect(file).toMatchObject({
      object: 'file',
      bytes: Buffer.byteLength(JSONL),
      filename: 'requests.jsonl',
      purpose: 'batch',
      status: 'processed',
      status_details: null,
    })
    expect(file.id).toMatch(/^file-[A-Za-z0-9]{24}$/)
    expect(file.expires_at).toBe(file.created_at + THIRTY_DAYS)
    expect(fake.files.get(file.id)?.bytes).toBe(Buffer.byteLength(JSONL))
  })

  it('accepts the file part before the purpose field', async () => {
    const form = new FormData()
    form.append('file', new Blob([JSONL]), 'first.jsonl')
    form.append('purpose', 'batch')
    const res = await rawUpload(form)
    expect(res.status).toBe(200)
    const body = (await res.json()) as FileObject
    schemas.assert('OpenAIFile', body)
    expect(body).toMatchObject({ filename: 'first.jsonl', purpose: 'batch', bytes: Buffer.byteLength(JSONL) })
  })

  it('accepts the purpose field before the file part, and expires_after in bracket notation', async () => {
    const form = new FormData()
    form.append('purpose', 'user_data')
    form.append('expires_after[seconds]', '3600')
    form.append('file', new Blob(['plain text']), 'notes.txt')
    form.append('expires_after[anchor]', 'created_at')
    const res = await rawUpload(form)
    expect(res.status).toBe(200)
    const body = (await res.json()) as FileObject
    expect(body).toMatchObject({ purpose: 'user_data', bytes: 10 })
    expect(body.expires_at).toBe(body.created_at + 3600)
  })

  it('passes expires_after through the official client', async () => {
    const file = await client.files.create({
      file: await toFile(Buffer.from('x'), 'x.txt'),
      purpose: 'assistants',
      expires_after: { anchor: 'created_at', seconds: 7200 },
    })
    expect(file.expires_at).toBe(file.created_at + 7200)
  })

  it('keeps files without expiry at expires_at null', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'user_data' })
    expect(file.expires_at).toBeNull()
  })

  it('rejects a missing purpose, a missing file and an unknown purpose with OpenAI error bodies', async () => {
    const noPurpose = new FormData()
    noPurpose.append('file', new Blob([JSONL]), 'a.jsonl')
    let res = await rawUpload(noPurpose)
    expect(res.status).toBe(400)
    let body = (await res.json()) as OpenAIErrorBody
    schemas.assert('ErrorResponse', body)
    expect(body.error).toEqual({
      message: "Missing required parameter: 'purpose'.",
      type: 'invalid_request_error',
      param: 'purpose',
      code: 'missing_required_parameter',
    })

    const noFile = new FormData()
    noFile.append('purpose', 'batch')
    res = await rawUpload(noFile)
    expect(res.status).toBe(400)
    body = (await res.json()) as OpenAIErrorBody
    expect(body.error).toMatchObject({ param: 'file', code: 'missing_required_parameter' })

    await expect(
      client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'bogus' as 'batch' }),
    ).rejects.toMatchObject({ status: 400, param: 'purpose', code: 'invalid_value' })
    expect(fake.files.size).toBe(0)
    expect(await readdir(dataDir)).toEqual([])
  })

  it('rejects a batch upload that is not JSONL, like OpenAI', async () => {
    await expect(uploadBatchFile(client, 'not json at all\n', 'bad.jsonl')).rejects.toMatchObject({
      status: 400,
      message: '400 Invalid file format for Batch API. Must be .jsonl',
    })
    await expect(uploadBatchFile(client, '', 'empty.jsonl')).rejects.toMatchObject({ status: 400 })
    expect(fake.files.size).toBe(0)
    expect(await readdir(dataDir)).toEqual([])
  })

  it('answers malformed multipart with a 400 and keeps no partial file', async () => {
    const boundary = 'xxBOUNDARYxx'
    const res = await fetch(`${fake.baseURL}/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${fake.apiKey}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
      body: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n${JSONL}`,
    })
    expect(res.status).toBe(400)
    schemas.assert('ErrorResponse', await res.json())
    expect(fake.files.size).toBe(0)
    expect(await readdir(dataDir)).toEqual([])
  })

  it('removes the partial file when the client aborts mid-upload', async () => {
    const boundary = 'abortBoundary'
    const req = request(`${fake.baseURL}/files`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${fake.apiKey}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': '10000000',
      },
    })
    req.on('error', () => undefined)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`)
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n`)
    req.write(Buffer.alloc(256 * 1024, 'a'))
    await waitFor(async () => (await readdir(dataDir)).length === 1)
    req.destroy()
    await waitFor(async () => (await readdir(dataDir)).length === 0)
    expect(fake.files.size).toBe(0)
  })
})

describe('GET /files, GET /files/{id}, DELETE, content', () => {
  it('lists newest first with honest pagination, filters by purpose and supports order=asc', async () => {
    const a = await uploadBatchFile(client, JSONL, 'a.jsonl')
    const b = await client.files.create({ file: await toFile(Buffer.from('b'), 'b.txt'), purpose: 'user_data' })
    const c = await uploadBatchFile(client, JSONL, 'c.jsonl')

    const all = await client.files.list()
    expect(all.data.map((f) => f.id)).toEqual([c.id, b.id, a.id])
    const raw = await getJson<ListEnvelope>(fake, '/files')
    schemas.assert('ListFilesResponse', raw)
    expect(raw).toMatchObject({ object: 'list', first_id: c.id, last_id: a.id, has_more: false })

    const firstPage = await client.files.list({ limit: 2 })
    expect(firstPage.data.map((f) => f.id)).toEqual([c.id, b.id])
    expect(firstPage.has_more).toBe(true)
    expect(await getJson<ListEnvelope>(fake, '/files?limit=2')).toMatchObject({
      has_more: true,
      first_id: c.id,
      last_id: b.id,
    })
    const secondPage = await firstPage.getNextPage()
    expect(secondPage.data.map((f) => f.id)).toEqual([a.id])
    expect(secondPage.has_more).toBe(false)

    const walked: string[] = []
    for await (const file of client.files.list({ limit: 1 })) walked.push(file.id)
    expect(walked).toEqual([c.id, b.id, a.id])

    const batchOnly = await client.files.list({ purpose: 'batch', order: 'asc' })
    expect(batchOnly.data.map((f) => f.id)).toEqual([a.id, c.id])

    const empty = await getJson<ListEnvelope>(fake, '/files?purpose=vision')
    schemas.assert('ListFilesResponse', empty)
    expect(empty).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false })
  })

  it('rejects an out-of-range limit and an unknown order', async () => {
    await expect(client.files.list({ limit: 0 })).rejects.toMatchObject({ status: 400, param: 'limit' })
    await expect(client.files.list({ order: 'sideways' as 'asc' })).rejects.toMatchObject({
      status: 400,
      param: 'order',
      code: 'invalid_value',
    })
  })

  it('retrieves, streams content and deletes (bytes included)', async () => {
    const file = await uploadBatchFile(client, JSONL)
    const retrieved = await client.files.retrieve(file.id)
    schemas.assert('OpenAIFile', retrieved)
    expect(retrieved).toEqual(file)

    const content = await client.files.content(file.id)
    expect(content.headers.get('content-type')).toBe('application/octet-stream')
    expect(await content.text()).toBe(JSONL)

    const path = fake.files.get(file.id)?.path
    const deleted = await client.files.delete(file.id)
    schemas.assert('DeleteFileResponse', deleted)
    expect(deleted).toEqual({ id: file.id, object: 'file', deleted: true })
    expect(fake.files.has(file.id)).toBe(false)
    expect(await readdir(dataDir)).not.toContain(path?.split('/').at(-1))
  })

  it('answers unknown file ids with 404 No such File object', async () => {
    for (const call of [
      () => client.files.retrieve('file-missing'),
      () => client.files.delete('file-missing'),
      () => client.files.content('file-missing'),
    ]) {
      await expect(call()).rejects.toMatchObject({
        status: 404,
        error: {
          message: 'No such File object: file-missing',
          type: 'invalid_request_error',
          param: 'id',
          code: null,
        },
      })
    }
  })
})
