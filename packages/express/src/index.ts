import type { IncomingMessage } from 'node:http'
import { type BatchKit, isBodyParserError, type NodeMount, serveNodeRequest } from '@batchkit/core'
import type { ErrorRequestHandler, RequestHandler } from 'express'

/** The parts of Express's request this adapter reads; Express 4 and 5 both provide them. */
interface ExpressRequest extends IncomingMessage {
  baseUrl: string
  originalUrl: string
  body?: unknown
}

/**
 * The API as Express middleware: a request handler, and an error handler that Express calls instead
 * when a body parser mounted earlier failed. `app.use` takes the pair as it is.
 */
export type BatchKitRouter = [RequestHandler, ErrorRequestHandler]

/**
 * Mounts the batchkit API in Express 4 or 5: `app.use('/v1', createExpressRouter(kit))`.
 * Requests outside the API go on to the app's next handler. The request body is never touched
 * before the core streams it; a JSON body that `express.json()` already read is used as parsed,
 * and its parse errors on the API's routes become OpenAI error responses. Errors of other
 * middleware pass on untouched: a request another middleware failed is never served.
 */
export function createExpressRouter(kit: BatchKit): BatchKitRouter {
  const serve = (
    request: IncomingMessage,
    res: Parameters<RequestHandler>[1],
    next: (e?: unknown) => void,
    parseError?: unknown,
  ) => {
    const req = request as ExpressRequest
    const mount: NodeMount = { basePath: req.baseUrl, url: req.originalUrl, parsedBody: req.body, parseError }
    if (!kit.http.matches(req.method ?? 'GET', mount.url as string, mount.basePath)) return next(parseError)
    serveNodeRequest(kit.http, req, res, mount).catch(next)
  }
  const batchkit: RequestHandler = (req, res, next) => serve(req, res, next)
  // Only a body parser's error is the API's to answer; any other (say, an auth middleware's) is the app's.
  const batchkitBodyParserErrors: ErrorRequestHandler = (error, req, res, next) =>
    isBodyParserError(error) ? serve(req, res, next, error) : next(error)
  return [batchkit, batchkitBodyParserErrors]
}
