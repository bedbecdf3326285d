import { Readable } from 'node:stream'
import { fakeUsage } from '@batchkit/testkit'
import { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatLines, type Harness, KEYS, startHarness } from './harness.js'

let h: Harness

beforeAll(async () => {
  h = await startHarness()
})
afterAll(() => h.close())

/** The raw JSON of a GET, for checks against OpenAI's schemas (the SDK wraps lists in page objects). */
async function getJson(harness: Harness, path: string, key: string = KEYS.alice) {
  const response = await fetch(harness.baseURL + path, { headers: { authorization: `Bearer ${key}` } })
  expect(response.headers.get('content-type')).toBe('application/json')
  return (await response.json()) as { data: { id: string }[] } & Record<string, unknown>
}

async function upload(text: string, name = 'requests.jsonl', key: string = KEYS.alice) {
  return h.client(key).files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' })
}

async function runToEnd(id: string, key: string = KEYS.alice) {
  const client = h.client(key)
  const seen: string[] = []
  for (let i = 0; i < 20; i++) {
    const batch = await client.batches.retrieve(id)
    h.schemas.assert('Batch', batch)
    // The read answered from the store and refreshed the batch in the background: let that land.
    await h.kit.batches.idle()
    seen.push(batch.status)
    if (['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) return { batch, seen }
  }
  throw new Error(`batch ${id} did not end: ${seen.join(' -> ')}`)
}

describe('files through the openai client', () => {
  it('uploads, retrieves, lists and downloads a batch file byte for byte', async () => {
    const text = chatLines(3)
    const file = await upload(text)
    h.schemas.assert('OpenAIFile', file)
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'requests.jsonl', status: 'processed' })
    expect(file.bytes).toBe(Buffer.byteLength(text))
    expect(file.id).toMatch(/^file-[A-Za-z0-9]{24}$/)
    expect(file.expires_at).toBe(file.created_at + 30 * 24 * 3600)

    const client = h.client()
    expect(await client.files.retrieve(file.id)).toEqual(file)
    const content = await client.files.content(file.id)
    expect(content.headers.get('content-type')).toBe('application/octet-stream')
    expect(await content.text()).toBe(text)

    const list = await getJson(h, '/files')
    h.schemas.assert('ListFilesResponse', list)
    expect(list.data.map((f) => f.id)).toContain(file.id)
    // Upstream ids never reach the client.
    expect([...h.fake.files.keys()]).not.toContain(file.id)
  })

  it('accepts the file part before the purpose field, as curl and the SDK may send it', async () => {
    const form = new FormData()
    form.append('file', new Blob([chatLines(2)]), 'first.jsonl')
    form.append('purpose', 'batch')
    const response = await fetch(`${h.baseURL}/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alice}` },
      body: form,
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/)
    const file = await response.json()
    h.schemas.assert('OpenAIFile', file)
    expect(file).toMatchObject({ filename: 'first.jsonl', purpose: 'batch' })
  })

  it('lists newest first, pages with after and limit, filters by purpose and orders by order', async () => {
    const key = 'sk-pager'
    const local = await startHarness({ kit: { authenticate: () => ({ owner: 'pager' }) } })
    try {
      const client = local.client(key)
      const ids: string[] = []
      for (let i = 0; i < 5; i++) {
        const purpose = i % 2 === 0 ? 'batch' : 'user_data'
        const file = await client.files.create({
          file: await toFile(Buffer.from(chatLines(1)), `f${i}.jsonl`),
          purpose,
        })
        ids.push(file.id)
      }
      const newestFirst = [...ids].reverse()
      const first = await client.files.list({ limit: 2 })
      expect(first.data.map((f) => f.id)).toEqual(newestFirst.slice(0, 2))
      expect(first.has_more).toBe(true)
      const all: string[] = []
      for await (const file of client.files.list({ limit: 2 })) all.push(file.id)
      expect(all).toEqual(newestFirst)
      const asc = await client.files.list({ order: 'asc' })
      expect(asc.data.map((f) => f.id)).toEqual(ids)
      expect(asc.has_more).toBe(false)
      const raw = await (await fetch(`${local.baseURL}/files?limit=2&after=${newestFirst[1]}`)).json()
      local.schemas.assert('ListFilesResponse', raw)
      expect(raw).toMatchObject({ first_id: newestFirst[2], last_id: newestFirst[3], has_more: true })
      const batchOnly = await client.files.list({ purpose: 'batch' })
      expect(batchOnly.data.map((f) => f.id)).toEqual([ids[4], ids[2], ids[0]])
    } finally {
      await local.close()
    }
  })

  it('deletes a file here and upstream', async () => {
    const file = await upload(chatLines(1))
    const upstreamBefore = h.fake.files.size
    const deleted = await h.client().files.delete(file.id)
    h.schemas.assert('DeleteFileResponse', deleted)
    expect(deleted).toEqual({ id: file.id, object: 'file', deleted: true })
    expect(h.fake.files.size).toBe(upstreamBefore - 1)
    await expect(h.client().files.retrieve(file.id)).rejects.toMatchObject({ status: 404 })
  })
})

