import type { IncomingHttpHeaders } from 'node:http'
import { newRequestId } from '../ids.js'

/**
 * The shape of a client's `x-request-id` that batchkit keeps: 1 to 200 letters, digits and `._:-`.
 * That covers UUIDs, OpenAI's `req_…` ids and common trace ids, and keeps anything that could
 * forge a log line or a header (spaces, commas from repeated headers, control characters) out.
 */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/

/** The response's `x-request-id`: the client's own, when of a sane shape, else a new `req_…` id. */
export function requestIdFor(headers: IncomingHttpHeaders): string {
  const sent = headers['x-request-id']
  return typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : newRequestId()
}
