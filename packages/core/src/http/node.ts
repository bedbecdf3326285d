import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream'
import type { HttpHandler } from './handler.js'
import type { HttpResult } from './types.js'

/** How a host mounted the API, for {@link serveNodeRequest}. */
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
 * Serves one request on Node's own request and response objects: the bridge every Node host
 * (plain `node:http`, Express, Koa, Nest) shares. Resolves once the response is handed off.
 */
export async function serveNodeRequest(
  handler: HttpHandler,
  req: IncomingMessage,
  res: ServerResponse,
  mount: NodeMount,
): Promise<void> {
  const aborter = new AbortController()
  const onClose = () => {
    if (!res.writableFinished) aborter.abort()
  }
  res.once('close', onClose)
  const result = await handler.handle({
    method: req.method ?? 'GET',
    url: mount.url ?? req.url ?? '/',
    basePath: mount.basePath,
    headers: req.headers,
    body: req,
    parsedBody: req.readableEnded ? mount.parsedBody : undefined,
    parseError: mount.parseError,
    signal: aborter.signal,
  })
  writeNodeResponse(req, res, result)
}

/** Writes a result out, piping a stream body with backpressure. */
export function writeNodeResponse(req: IncomingMessage, res: ServerResponse, result: HttpResult): void {
  const headers = { ...result.headers }
  // An answer given before the body was read (401, 413, a bad line): close the connection rather
  // than keep reading an upload nobody needs.
  if (!req.complete) headers.connection = 'close'
  res.writeHead(result.status, headers)
  const body = result.body
  if (body === null || typeof body === 'string') {
    res.end(body ?? undefined)
  } else {
    pipeline(body, res, () => undefined)
  }
  if (!req.complete) req.resume()
}
