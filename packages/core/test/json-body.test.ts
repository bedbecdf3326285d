import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { isApiError } from '../src/errors.js'
import { readJsonBody } from '../src/http/json-body.js'

/** A body that arrives in `pieces`, one per read. */
function streamOf(...pieces: string[]): Readable {
  return Readable.from(pieces.map((piece) => Buffer.from(piece)))
}

describe('readJsonBody, reading the body itself', () => {
  it('parses a body that arrives in pieces, a multi-byte character split between two', async () => {
    const euro = Buffer.from('{"note":"5 €"}')
    const cut = euro.indexOf(0xe2) + 1
    const body = Readable.from([euro.subarray(0, cut), euro.subarray(cut)])
    expect(await readJsonBody(body, undefined, undefined)).toEqual({ note: '5 €' })
  })

  it('reads an empty body as {} and a body already read to its end as {}', async () => {
    expect(await readJsonBody(streamOf(), undefined, undefined)).toEqual({})
    const read = streamOf('{"a":1}')
    read.resume()
    await new Promise((resolve) => read.once('end', resolve))
    expect(await readJsonBody(read, undefined, undefined)).toEqual({})
  })

  it('refuses a body over 1 MiB with 413 request_too_large', async () => {
    const body = streamOf('{"pad":"', 'x'.repeat(1024 * 1024), '"}')
    const error = await readJsonBody(body, undefined, undefined).catch((e: unknown) => e)
    expect(isApiError(error) && { status: error.status, code: error.code }).toEqual({
      status: 413,
      code: 'request_too_large',
    })
  })

  it('fails, rather than waits, for a body cut off mid-way or destroyed before it was read', async () => {
    const cut = new Readable({ read() {} })
    cut.push('{"input_file_id":')
    const reading = readJsonBody(cut, undefined, undefined)
    cut.destroy()
    await expect(reading).rejects.toThrow('The request body ended before it was complete.')

    const gone = new Readable({ read() {} })
    gone.destroy()
    await new Promise((resolve) => gone.once('close', resolve))
    await expect(readJsonBody(gone, undefined, undefined)).rejects.toThrow(
      'The request body ended before it was complete.',
    )
  })

  it('uses what a host parser read, and answers its parse errors as OpenAI does', async () => {
    expect(await readJsonBody(streamOf(), { a: 1 }, undefined)).toEqual({ a: 1 })
    const malformed = await readJsonBody(streamOf(), undefined, new SyntaxError('bad')).catch((e: unknown) => e)
    expect(isApiError(malformed) && malformed.code).toBe('invalid_json')
    const tooBig = await readJsonBody(streamOf(), undefined, { status: 413 }).catch((e: unknown) => e)
    expect(isApiError(tooBig) && tooBig.code).toBe('request_too_large')
  })
})
