import type { FakeOpenAI } from '@batchkit/testkit'
import OpenAI, { toFile } from 'openai'
import { expect, it } from 'vitest'
import type { StartedHost } from './harness.js'

/** One mount of the API, as a client reaches it. */
export interface ApiMount {
  /** For test titles and messages. */
  label: string
  host: StartedHost
  /** The client's `baseURL`: origin plus mount path. */
  baseURL: string
  apiKey: string
}

/** What the wire-detail tests need of the suite; read when the tests run, after the suite's `beforeAll`. */
export interface WireDetailsContext {
  /** The API with no body parser in front. */
  plain: ApiMount
  /** The API behind the host's own JSON body parser (every host of the suite mounts one). */
  behindParser: ApiMount
  /** The fake upstream, to show a refused upload left nothing there. */
  fake: FakeOpenAI
}

const NON_ASCII_NAME = 'données-日本.jsonl'
const request = (id: string, content = `hello ${id}`) =>
  `${JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }] } })}\n`
const chatCreate = { endpoint: '/v1/chat/completions', completion_window: '24h' } as const
const JSON_PARSE_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"

/**
 * OpenAI's wire details, as a client sees them: exact non-ASCII filenames, OpenAI's refusal of unknown
 * arguments and purposes, invalid UTF-8 refused by line, the client's `x-request-id` kept, and
 * OpenAI's envelope for malformed JSON even behind the host's body parser. Call inside the suite's
 * `describe`.
 */
