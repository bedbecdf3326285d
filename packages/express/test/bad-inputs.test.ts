import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatLines, type Harness, KEYS, startHarness } from './harness.js'

let h: Harness
let foreignFileId: string
let foreignBatchId: string
let userDataFileId: string

beforeAll(async () => {
  h = await startHarness({ kit: { limits: { maxBatchFileBytes: 4000, maxBatchRequests: 5 } } })
  const bobFile = await uploadRaw(
    [
      ['purpose', 'batch'],
      ['file', chatLines(1)],
    ],
    KEYS.bob,
  )
  foreignFileId = ((await bobFile.json()) as { id: string }).id
  const bobBatch = await post(
    '/batches',
    { input_file_id: foreignFileId, endpoint: '/v1/chat/completions', completion_window: '24h' },
    KEYS.bob,
  )
  foreignBatchId = ((await bobBatch.json()) as { id: string }).id
  const userData = await uploadRaw([
    ['purpose', 'user_data'],
    ['file', 'not jsonl at all'],
  ])
  userDataFileId = ((await userData.json()) as { id: string }).id
})
afterAll(() => h.close())

/** A multipart upload built by hand, fields in the given order. */
function uploadRaw(parts: [string, string][], key: string = KEYS.alice) {
  const form = new FormData()
  for (const [name, value] of parts) {
    if (name === 'file') form.append('file', new Blob([value]), 'input.jsonl')
    else form.append(name, value)
  }
  return fetch(`${h.baseURL}/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form })
}

function post(path: string, body: unknown, key: string = KEYS.alice) {
  return fetch(h.baseURL + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

/** What a client can see of the state: both owners' lists here, and what exists upstream. */
async function snapshot() {
  const list = async (path: string, key: string) => {
    const r = await fetch(h.baseURL + path, { headers: { authorization: `Bearer ${key}` } })
    return ((await r.json()) as { data: { id: string }[] }).data.map((x) => x.id)
  }
  return {
    aliceFiles: await list('/files', KEYS.alice),
    bobFiles: await list('/files', KEYS.bob),
    aliceBatches: await list('/batches?limit=100', KEYS.alice),
    upstreamFiles: h.fake.files.size,
    upstreamBatches: h.fake.batches.size,
  }
}

const line = (o: Record<string, unknown>) => JSON.stringify(o)
const ok = { custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } }
const batchBody = (extra: Record<string, unknown>) => ({
  input_file_id: 'FILE',
  endpoint: '/v1/chat/completions',
  completion_window: '24h',
  ...extra,
})

type ErrorJson = { error: { message: string } & Record<string, unknown> }

type Case = {
  name: string
  send: () => Promise<Response>
  status: number
  error: { type?: string; code: string | null; param: string | null; message: RegExp | string }
}

const cases: Case[] = [
  {
    name: 'no API key',
    send: () => fetch(`${h.baseURL}/files`),
    status: 401,
    error: { code: null, param: null, message: /You didn't provide an API key/ },
  },
  {
    name: 'a wrong API key',
    send: () => fetch(`${h.baseURL}/batches`, { headers: { authorization: 'Bearer sk-wrong' } }),
    status: 401,
    error: { code: 'invalid_api_key', param: null, message: 'Incorrect API key provided.' },
  },
  {
    name: 'an upload that is not multipart',
    send: () => post('/files', { purpose: 'batch' }),
    status: 415,
    error: { code: 'unsupported_media_type', param: null, message: /multipart\/form-data/ },
  },
  {
    name: 'malformed multipart',
    send: () =>
      fetch(`${h.baseURL}/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'multipart/form-data; boundary=xyz' },
        body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"custom_id"',
      }),
    status: 400,
    error: { code: 'upload_incomplete', param: 'file', message: /did not arrive whole/ },
  },
  {
    name: 'a missing file',
    send: () => uploadRaw([['purpose', 'batch']]),
    status: 400,
    error: { code: 'missing_required_parameter', param: 'file', message: "Missing required parameter: 'file'." },
  },
  {
    name: 'a missing purpose',
    send: () => uploadRaw([['file', chatLines(2)]]),
    status: 400,
    error: { code: 'missing_required_parameter', param: 'purpose', message: "Missing required parameter: 'purpose'." },
  },
  {
    name: 'a wrong purpose',
    send: () =>
      uploadRaw([
        ['purpose', 'batches'],
        ['file', chatLines(2)],
      ]),
    status: 400,
    error: { code: 'invalid_value', param: 'purpose', message: /Invalid value for 'purpose': 'batches'/ },
  },
  {
    name: 'an unknown form field',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['colour', 'red'],
        ['file', chatLines(1)],
      ]),
    status: 400,
    error: { code: null, param: null, message: 'Unrecognized request argument supplied: colour' },
  },
  {
    name: 'a line that is not JSON',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', `${line(ok)}\n{"custom_id": "b",\n`],
      ]),
    status: 400,
    error: { code: 'invalid_json_line', param: 'file', message: 'Line 2 is not parseable as valid JSON.' },
  },
  {
    name: 'an invalid line sent before the purpose',
    send: () =>
      uploadRaw([
        ['file', `${line(ok)}\nnot json\n`],
        ['purpose', 'batch'],
      ]),
    status: 400,
    error: { code: 'invalid_json_line', param: 'file', message: 'Line 2 is not parseable as valid JSON.' },
  },
  {
    name: 'a duplicate custom_id',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', `${line(ok)}\n${line(ok)}\n`],
      ]),
    status: 400,
    error: { code: 'duplicate_custom_id', param: 'file', message: "Line 2: Duplicate custom_id 'a'." },
  },
  {
    name: 'mixed models',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', `${line(ok)}\n${line({ ...ok, custom_id: 'b', body: { model: 'gpt-4o', messages: [] } })}\n`],
      ]),
    status: 400,
    error: { code: 'model_mismatch', param: 'file', message: /^Line 2: The model 'gpt-4o' differs from 'gpt-4o-mini'/ },
  },
  {
    name: 'a line without custom_id',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', `${line({ ...ok, custom_id: undefined })}\n`],
      ]),
    status: 400,
    error: {
      code: 'missing_required_parameter',
      param: 'file',
      message: "Line 1: Missing required parameter: 'custom_id'.",
    },
  },
  {
    name: 'mixed urls',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', `${line(ok)}\n${line({ ...ok, custom_id: 'b', url: '/v1/embeddings' })}\n`],
      ]),
    status: 400,
    error: { code: 'url_mismatch', param: 'file', message: /^Line 2:/ },
  },
  {
    name: 'an empty batch file',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', ''],
      ]),
    status: 400,
    error: { code: 'empty_file', param: 'file', message: /empty/ },
  },
  {
    name: 'an oversize batch file',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', chatLines(30)],
      ]),
    status: 413,
    error: { code: 'file_too_large', param: 'file', message: 'Batch input files can be at most 4000 bytes.' },
  },
  {
    name: 'too many requests',
    send: () =>
      uploadRaw([
        ['purpose', 'batch'],
        ['file', chatLines(6).replaceAll('ünïcödé ✓', '')],
      ]),
    status: 400,
    error: { code: 'too_many_tasks', param: 'file', message: 'The file has more than 5 requests (line 6).' },
  },
  {
    name: 'an unknown file id',
    send: () => fetch(`${h.baseURL}/files/file-nope`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 404,
    error: { code: null, param: 'id', message: 'No such File object: file-nope' },
  },
  {
    name: "another owner's file id",
    send: () => fetch(`${h.baseURL}/files/${foreignFileId}`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 404,
    error: { code: null, param: 'id', message: /^No such File object: file-/ },
  },
  {
    name: "another owner's file content",
    send: () =>
      fetch(`${h.baseURL}/files/${foreignFileId}/content`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 404,
    error: { code: null, param: 'id', message: /^No such File object: file-/ },
  },
  {
    name: "deleting another owner's file",
    send: () =>
      fetch(`${h.baseURL}/files/${foreignFileId}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${KEYS.alice}` },
      }),
    status: 404,
    error: { code: null, param: 'id', message: /^No such File object: file-/ },
  },
  {
    name: 'an unknown batch id',
    send: () => fetch(`${h.baseURL}/batches/batch_nope`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 404,
    error: { code: null, param: 'id', message: "No batch found with id 'batch_nope'." },
  },
  {
    name: "cancelling another owner's batch",
    send: () => post(`/batches/${foreignBatchId}/cancel`, {}),
    status: 404,
    error: { code: null, param: 'id', message: /^No batch found with id 'batch_/ },
  },
  {
    name: 'a batch without input_file_id',
    send: () => post('/batches', { endpoint: '/v1/chat/completions', completion_window: '24h' }),
    status: 400,
    error: {
      code: 'missing_required_parameter',
      param: 'input_file_id',
      message: "Missing required parameter: 'input_file_id'.",
    },
  },
  {
    name: 'a batch with a bad endpoint',
    send: () => post('/batches', batchBody({ endpoint: '/v1/invalid' })),
    status: 400,
    error: {
      code: 'invalid_value',
      param: 'endpoint',
      message: /^Invalid value: '\/v1\/invalid'. Supported values are:/,
    },
  },
  {
    name: 'a batch with completion_window 48h',
    send: () => post('/batches', batchBody({ completion_window: '48h' })),
    status: 400,
    error: {
      code: 'invalid_value',
      param: 'completion_window',
      message: "Invalid value: '48h'. Supported values are: '24h'.",
    },
  },
  {
    name: 'metadata with 17 pairs',
    send: () =>
      post(
        '/batches',
        batchBody({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }),
      ),
    status: 400,
    error: { code: 'invalid_value', param: 'metadata', message: /at most 16/ },
  },
  {
    name: 'a metadata value that is not a string',
    send: () => post('/batches', batchBody({ metadata: { tags: ['a'] } })),
    status: 400,
    error: {
      code: 'invalid_type',
      param: 'metadata.tags',
      message: "Invalid type for 'metadata.tags': expected a string, but got an array instead.",
    },
  },
  {
    name: 'a metadata key over 64 characters',
    send: () => post('/batches', batchBody({ metadata: { ['k'.repeat(65)]: 'v' } })),
    status: 400,
    error: { code: 'invalid_value', param: 'metadata', message: /longer than 64/ },
  },
  {
    name: 'a metadata value over 512 characters',
    send: () => post('/batches', batchBody({ metadata: { k: 'v'.repeat(513) } })),
    status: 400,
    error: { code: 'invalid_value', param: 'metadata.k', message: /longer than 512/ },
  },
  {
    name: 'a batch on an unknown file',
    send: () => post('/batches', batchBody({})),
    status: 404,
    error: { code: null, param: 'input_file_id', message: 'No such File object: FILE' },
  },
  {
    name: "a batch on another owner's file",
    send: () => post('/batches', batchBody({ input_file_id: foreignFileId })),
    status: 404,
    error: { code: null, param: 'input_file_id', message: /^No such File object: file-/ },
  },
  {
    name: 'a batch on a file that is not for batches',
    send: () => post('/batches', batchBody({ input_file_id: userDataFileId })),
    status: 400,
    error: { code: 'invalid_value', param: 'input_file_id', message: /purpose 'user_data'/ },
  },
  {
    name: 'a batch body that is not JSON',
    send: () =>
      fetch(`${h.baseURL}/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'application/json' },
        body: '{"input_file_id": ',
      }),
    status: 400,
    error: { code: 'invalid_json', param: null, message: /could not parse the JSON body/ },
  },
  {
    name: 'a batch body that is not JSON at all',
    send: () =>
      fetch(`${h.baseURL}/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'text/plain' },
        body: 'input_file_id=x',
      }),
    status: 415,
    error: { code: 'unsupported_media_type', param: null, message: /application\/json/ },
  },
  {
    name: 'a batches limit over 100',
    send: () => fetch(`${h.baseURL}/batches?limit=101`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 400,
    error: { code: 'invalid_value', param: 'limit', message: /from 1 to 100/ },
  },
  {
    name: 'a files order that is neither asc nor desc',
    send: () => fetch(`${h.baseURL}/files?order=up`, { headers: { authorization: `Bearer ${KEYS.alice}` } }),
    status: 400,
    error: { code: 'invalid_value', param: 'order', message: /'asc' and 'desc'/ },
  },
]

describe('bad input', () => {
  it.each(cases)(
    '$name: answers $status with an OpenAI error and leaves nothing behind',
    async ({ send, status, error }) => {
      const before = await snapshot()
      const response = await send()
      expect(response.status).toBe(status)
      expect(response.headers.get('content-type')).toBe('application/json')
      expect(response.headers.get('x-request-id')).toMatch(/^req_/)
      const body = (await response.json()) as { error: Record<string, unknown> }
      h.schemas.assert('ErrorResponse', body)
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
      expect(body.error.type).toBe(error.type ?? 'invalid_request_error')
      expect(body.error.code).toBe(error.code)
      expect(body.error.param).toBe(error.param)
      if (typeof error.message === 'string') expect(body.error.message).toBe(error.message)
      else expect(body.error.message as string).toMatch(error.message)
      // Aborted upstream uploads settle asynchronously on the fake's side.
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(await snapshot()).toEqual(before)
    },
  )

  it('answers a foreign id exactly as a nonexistent one', async () => {
    const get = (id: string) =>
      fetch(`${h.baseURL}/batches/${id}`, { headers: { authorization: `Bearer ${KEYS.alice}` } })
    const fakeId = `batch_${'0'.repeat(32)}`
    const [foreign, missing] = await Promise.all([get(foreignBatchId), get(fakeId)])
    expect(foreign.status).toBe(missing.status)
    const [a, b] = [(await foreign.json()) as ErrorJson, (await missing.json()) as ErrorJson]
    expect(a.error.message.replace(foreignBatchId, 'ID')).toBe(b.error.message.replace(fakeId, 'ID'))
    expect({ ...a.error, message: '' }).toEqual({ ...b.error, message: '' })
  })
})
