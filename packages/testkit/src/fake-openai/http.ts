import type { IncomingMessage, ServerResponse } from 'node:http'
import { readJsonRequest } from '../loopback.js'
import { ApiError, integerOutOfRange, unparseableJson } from './errors.js'

/** Sends a JSON body with OpenAI's content type. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  })
  res.end(payload)
}

/** Sends an {@link ApiError} in OpenAI's envelope, unless the client is already gone. */
export function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent || res.destroyed) return
  sendJson(res, error.status, error.toBody())
}

/** Reads and parses a JSON request body; an empty body is `{}`. */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return readJsonRequest(req, {
    tooLarge: () => new ApiError(413, 'Request body too large.'),
    unparseable: unparseableJson,
  })
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Items after the `after` cursor, at most `limit`, in OpenAI's list envelope with an honest `has_more`. */
export function paginate<T extends { id: string }>(
  items: readonly T[],
  after: string | undefined,
  limit: number,
): { object: 'list'; data: T[]; first_id: string | null; last_id: string | null; has_more: boolean } {
  let start = 0
  if (after !== undefined) {
    const index = items.findIndex((item) => item.id === after)
    // An unknown cursor has no position to continue from.
    start = index === -1 ? items.length : index + 1
  }
  const data = items.slice(start, start + limit)
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  }
}

/** Parses an optional integer query parameter, with OpenAI's errors for bad types and ranges. */
export function integerQuery(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name)
  if (raw === null) return fallback
  if (!/^-?\d+$/.test(raw)) {
    throw new ApiError(
      400,
      `Invalid type for '${name}': expected an integer, but got a string instead.`,
      'invalid_request_error',
      name,
      'invalid_type',
    )
  }
  const value = Number(raw)
  if (value < min || value > max) throw integerOutOfRange(name, value, min, max)
  return value
}