export function wireDetailsTests(context: () => WireDetailsContext): void {
  const client = (mount: ApiMount) => new OpenAI({ baseURL: mount.baseURL, apiKey: mount.apiKey, maxRetries: 0 })
  const auth = (mount: ApiMount) => ({ authorization: `Bearer ${mount.apiKey}` })

  it('keeps a non-ASCII filename exactly, from the openai client and from raw UTF-8 or RFC 5987 forms', async () => {
    const { plain } = context()
    const api = client(plain)
    const viaSdk = await api.files.create({
      file: await toFile(Buffer.from(request('a')), NON_ASCII_NAME),
      purpose: 'batch',
    })
    // curl sends the name's UTF-8 bytes as they are; RFC 5987 clients percent-encode them in `filename*`.
    const viaCurl = await rawUpload(plain, `filename="${NON_ASCII_NAME}"`, request('b'))
    const viaRfc5987 = await rawUpload(plain, `filename*=UTF-8''${encodeURIComponent(NON_ASCII_NAME)}`, request('c'))
    expect(viaCurl.status).toBe(200)
    expect(viaRfc5987.status).toBe(200)
    const ids = [
      viaSdk.id,
      ...(await Promise.all([viaCurl, viaRfc5987].map(async (r) => ((await r.json()) as { id: string }).id))),
    ]
    for (const id of ids) expect((await api.files.retrieve(id)).filename).toBe(NON_ASCII_NAME)
    const listed = (await api.files.list()).data.filter((file) => ids.includes(file.id))
    expect(listed.map((file) => file.filename)).toEqual(ids.map(() => NON_ASCII_NAME))
    for (const id of ids) await api.files.delete(id)
  })

  it('refuses a filename over 255 bytes of UTF-8, storing nothing here or upstream', async () => {
    const { plain, fake } = context()
    const api = client(plain)
    const before = await fileIds(api)
    const upstreamBefore = fake.files.size
    // 'é' is two bytes: 128 of them and '.jsonl' make 262 bytes, though only 134 characters.
    const tooLong = `${'é'.repeat(128)}.jsonl`
    const refused = await refusal(
      api.files.create({ file: await toFile(Buffer.from(request('a')), tooLong), purpose: 'batch' }),
    )
    expect(refused).toEqual({
      status: 400,
      error: {
        message: 'The filename is 262 bytes long; filenames can be at most 255 bytes (UTF-8).',
        type: 'invalid_request_error',
        param: 'file',
        code: 'invalid_value',
      },
    })
    expect(await fileIds(api)).toEqual(before)
    expect(fake.files.size).toBe(upstreamBefore)
    const longest = `${'a'.repeat(249)}.jsonl`
    const kept = await api.files.create({ file: await toFile(Buffer.from(request('a')), longest), purpose: 'batch' })
    expect(kept.filename).toBe(longest)
    await api.files.delete(kept.id)
  })

  it('refuses unknown arguments with the words and shape of OpenAI, on every route that reads them', async () => {
    const { plain, behindParser } = context()
    const unrecognized = (name: string) => ({
      status: 400,
      error: {
        message: `Unrecognized request argument supplied: ${name}`,
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    })
    for (const mount of [plain, behindParser]) {
      const api = client(mount)
      const file = await api.files.create({
        file: await toFile(Buffer.from(request('a')), 'in.jsonl'),
        purpose: 'batch',
      })
      const extra = { input_file_id: file.id, ...chatCreate, colour: 'red' } as OpenAI.Batches.BatchCreateParams
      expect(await refusal(api.batches.create(extra)), mount.label).toEqual(unrecognized('colour'))
      // LiteLLM's way to name the provider is documented, so taken (the input file decides it).
      const litellm = { input_file_id: file.id, ...chatCreate, custom_llm_provider: 'openai' }
      const batch = await api.batches.create(litellm as OpenAI.Batches.BatchCreateParams)
      const cancelWithBody = await fetch(`${mount.baseURL}/batches/${batch.id}/cancel`, {
        method: 'POST',
        headers: { ...auth(mount), 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'done' }),
      })
      expect(await answerOf(cancelWithBody), mount.label).toEqual(unrecognized('reason'))
      expect((await api.batches.cancel(batch.id)).status).toBe('cancelling')
    }

    const form = new FormData()
    form.append('purpose', 'batch')
    form.append('colour', 'red')
    form.append('file', new Blob([request('a')]), 'in.jsonl')
    const upload = await fetch(`${plain.baseURL}/files`, { method: 'POST', headers: auth(plain), body: form })
    expect(await answerOf(upload)).toEqual(unrecognized('colour'))
  })

  it("refuses a files list by a purpose that is not one of OpenAI's", async () => {
    const api = client(context().plain)
    const refused = await refusal(api.files.list({ purpose: 'batches' }))
    expect(refused).toEqual({
      status: 400,
      error: {
        message: expect.stringMatching(/^Invalid value for 'purpose': 'batches'. Supported values are: 'assistants',/),
        type: 'invalid_request_error',
        param: 'purpose',
        code: 'invalid_value',
      },
    })
    expect(Array.isArray((await api.files.list({ purpose: 'batch_output' })).data)).toBe(true)
    // OpenAI's purpose for files batchkit never holds: a valid filter that matches nothing.
    expect((await api.files.list({ purpose: 'fine-tune-results' })).data).toEqual([])
  })

  it('refuses a line of invalid UTF-8 by its number, storing nothing here or upstream', async () => {
    const { plain, fake } = context()
    const api = client(plain)
    const before = await fileIds(api)
    const upstreamBefore = fake.files.size
    // Line 1 is valid multi-byte UTF-8; line 2 holds a lone 0xff byte, which no UTF-8 text contains.
    const badLine = Buffer.from(request('b', 'bad * byte'))
    badLine[badLine.indexOf('*')] = 0xff
    const bytes = Buffer.concat([Buffer.from(request('a', 'données 日本')), badLine])
    const refused = await refusal(api.files.create({ file: await toFile(bytes, 'bad.jsonl'), purpose: 'batch' }))
    expect(refused).toEqual({
      status: 400,
      error: {
        message: 'Line 2 is not valid UTF-8; save the file as UTF-8.',
        type: 'invalid_request_error',
        param: 'file',
        code: 'invalid_json_line',
      },
    })
    expect(await fileIds(api)).toEqual(before)
    expect(fake.files.size).toBe(upstreamBefore)
  })

  it("keeps a client's x-request-id of a sane shape, and makes one for any other", async () => {
    const { plain } = context()
    const api = client(plain)
    const traced = 'trace-42.span:7_A'
    const { request_id } = await api.files.list({}, { headers: { 'x-request-id': traced } }).withResponse()
    expect(request_id).toBe(traced)
    const failed = await api.files.retrieve('file-missing', { headers: { 'x-request-id': traced } }).catch((e) => e)
    expect(failed).toBeInstanceOf(OpenAI.NotFoundError)
    expect(failed.requestID).toBe(traced)
    for (const sent of ['has space', 'a'.repeat(201), 'semi;colon', 'ünïcode']) {
      const response = await fetch(`${plain.baseURL}/files`, { headers: { ...auth(plain), 'x-request-id': sent } })
      expect(response.status).toBe(200)
      expect(response.headers.get('x-request-id'), sent).toMatch(/^req_[0-9a-f]{32}$/)
    }
    expect(
      (
        await fetch(`${plain.baseURL}/files`, { headers: { ...auth(plain), 'x-request-id': 'a'.repeat(200) } })
      ).headers.get('x-request-id'),
    ).toBe('a'.repeat(200))
  })

  it("answers malformed JSON with OpenAI's envelope, behind the host's body parser too, leaving the host's routes alone", async () => {
    const { plain, behindParser } = context()
    for (const mount of [plain, behindParser]) {
      for (const path of ['/batches', '/batches/batch_abc/cancel']) {
        const response = await fetch(mount.baseURL + path, {
          method: 'POST',
          headers: { ...auth(mount), 'content-type': 'application/json' },
          body: '{"input_file_id": ',
        })
        const where = `${mount.label} ${path}`
        expect(response.status, where).toBe(400)
        expect(response.headers.get('content-type'), where).toBe('application/json')
        expect(response.headers.get('x-request-id'), where).toMatch(/^req_[0-9a-f]{32}$/)
        expect(await response.json(), where).toEqual({
          error: { message: JSON_PARSE_MESSAGE, type: 'invalid_request_error', param: null, code: 'invalid_json' },
        })
      }
    }
    // The same body on a route of the host's own is the host's to answer, whatever it answers.
    const own = await fetch(`${behindParser.host.origin}/host-route`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"input_file_id": ',
    })
    expect(own.status).toBeGreaterThanOrEqual(400)
    expect(own.headers.get('x-request-id')).toBeNull()
  })

  // Behind a host's parser, the parser's own limit applies (and its 413 becomes this same error).
  it('answers a JSON body over 1 MiB that batchkit reads itself with 413 request_too_large, and goes on serving', async () => {
    const { plain } = context()
    const response = await fetch(`${plain.baseURL}/batches`, {
      method: 'POST',
      headers: { ...auth(plain), 'content-type': 'application/json' },
      body: JSON.stringify({
        input_file_id: 'file-abc',
        endpoint: '/v1/chat/completions',
        pad: 'x'.repeat(1024 * 1024),
      }),
    })
    expect(response.status).toBe(413)
    expect(await response.json()).toEqual({
      error: {
        message: 'The request body is larger than 1048576 bytes.',
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
      },
    })
    // The next call is served as usual: the refused body was neither kept nor left to stall the server.
    expect((await fetch(`${plain.baseURL}/batches`, { headers: auth(plain) })).status).toBe(200)
  })
}

/** An upload as curl sends it: the file part's Content-Disposition parameters given verbatim, as UTF-8. */
function rawUpload(mount: ApiMount, filenameParameter: string, content: string): Promise<Response> {
  const body = Buffer.from(
    '--wire\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n' +
      `--wire\r\nContent-Disposition: form-data; name="file"; ${filenameParameter}\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n${content}\r\n--wire--\r\n`,
    'utf8',
  )
  return fetch(`${mount.baseURL}/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${mount.apiKey}`, 'content-type': 'multipart/form-data; boundary=wire' },
    body,
  })
}

/** A raw response's status and the `error` object of its body. */
async function answerOf(response: Response): Promise<{ status: number; error: unknown }> {
  return { status: response.status, error: ((await response.json()) as { error: unknown }).error }
}

/** What the openai client reports of a refused call: the status and the `error` object of the body. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; error: unknown }> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!(error instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(error)}`)
  return { status: error.status as number, error: error.error }
}

async function fileIds(api: OpenAI): Promise<string[]> {
  return (await api.files.list()).data.map((file) => file.id).sort()
}
