import OpenAI from 'openai'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeOpenAI, fakeBatchUsage, fakeUsage, type OpenAIErrorBody, startFakeOpenAI } from '../src/index.js'
import {
  chatLine,
  clientFor,
  getJson,
  type ListEnvelope,
  pollToTerminal,
  readJsonl,
  schemas,
  toJsonl,
  uploadBatchFile,
} from './helpers.js'

let fake: FakeOpenAI
let client: OpenAI

beforeEach(async () => {
  fake = await startFakeOpenAI()
  client = clientFor(fake)
})

afterEach(async () => {
  await fake.close()
})

async function createBatch(
  lines: readonly unknown[],
  endpoint: '/v1/chat/completions' | '/v1/embeddings' = '/v1/chat/completions',
) {
  const file = await uploadBatchFile(client, toJsonl(lines))
  const batch = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: '24h' })
  schemas.assert('Batch', batch)
  return { file, batch }
}

function byCustomId(records: Array<Record<string, unknown>>): Map<unknown, Record<string, unknown>> {
  return new Map(records.map((record) => [record.custom_id, record]))
}

describe('batch lifecycle', () => {
  it('creates a validating batch with every field present', async () => {
    const { file, batch } = await createBatch([chatLine('a', 'hi')])
    expect(batch.id).toMatch(/^batch_[0-9a-f]{32}$/)
    expect(batch).toEqual({
      id: batch.id,
      object: 'batch',
      endpoint: '/v1/chat/completions',
      model: null,
      errors: null,
      input_file_id: file.id,
      completion_window: '24h',
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: batch.created_at,
      in_progress_at: null,
      expires_at: batch.created_at + 86_400,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      usage: null,
      metadata: null,
    })
  })

  it('advances one step per poll to completed and writes valid output and error files', async () => {
    const lines = [
      chatLine('req-1', 'Hello there, how are you doing today?', { max_tokens: 10 }),
      chatLine('fail-2', 'this one fails'),
      chatLine('req-3', 'short', { max_completion_tokens: 500 }),
      chatLine('req-4', 'héllo wörld 🌍'),
    ]
    const { batch } = await createBatch(lines)
    const { batch: done, seen } = await pollToTerminal(client, batch.id)
    expect(seen).toEqual(['in_progress', 'finalizing', 'completed'])

    expect(done.request_counts).toEqual({ total: 4, completed: 3, failed: 1 })
    expect(done.model).toBe('gpt-4o-mini')
    expect(done.usage).toEqual(fakeBatchUsage(lines))
    for (const field of ['in_progress_at', 'finalizing_at', 'completed_at'] as const) {
      expect(done[field]).toBeGreaterThanOrEqual(done.created_at)
    }
    expect(done.output_file_id).toMatch(/^file-/)
    expect(done.error_file_id).toMatch(/^file-/)

    const outputFile = await client.files.retrieve(done.output_file_id as string)
    schemas.assert('OpenAIFile', outputFile)
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` })
    const errorFile = await client.files.retrieve(done.error_file_id as string)
    expect(errorFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_error.jsonl` })

    const output = await readJsonl(client, outputFile.id)
    expect(output.map((line) => line.custom_id)).toEqual(['req-1', 'req-3', 'req-4'])
    const inputs = byCustomId(lines)
    for (const line of output) {
      schemas.assert('BatchRequestOutput', line)
      expect(line.id).toMatch(/^batch_req_[0-9a-f]+$/)
      expect(line.error).toBeNull()
      const response = line.response as { status_code: number; request_id: string; body: Record<string, unknown> }
      expect(response.status_code).toBe(200)
      expect(response.request_id).toMatch(/^req_[0-9a-f]+$/)
      expect(response.body).toMatchObject({
        object: 'chat.completion',
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
      })
      expect(response.body.id).toMatch(/^chatcmpl-/)
      expect(response.body.usage).toEqual(fakeUsage(inputs.get(line.custom_id)))
    }

    const errors = await readJsonl(client, errorFile.id)
    expect(errors).toHaveLength(1)
    schemas.assert('BatchRequestOutput', errors[0])
    expect(errors[0]).toMatchObject({
      custom_id: 'fail-2',
      response: { status_code: 400, body: { error: { type: 'invalid_request_error', param: null, code: null } } },
      error: null,
    })
    schemas.assert('ErrorResponse', (errors[0]?.response as { body: unknown } | undefined)?.body)
  })

  it('creates no error file when nothing fails and no output file when everything fails', async () => {
    const ok = await createBatch([chatLine('a', 'x'), chatLine('b', 'y')])
    const okDone = (await pollToTerminal(client, ok.batch.id)).batch
    expect(okDone.output_file_id).not.toBeNull()
    expect(okDone.error_file_id).toBeNull()

    const bad = await createBatch([chatLine('fail-a', 'x'), chatLine('fail-b', 'y')])
    const badDone = (await pollToTerminal(client, bad.batch.id)).batch
    expect(badDone.status).toBe('completed')
    expect(badDone.output_file_id).toBeNull()
    expect(badDone.error_file_id).not.toBeNull()
    expect(badDone.request_counts).toEqual({ total: 2, completed: 0, failed: 2 })
    expect(badDone.usage).toEqual({
      input_tokens: 0,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 0,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 0,
    })
  })

  it('answers embeddings lines with an embedding list', async () => {
    const lines = [
      {
        custom_id: 'e1',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: 'hello' },
      },
      {
        custom_id: 'e2',
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: ['a', 'b'], dimensions: 4 },
      },
    ]
    const { batch } = await createBatch(lines, '/v1/embeddings')
    const done = (await pollToTerminal(client, batch.id)).batch
    expect(done.usage).toEqual(fakeBatchUsage(lines))
    const output = byCustomId(await readJsonl(client, done.output_file_id as string))
    const e2 = output.get('e2') as {
      response: { body: { object: string; data: Array<{ embedding: number[] }>; usage: unknown } }
    }
    expect(e2.response.body.object).toBe('list')
    expect(e2.response.body.data).toHaveLength(2)
    expect(e2.response.body.data[0]?.embedding).toHaveLength(4)
    const usage = fakeUsage(lines[1])
    expect(e2.response.body.usage).toEqual({ prompt_tokens: usage.prompt_tokens, total_tokens: usage.total_tokens })
  })

  it('fails validation like OpenAI, listing every bad line', async () => {
    const file = await uploadBatchFile(
      client,
      [
        JSON.stringify(chatLine('ok', 'fine')),
        '{"custom_id": "broken", ',
        JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } }),
        JSON.stringify({ ...chatLine('wrong-url', 'x'), url: '/v1/embeddings' }),
        '',
      ].join('\n'),
    )
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    const { batch: failed, seen } = await pollToTerminal(client, batch.id)
    expect(seen).toEqual(['failed'])
    expect(failed.failed_at).not.toBeNull()
    expect(failed.in_progress_at).toBeNull()
    expect(failed.output_file_id).toBeNull()
    expect(failed.error_file_id).toBeNull()
    expect(failed.errors).toEqual({
      object: 'list',
      data: [
        { code: 'invalid_json_line', message: 'This line is not parseable as valid JSON.', param: null, line: 2 },
        {
          code: 'missing_required_parameter',
          message: "Missing required parameter: 'custom_id'.",
          param: 'custom_id',
          line: 3,
        },
        {
          code: 'invalid_url',
          message: 'The URL provided for this request does not match the batch endpoint.',
          param: 'url',
          line: 4,
        },
      ],
    })
  })

  it('creates a batch for an unknown input file, then fails it on the next step', async () => {
    const batch = await client.batches.create({
      input_file_id: 'file-doesnotexist',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    })
    expect(batch.status).toBe('validating')
    const failed = await client.batches.retrieve(batch.id)
    expect(failed.status).toBe('failed')
    expect(failed.errors?.data).toEqual([
      {
        code: 'invalid_request',
        line: null,
        param: 'file_id',
        message: expect.stringContaining('Cannot find file file-doesnotexist'),
      },
    ])
  })

  it('keeps metadata and honours output_expires_after on the generated files', async () => {
    const file = await uploadBatchFile(client, toJsonl([chatLine('a', 'x')]))
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { job: 'nightly' },
      output_expires_after: { anchor: 'created_at', seconds: 3600 },
    })
    expect(batch.metadata).toEqual({ job: 'nightly' })
    const done = (await pollToTerminal(client, batch.id)).batch
    const output = await client.files.retrieve(done.output_file_id as string)
    expect(output.expires_at).toBe(output.created_at + 3600)
  })

  it('survives deletion of the input file after validation', async () => {
    const { file, batch } = await createBatch([chatLine('a', 'x')])
    await client.batches.retrieve(batch.id)
    await client.files.delete(file.id)
    const done = (await pollToTerminal(client, batch.id)).batch
    expect(done.status).toBe('completed')
    expect(done.request_counts?.completed).toBe(1)
  })
})

