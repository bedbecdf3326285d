import type { IncomingMessage, ServerResponse } from 'node:http'
import { type BatchKit, serveNodeRequest } from '@batchkit/core'

/** The parts of Express's request this adapter reads; Express 4 and 5 both provide them. */
interface ExpressRequest extends IncomingMessage {
  baseUrl?: string
  originalUrl?: string
  body?: unknown
}

/** An Express middleware: `app.use('/v1', createExpressRouter(kit))`. */
export type BatchKitRouter = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void

/**
 * Mounts the batchkit API in Express 4 or 5. Requests outside the API go to `next`; the request
 * body is never touched before the core streams it, and a JSON body that `express.json()` has
 * already read is used as it parsed it.
 */
export function createExpressRouter(kit: BatchKit): BatchKitRouter {
  return function batchkitRouter(request, res, next) {
    const req = request as ExpressRequest
    const url = req.originalUrl ?? req.url ?? '/'
    const basePath = req.baseUrl ?? ''
    if (!kit.http.matches(req.method ?? 'GET', url, basePath)) return next()
    serveNodeRequest(kit.http, req, res, { basePath, url, parsedBody: req.body }).catch(next)
  }
}
