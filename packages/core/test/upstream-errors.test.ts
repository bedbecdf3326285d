import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/errors.js'
import { connectionError, refusedUpstream, upstreamErrorOf } from '../src/providers/upstream-errors.js'

/**
 * What a client is told when the provider fails, and whether batchkit may treat a failed create as one
 * the provider never carried out: the status and code in OpenAI's envelope, the headers that tell
 * OpenAI's SDK whether to retry, and the `retry-after` a client waits for.
 */

const failure = (statusCode: number, headers: Record<string, string> = {}, code: string | null = null) => ({
  statusCode,
  headers,
  code,
})

/** The parts of an error a client sees: status, body fields and extra headers. */
const seen = (error: ApiError) => ({
  status: error.status,
  type: error.type,
  code: error.code,
  message: error.message,
  headers: error.headers,
})

describe('upstreamErrorOf', () => {
  it('tells the client what happened upstream, in words that name no provider id, with the right status and code', () => {
    const noRetry = { 'x-should-retry': 'false' }
    const cases: Array<[number, string | null, ReturnType<typeof seen>]> = [
      [
        404,
        null,
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_not_found',
          message: 'The azure provider no longer has this object.',
          headers: noRetry,
        },
      ],
      [
        429,
        null,
        {
          status: 503,
          type: 'server_error',
          code: 'upstream_rate_limited',
          message: 'The azure provider is rate limiting batchkit; try again later.',
          headers: {},
        },
      ],
      [
        503,
        null,
        {
          status: 503,
          type: 'server_error',
          code: 'upstream_unavailable',
          message: 'The azure provider is unavailable; try again later.',
          headers: {},
        },
      ],
      ...[401, 403].map((status): [number, null, ReturnType<typeof seen>] => [
        status,
        null,
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_auth_failed',
          message: "The azure provider rejected batchkit's credentials; check the provider configuration.",
          headers: noRetry,
        },
      ]),
      [
        409,
        null,
        {
          status: 409,
          type: 'invalid_request_error',
          code: 'upstream_conflict',
          message: "The azure provider refused the change in the object's current state.",
          headers: noRetry,
        },
      ],
      [
        400,
        'invalid_request_error',
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_rejected',
          message: 'The azure provider refused the request: 400 (invalid_request_error).',
          headers: noRetry,
        },
      ],
      [
        500,
        null,
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_error',
          message: 'The azure provider answered 500.',
          headers: {},
        },
      ],
      [
        500,
        'server_error',
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_error',
          message: 'The azure provider answered 500 (server_error).',
          headers: {},
        },
      ],
      // A redirect or other answer below 400 is no refusal: nothing says the request was read.
      [
        302,
        null,
        {
          status: 502,
          type: 'server_error',
          code: 'upstream_error',
          message: 'The azure provider answered 302.',
          headers: {},
        },
      ],
    ]
    for (const [status, code, expected] of cases) {
      expect(seen(upstreamErrorOf('azure', failure(status, {}, code)))).toEqual(expected)
    }
    expect(seen(connectionError('azure', { code: 'ECONNRESET' }))).toEqual({
      status: 502,
      type: 'server_error',
      code: 'upstream_unreachable',
      message: 'The azure provider could not be reached.',
      headers: {},
    })
  })

  it('answers a timeout upstream with 504 upstream_timeout', () => {
    for (const status of [408, 504]) {
      expect(seen(upstreamErrorOf('openai', failure(status)))).toEqual({
        status: 504,
        type: 'server_error',
        code: 'upstream_timeout',
        message: 'The openai provider did not answer in time.',
        headers: {},
      })
    }
  })

  it('passes on a retry-after of whole seconds, and nothing else', () => {
    const after = (value: string) => upstreamErrorOf('azure', failure(429, { 'retry-after': value })).headers
    expect(after('7')).toEqual({ 'retry-after': '7' })
    expect(after('120')).toEqual({ 'retry-after': '120' })
    expect(after('99999')).toEqual({ 'retry-after': '99999' })
    for (const bad of ['', '123456', 'x120', '120x', '1.5', 'Wed, 21 Oct 2026 07:28:00 GMT']) {
      expect(after(bad)).toEqual({})
    }
    expect(upstreamErrorOf('vertex', failure(503, { 'retry-after': '30' })).headers).toEqual({ 'retry-after': '30' })
  })

  it('keeps a 409 with the provider’s code, or upstream_conflict without one, never to be retried', () => {
    expect(seen(upstreamErrorOf('openai', failure(409, {}, 'batch_expired')))).toMatchObject({
      status: 409,
      code: 'batch_expired',
      headers: { 'x-should-retry': 'false' },
    })
    expect(seen(upstreamErrorOf('openai', failure(409)))).toMatchObject({
      status: 409,
      code: 'upstream_conflict',
      headers: { 'x-should-retry': 'false' },
    })
  })
})

describe('connectionError', () => {
  it('answers a request whose headers or body never came, or that was aborted by a timeout, with 504', () => {
    const timeouts = [{ code: 'UND_ERR_HEADERS_TIMEOUT' }, { code: 'UND_ERR_BODY_TIMEOUT' }, { name: 'TimeoutError' }]
    for (const error of timeouts) {
      expect(seen(connectionError('openai', error))).toMatchObject({ status: 504, code: 'upstream_timeout' })
    }
  })

  it('answers any other failure to reach the provider with 502 upstream_unreachable', () => {
    for (const error of [{ code: 'ECONNRESET' }, { name: 'Error' }, new Error('socket hang up'), null, 'boom']) {
      expect(seen(connectionError('openai', error))).toMatchObject({ status: 502, code: 'upstream_unreachable' })
    }
  })
})

describe('refusedUpstream', () => {
  it('counts answers that refused a create outright as refusals: the provider made nothing', () => {
    const refusals = [
      upstreamErrorOf('openai', failure(429)),
      upstreamErrorOf('openai', failure(503)),
      upstreamErrorOf('openai', failure(401)),
      upstreamErrorOf('openai', failure(404)),
      upstreamErrorOf('openai', failure(409)),
      new ApiError(400, 'bad line', { code: 'invalid_request' }),
      new ApiError(499, 'client went away'),
    ]
    for (const error of refusals) expect(refusedUpstream(error)).toBe(true)
  })

  it('does not count a timeout, a cut connection or a provider error as a refusal: the create may have happened', () => {
    const unknown = [
      upstreamErrorOf('openai', failure(504)),
      upstreamErrorOf('openai', failure(500)),
      upstreamErrorOf('openai', failure(502)),
      connectionError('openai', { code: 'ECONNRESET' }),
      new ApiError(500, 'no code'),
      new Error('not an API error'),
      undefined,
    ]
    for (const error of unknown) expect(refusedUpstream(error)).toBe(false)
  })
})
