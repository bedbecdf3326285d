import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { ApiError } from '../errors.js'
import type { HttpRequest } from './types.js'

const MAX_JSON_BYTES = 1024 * 1024

/** True when the content type is JSON, or absent (OpenAI's clients send none on bodyless POSTs). */
export function isJsonOrAbsent(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type']
  if (type === undefined || type === '') return true
  return /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)
}

/** A JSON request body: the host's parse if one ran, else read here (at most 1 MiB). */
export async function readJsonBody(body: Readable, parsedBody: unknown, parseError: unknown): Promise<unknown> {
  if (parseError !== undefined) {
    const status = (parseError as { status?: unknown } | null)?.status
    throw status === 413 ? tooLarge() : invalidJson()
  }
  if (parsedBody !== undefined) return parsedBody
  const text = await readText(body)
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    throw invalidJson()
  }
}

/** A request's JSON body that must be an object; an empty body is `{}`. */
export async function readJsonObject(request: HttpRequest): Promise<Record<string, unknown>> {
  const body = await readJsonBody(request.body, request.parsedBody, request.parseError)
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'The request body must be a JSON object.', { code: 'invalid_type' })
  }
  return body as Record<string, unknown>
}

/**
 * A body of at most {@link MAX_JSON_BYTES}, as UTF-8 text. Read with listeners rather than an async
 * iterator, which adds its own promises and end-of-stream watcher to every request; past the limit it
 * stops reading and leaves the rest to the response (see `nodeResponseHeaders`).
 */
function readText(body: Readable): Promise<string> {
  if (body.readableEnded) return Promise.resolve('')
  // Its `close` has been and gone: listening for it would wait forever.
  if (body.destroyed) return Promise.reject(incomplete())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const settle = (error: Error | undefined) => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', settle)
      body.off('close', onClose)
      if (error) reject(error)
      else resolve(Buffer.concat(chunks, size).toString('utf8'))
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_JSON_BYTES) settle(tooLarge())
      else chunks.push(chunk)
    }
    const onEnd = () => settle(undefined)
    // Closed before its end: the client went away mid-body.
    const onClose = () => settle(incomplete())
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', settle)
    body.once('close', onClose)
  })
}

function incomplete(): Error {
  return new Error('The request body ended before it was complete.')
}

function tooLarge(): ApiError {
  return new ApiError(413, `The request body is larger than ${MAX_JSON_BYTES} bytes.`, { code: 'request_too_large' })
}

function invalidJson(): ApiError {
  return new ApiError(
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    { code: 'invalid_json' },
  )
}
