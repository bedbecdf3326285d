import type { IncomingMessage } from 'node:http'
import { type BatchKit, nodeResponseHeaders, toHttpRequest } from '@batchkit/core'
import type { Context, Middleware } from 'koa'

/** Options of {@link createKoaMiddleware}. */
export interface KoaMiddlewareOptions {
  /** The path the API answers under, from the app's root; the OpenAI client's `baseURL` path. @default '' */
  prefix?: string
}

/** The batchkit middleware, with the hook that lets a body parser mounted before it hand over its errors. */
export interface BatchKitKoaMiddleware extends Middleware {
  /**
   * For a body parser that runs first: pass it as `@koa/bodyparser`'s `onError` (or `koa-bodyparser`'s
   * `onerror`). On the API's routes it keeps the parse error for batchkit, which answers it with
   * OpenAI's envelope (400 for malformed JSON, 413 for a body over the parser's limit); on any other
   * route it throws the error on, so the app answers it as it would without batchkit.
   */
  onBodyParserError(error: unknown, ctx: Context): void
}

/**
 * The batchkit API as Koa (2 or 3) middleware: `app.use(createKoaMiddleware(kit, { prefix: '/v1' }))`.
 * Requests outside the API go on to `next`. The request body is never touched before the core
 * streams it; a JSON body a body parser mounted earlier has read (`ctx.request.body`) is used as parsed.
 * Mount it before the app's body parser, or give the parser {@link BatchKitKoaMiddleware.onBodyParserError},
 * so malformed JSON sent to the API gets OpenAI's error too.
 */
export function createKoaMiddleware(kit: BatchKit, options: KoaMiddlewareOptions = {}): BatchKitKoaMiddleware {
  const basePath = options.prefix ?? ''
  const parseErrors = new WeakMap<IncomingMessage, unknown>()
  const isApiRoute = (ctx: Context) => kit.http.matches(ctx.method, ctx.originalUrl, basePath)

  const batchkit = async function batchkit(ctx: Context, next: () => Promise<unknown>) {
    const url = ctx.originalUrl
    if (!isApiRoute(ctx)) return next()
    const parsedBody = (ctx.request as { body?: unknown }).body
    const parseError = parseErrors.get(ctx.req)
    const result = await kit.http.handle(toHttpRequest(ctx.req, ctx.res, { basePath, url, parsedBody, parseError }))
    // Body first: Koa guesses a type and length from it, which the core's own headers then replace.
    ctx.body = result.body ?? ''
    ctx.status = result.status
    ctx.set(nodeResponseHeaders(ctx.req, result))
  } as BatchKitKoaMiddleware
  batchkit.onBodyParserError = (error, ctx) => {
    if (!isApiRoute(ctx)) throw error
    parseErrors.set(ctx.req, error)
  }
  return batchkit
}
