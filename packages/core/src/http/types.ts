import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'

/** A request as an adapter hands it to the core: Node streams, no framework types. */
export interface HttpRequest {
  method: string
  /** The full original URL, path and query, as the client sent it; never rewritten by the host. */
  url: string
  /** Where the API is mounted, such as `/v1`; `''` at the root. */
  basePath: string
  headers: IncomingHttpHeaders
  /** The untouched request body. */
  body: Readable
  /** The host's already-parsed JSON body, when a body parser ran before the core. */
  parsedBody?: unknown
  /** The error the host's body parser failed with, when it ran first and failed (say on malformed JSON). */
  parseError?: unknown
  /** Aborted when the client goes away. */
  signal?: AbortSignal
}

/** What the core answers; the adapter writes it out and pipes a stream body with backpressure. */
export interface HttpResult {
  status: number
  headers: Record<string, string>
  body: string | Readable | null
}
