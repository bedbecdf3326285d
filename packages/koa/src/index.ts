import { type BatchKit, nodeResponseHeaders, toHttpRequest } from '@batchkit/core'
import type { Middleware } from 'koa'

/** Options of {@link createKoaMiddleware}. */
export interface KoaMiddlewareOptions {
  /** The path the API answers under, from the app's root; the OpenAI client's `baseURL` path. @default '' */
  prefix?: string
}

/**
 * The batchkit API as Koa (2 or 3) middleware: `app.use(createKoaMiddleware(kit, { prefix: '/v1' }))`.
 * Requests outside the API go on to `next`. The request body is never touched before the core
 * streams it; a JSON body a body parser mounted earlier has read (`ctx.request.body`) is used as parsed.
 */
export function createKoaMiddleware(kit: BatchKit, options: KoaMiddlewareOptions = {}): Middleware {
  const basePath = options.prefix ?? ''
  return async function batchkit(ctx, next) {
    const url = ctx.originalUrl
    if (!kit.http.matches(ctx.method, url, basePath)) return next()
    const parsedBody = (ctx.request as { body?: unknown }).body
    const result = await kit.http.handle(toHttpRequest(ctx.req, ctx.res, { basePath, url, parsedBody }))
    // Body first: Koa guesses a type and length from it, which the core's own headers then replace.
    ctx.body = result.body ?? ''
    ctx.status = result.status
    ctx.set(nodeResponseHeaders(ctx.req, result))
  }
}