describe('batches through the openai client', () => {
  it('runs a batch to completion and serves its output under our own ids', async () => {
    const text = chatLines(4)
    const input = await upload(text)
    const client = h.client()
    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { project: 'demo' },
    })
    h.schemas.assert('Batch', created)
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      metadata: { project: 'demo' },
      output_file_id: null,
      error_file_id: null,
    })
    expect(created.id).toMatch(/^batch_[0-9a-f]{32}$/)
    expect(h.fake.batches.has(created.id)).toBe(false)

    const { batch, seen } = await runToEnd(created.id)
    // Each read shows what the store held, then refreshes: the fake's steps show one read late.
    expect(seen).toEqual(['validating', 'in_progress', 'finalizing', 'completed'])
    expect(batch.request_counts).toEqual({ total: 4, completed: 4, failed: 0 })
    expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at)
    expect(batch.output_file_id).toMatch(/^file-/)
    expect(h.fake.files.has(batch.output_file_id as string)).toBe(false)

    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const expected = lines.map(fakeUsage)
    expect(batch.usage).toEqual({
      input_tokens: expected.reduce((s, u) => s + u.prompt_tokens, 0),
      input_tokens_details: { cached_tokens: expected.reduce((s, u) => s + u.prompt_tokens_details.cached_tokens, 0) },
      output_tokens: expected.reduce((s, u) => s + u.completion_tokens, 0),
      output_tokens_details: {
        reasoning_tokens: expected.reduce((s, u) => s + u.completion_tokens_details.reasoning_tokens, 0),
      },
      total_tokens: expected.reduce((s, u) => s + u.total_tokens, 0),
    })

    const output = await client.files.retrieve(batch.output_file_id as string)
    h.schemas.assert('OpenAIFile', output)
    expect(output).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` })
    const outputLines = (await (await client.files.content(output.id)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    for (const line of outputLines) h.schemas.assert('BatchRequestOutput', line)
    expect(outputLines.map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort())
    const outputs = (await client.files.list({ purpose: 'batch_output' })).data.map((f) => f.id)
    expect(outputs).toContain(output.id)
    // Bob sees neither the batch nor its output.
    await expect(h.client(KEYS.bob).files.retrieve(output.id)).rejects.toMatchObject({ status: 404 })
    await expect(h.client(KEYS.bob).batches.retrieve(batch.id)).rejects.toMatchObject({ status: 404 })
  })

  it('puts failed requests in an error file and counts them', async () => {
    const text = chatLines(2) + chatLines(1, { prefix: 'fail' })
    const input = await upload(text)
    const created = await h
      .client()
      .batches.create({ input_file_id: input.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
    const { batch } = await runToEnd(created.id)
    expect(batch.request_counts).toEqual({ total: 3, completed: 2, failed: 1 })
    const errors = await (await h.client().files.content(batch.error_file_id as string)).text()
    const line = JSON.parse(errors.trim())
    h.schemas.assert('BatchRequestOutput', line)
    expect(line.custom_id).toBe('fail-1')
    expect(line.response.status_code).toBe(400)
  })

  it('lists batches newest first with current statuses and honest paging', async () => {
    const local = await startHarness({ kit: { authenticate: () => ({ owner: 'lister' }) } })
    try {
      const client = local.client('anything')
      const input = await client.files.create({
        file: await toFile(Buffer.from(chatLines(1)), 'x.jsonl'),
        purpose: 'batch',
      })
      const ids: string[] = []
      for (let i = 0; i < 3; i++) {
        const b = await client.batches.create({
          input_file_id: input.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        })
        ids.push(b.id)
      }
      local.schemas.assert('ListBatchesResponse', await getJson(local, '/batches'))
      // A list answers from the store, and refreshes the batches it shows in the background.
      const first = await client.batches.list({ limit: 2 })
      expect(first.data.map((b) => b.status)).toEqual(['validating', 'validating'])
      await local.kit.batches.idle()
      const page = await client.batches.list({ limit: 2 })
      expect(page.data.map((b) => b.id)).toEqual([ids[2], ids[1]])
      expect(page.has_more).toBe(true)
      // The fake has advanced each batch by one step per refresh: one by the first list, shown by this one.
      expect(page.data.map((b) => b.status)).toEqual(['in_progress', 'in_progress'])
      const all: string[] = []
      for await (const b of client.batches.list({ limit: 2 })) all.push(b.id)
      expect(all).toEqual([...ids].reverse())
    } finally {
      await local.close()
    }
  })

  it('cancels a running batch and refuses to cancel a finished one with 409 and x-should-retry: false', async () => {
    const input = await upload(chatLines(2))
    const client = h.client()
    const running = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const cancelling = await client.batches.cancel(running.id)
    h.schemas.assert('Batch', cancelling)
    expect(cancelling.status).toBe('cancelling')
    expect(cancelling.cancelling_at).toEqual(expect.any(Number))
    const { batch } = await runToEnd(running.id)
    expect(batch.status).toBe('cancelled')
    expect((await client.batches.cancel(running.id)).status).toBe('cancelled')

    const done = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    await runToEnd(done.id)
    const response = await fetch(`${h.baseURL}/batches/${done.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alice}` },
    })
    expect(response.status).toBe(409)
    expect(response.headers.get('x-should-retry')).toBe('false')
    expect(await response.json()).toEqual({
      error: {
        message: "Cannot cancel a batch with status 'completed'.",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    })
  })

  it('serves the typed in-process API on the same records as HTTP', async () => {
    const alice = { owner: 'alice' }
    const file = await h.kit.files.create(alice, {
      file: Readable.from([chatLines(2)]),
      filename: 'code.jsonl',
      purpose: 'batch',
    })
    const viaHttp = await h.client().files.retrieve(file.id)
    expect(viaHttp.bytes).toBe(file.bytes)
    const batch = await h.kit.batches.create(alice, {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
    expect((await h.client().batches.retrieve(batch.id)).input_file_id).toBe(file.id)
    await expect(h.kit.batches.retrieve({ owner: 'bob' }, batch.id)).rejects.toMatchObject({ status: 404 })
  })
})
