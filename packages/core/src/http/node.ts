import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream'
import type { HttpHandler } from './handler.js'
import type { HttpRequest, HttpResult } from './types.js'

/** How a host mounted the API. */
export interface NodeMount {
  /** Where the API is mounted, such as `/v1`. */
  basePath: string
  /** The full original URL when the host rewrote `req.url` (Express's `originalUrl`). @default req.url */
  url?: string
  /** The host's parsed body, if any; used only when the host's parser has already read the stream. */
  parsedBody?: unknown
  /** The error the host's body parser failed with, if it did. */
  parseError?: unknown
}

/**
 * The core's request for a Node request; its signal aborts when the client goes away. The signal is
 * made when first read (most requests never read it): one read after the client left is aborted already.
 */
export function toHttpRequest(req: IncomingMessage, res: ServerResponse, mount: NodeMount): HttpRequest {
  return new NodeHttpRequest(req, res, mount)
}

/**
 * A class, not an object literal with a `get signal()`: made as such a literal, every request's objects
 * (reachable from the getter's closure) outlived V8's young generation until a full GC (seen on Node 20,
 * a Koa server at 10k req/s: 2 MB promoted per scavenge, scavenges 30 times longer).
 */
class NodeHttpRequest implements HttpRequest {
  readonly method: string
  readonly url: string
  readonly basePath: string
  readonly headers: IncomingMessage['headers']
  readonly body: IncomingMessage
  readonly parsedBody: unknown
  readonly parseError: unknown
  private aborter: AbortController | undefined
  private readonly res: ServerResponse

  constructor(req: IncomingMessage, res: ServerResponse, mount: NodeMount) {
    this.method = req.method ?? 'GET'
    this.url = mount.url ?? req.url ?? '/'
    this.basePath = mount.basePath
    this.headers = req.headers
    this.body = req
    this.parsedBody = req.readableEnded ? mount.parsedBody : undefined
    this.parseError = mount.parseError
    this.res = res
  }

  get signal(): AbortSignal {
    if (this.aborter) return this.aborter.signal
    const made = new AbortController()
    this.aborter = made
    const res = this.res
    const abortIfGone = () => {
      if (!res.writableFinished) made.abort()
    }
    if (res.closed) abortIfGone()
    else res.once('close', abortIfGone)
    return made.signal
  }
}

/**
 * The headers to send a result with. When the answer comes before the request body was read (a 401,
 * a 413, a bad line), they close the connection, and the rest of the body is let drain, so an
 * upload nobody needs is neither read into memory nor left to stall the socket.
 */
export function nodeResponseHeaders(req: IncomingMessage, result: HttpResult): Record<string, string> {
  if (req.complete) return result.headers
  req.resume()
  return { ...result.headers, connection: 'close' }
}

/**
 * Whether an error came from a body parser of the `body-parser` family (Express's and Nest's): they
 * tag theirs with a `type` such as `entity.parse.failed` or `entity.too.large`. Adapters hand only
 * these to the core as `parseError`; any other error belongs to the host, and must never be served.
 */
export function isBodyParserError(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type
  return (
    typeof type === 'string' &&
    (type.startsWith('entity.') || type === 'encoding.unsupported' || type === 'charset.unsupported')
  )
}

/**
 * Serves one request on Node's own request and response objects: the bridge Node hosts share
 * (plain `node:http`, Express, Nest). Resolves once the response is handed off.
 */
export async function serveNodeRequest(
  handler: HttpHandler,
  req: IncomingMessage,
  res: ServerResponse,
  mount: NodeMount,
): Promise<void> {
  const result = await handler.handle(toHttpRequest(req, res, mount))
  res.statusCode = result.status
  const headers = nodeResponseHeaders(req, result)
  for (const name in headers) res.setHeader(name, headers[name] as string)
  const body = result.body
  if (body === null || typeof body === 'string') res.end(body ?? undefined)
  else pipeline(body, res, () => undefined)
}