describe('POST /batches validation', () => {
  it('answers OpenAI 400s for missing parameters, a bad endpoint and a bad completion window', async () => {
    const file = await uploadBatchFile(client, toJsonl([chatLine('a', 'x')]))
    await expect(
      client.batches.create({ endpoint: '/v1/chat/completions', completion_window: '24h' } as never),
    ).rejects.toMatchObject({
      status: 400,
      error: {
        message: "Missing required parameter: 'input_file_id'.",
        type: 'invalid_request_error',
        param: 'input_file_id',
        code: 'missing_required_parameter',
      },
    })
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/invalid/endpoint' as '/v1/embeddings',
        completion_window: '24h',
      }),
    ).rejects.toMatchObject({
      status: 400,
      param: 'endpoint',
      code: 'invalid_value',
      error: { message: expect.stringMatching(/^Invalid value: '\/v1\/invalid\/endpoint'\. Supported values are: /) },
    })
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '48h' as '24h',
      }),
    ).rejects.toMatchObject({ status: 400, param: 'completion_window', code: 'invalid_value' })
    await expect(
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { tags: ['a'] as unknown as string },
      }),
    ).rejects.toMatchObject({
      status: 400,
      param: 'metadata.tags',
      code: 'invalid_type',
      error: { message: "Invalid type for 'metadata.tags': expected a string, but got an array instead." },
    })
    expect(fake.batches.size).toBe(0)
  })

  it('answers unparseable JSON with OpenAI’s 400', async () => {
    const res = await fetch(`${fake.baseURL}/batches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: '{nope',
    })
    expect(res.status).toBe(400)
    const body = (await res.json()) as OpenAIErrorBody
    schemas.assert('ErrorResponse', body)
    expect(body.error.message).toMatch(/^We could not parse the JSON body of your request/)
  })
})

describe('cancel and expiry', () => {
  const lines = [chatLine('l1', 'one'), chatLine('l2', 'two'), chatLine('fail-3', 'three'), chatLine('l4', 'four')]

  it('cancels an in-progress batch into cancelled with partial output', async () => {
    const { batch } = await createBatch(lines)
    expect((await client.batches.retrieve(batch.id)).status).toBe('in_progress')
    const cancelling = await client.batches.cancel(batch.id)
    schemas.assert('Batch', cancelling)
    expect(cancelling.status).toBe('cancelling')
    expect(cancelling.cancelling_at).not.toBeNull()

    const { batch: cancelled, seen } = await pollToTerminal(client, batch.id)
    expect(seen).toEqual(['cancelled'])
    expect(cancelled.cancelled_at).not.toBeNull()
    expect(cancelled.completed_at).toBeNull()
    expect(cancelled.request_counts).toEqual({ total: 4, completed: 2, failed: 2 })
    expect(cancelled.usage).toEqual(fakeBatchUsage(lines.slice(0, 2)))

    const output = await readJsonl(client, cancelled.output_file_id as string)
    expect(output.map((line) => line.custom_id)).toEqual(['l1', 'l2'])
    const errors = await readJsonl(client, cancelled.error_file_id as string)
    for (const line of errors) schemas.assert('BatchRequestOutput', line)
    expect(errors).toEqual([
      expect.objectContaining({
        custom_id: 'fail-3',
        response: null,
        error: { code: 'batch_cancelled', message: expect.any(String) },
      }),
      expect.objectContaining({
        custom_id: 'l4',
        response: null,
        error: expect.objectContaining({ code: 'batch_cancelled' }),
      }),
    ])

    const again = await client.batches.cancel(batch.id)
    expect(again.status).toBe('cancelled')
  })

  it('cancels a validating batch without producing files', async () => {
    const { batch } = await createBatch(lines)
    await client.batches.cancel(batch.id)
    const cancelled = (await pollToTerminal(client, batch.id)).batch
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      output_file_id: null,
      error_file_id: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    })
  })

  it('refuses to cancel a completed batch with 409', async () => {
    const { batch } = await createBatch([chatLine('a', 'x')])
    await pollToTerminal(client, batch.id)
    const error = await client.batches.cancel(batch.id).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.ConflictError)
    expect(error).toMatchObject({
      status: 409,
      error: {
        message: "Cannot cancel a batch with status 'completed'.",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    })
  })

  it('expire() moves an in-progress batch to expired with batch_expired lines', async () => {
    const { batch } = await createBatch(lines)
    await client.batches.retrieve(batch.id)
    await fake.expire(batch.id)
    const expired = await client.batches.retrieve(batch.id)
    schemas.assert('Batch', expired)
    expect(expired.status).toBe('expired')
    expect(expired.expired_at).not.toBeNull()
    expect(expired.request_counts).toEqual({ total: 4, completed: 2, failed: 2 })
    const errors = await readJsonl(client, expired.error_file_id as string)
    expect(errors.map((line) => (line.error as { code: string }).code)).toEqual(['batch_expired', 'batch_expired'])
    expect(fake.batches.get(batch.id)?.status).toBe('expired')
    await expect(fake.expire(batch.id)).rejects.toThrow(/status 'expired'/)
    expect(() => fake.expire('batch_nope')).toThrow(/No batch found/)
  })

  it('answers unknown batch ids with 404', async () => {
    for (const call of [() => client.batches.retrieve('batch_nope'), () => client.batches.cancel('batch_nope')]) {
      await expect(call()).rejects.toMatchObject({
        status: 404,
        error: { message: "No batch found with id 'batch_nope'.", type: 'invalid_request_error' },
      })
    }
  })
})

describe('GET /batches', () => {
  it('lists newest first with limit and after', async () => {
    const created: string[] = []
    for (let i = 0; i < 3; i++) created.push((await createBatch([chatLine(`a${i}`, 'x')])).batch.id)
    const page = await client.batches.list({ limit: 2 })
    expect(page.data.map((b) => b.id)).toEqual([created[2], created[1]])
    expect(page.has_more).toBe(true)
    const raw = await getJson<ListEnvelope>(fake, '/batches?limit=2')
    schemas.assert('ListBatchesResponse', raw)
    expect(raw).toMatchObject({ object: 'list', has_more: true, first_id: created[2], last_id: created[1] })
    const next = await page.getNextPage()
    expect(next.data.map((b) => b.id)).toEqual([created[0]])
    expect(next.has_more).toBe(false)
    await expect(client.batches.list({ limit: 101 })).rejects.toMatchObject({
      status: 400,
      code: 'integer_above_max_value',
    })
  })
})

describe('timed progress', () => {
  it('advances batches on a timer without polling', async () => {
    const timed = await startFakeOpenAI({ progress: 5 })
    try {
      const timedClient = clientFor(timed)
      const file = await uploadBatchFile(timedClient, toJsonl([chatLine('a', 'x')]))
      const batch = await timedClient.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      const deadline = Date.now() + 5000
      while (timed.batches.get(batch.id)?.status !== 'completed') {
        if (Date.now() > deadline) throw new Error('timed batch did not complete')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const done = await timedClient.batches.retrieve(batch.id)
      expect(done.status).toBe('completed')
      expect(done.request_counts?.completed).toBe(1)
    } finally {
      await timed.close()
    }
  })
})
