import { existsSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { BatchKitOptions } from '@batchkit/core'
// Types only: erased, so no host's process loads Nest unless it is the NestJS host.
import type { MiddlewareConsumer } from '@nestjs/common'

/** A host's server, built but not yet listening. */
export interface HostedApi {
  server: Server
  /** Closes what the host built around the server (the kit's provider connections). */
  close(): Promise<void>
}

/**
 * A web framework batchkit is benchmarked on: one entry per adapter. `serve` builds a Node HTTP
 * server with the API mounted at `/v1`, the way the adapter's docs show; it runs in the host's child
 * process only, and imports the framework lazily. A host whose adapter package is missing shows as
 * "not built yet".
 */
export interface Host {
  /** As shown in the tables, such as `Express`. */
  name: string
  /** The adapter's folder, relative to the repository root. */
  adapterDir: string
  /** Absent until someone writes the entry for a new adapter. */
  serve?: (options: BatchKitOptions) => Promise<HostedApi>
  /**
   * The framework without batchkit, mounted where `serve` mounts the API: every request under `/v1` is answered
   * with what `answer` returns, the way its adapter answers with what the core returns. The bench's own handlers
   * (a fixed answer, the reference gateway) measured inside each host.
   */
  serveHandler?: (answer: BenchHandler) => Promise<HostedApi>
}

/** A request as a host hands it on: Node's, with the URL before any mount (`originalUrl`) and a body a host's parser read. */
export type HostRequest = IncomingMessage & { originalUrl?: string; body?: unknown }

/** A bench handler's answer: a status and a JSON text. */
export interface BenchAnswer {
  status: number
  body: string
}

/** A handler of the bench's own, as a host mounts it: what to answer a request with. */
export type BenchHandler = (req: HostRequest) => Promise<BenchAnswer>

/** Writes an answer as `serveNodeRequest` does on Node's response: status, headers one by one, `end`. */
function answerNode(res: ServerResponse, { status, body }: BenchAnswer): void {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
}

/** A Node middleware answering as the Express and NestJS adapters do, on Node's response, or passing a failure to `next`. */
export function nodeMiddleware(answer: BenchHandler) {
  return (req: HostRequest, res: ServerResponse, next: (error?: unknown) => void) => {
    answer(req).then((result) => answerNode(res, result), next)
  }
}

/** Every host, in table order. */
export const HOSTS: Host[] = [
  {
    name: 'Express',
    adapterDir: 'packages/express',
    async serve(options) {
      const [{ default: express }, { createExpressRouter }, { createBatchKit }] = await Promise.all([
        import('express'),
        import('@batchkit/express'),
        import('@batchkit/core'),
      ])
      const kit = createBatchKit(options)
      const app = express()
      app.use('/v1', createExpressRouter(kit))
      return { server: createServer(app), close: () => kit.close() }
    },
    async serveHandler(answer) {
      const { default: express } = await import('express')
      const app = express()
      app.use('/v1', nodeMiddleware(answer))
      return { server: createServer(app), close: async () => undefined }
    },
  },
  {
    name: 'Koa',
    adapterDir: 'packages/koa',
    async serve(options) {
      const [{ default: Koa }, { createKoaMiddleware }, { createBatchKit }] = await Promise.all([
        import('koa'),
        import('@batchkit/koa'),
        import('@batchkit/core'),
      ])
      const kit = createBatchKit(options)
      const app = new Koa()
      app.use(createKoaMiddleware(kit, { prefix: '/v1' }))
      return { server: createServer(app.callback()), close: () => kit.close() }
    },
    async serveHandler(answer) {
      const { default: Koa } = await import('koa')
      const app = new Koa()
      // As the adapter answers: through Koa's own body, status and headers.
      app.use(async (ctx, next) => {
        if (!ctx.path.startsWith('/v1/')) return next()
        const result = await answer(ctx.req)
        ctx.body = result.body
        ctx.status = result.status
        ctx.set({ 'content-type': 'application/json' })
      })
      return { server: createServer(app.callback()), close: async () => undefined }
    },
  },
  {
    name: 'NestJS',
    adapterDir: 'packages/nestjs',
    async serve(options) {
      await import('reflect-metadata')
      const [{ Module }, { NestFactory }, { BatchKitModule }] = await Promise.all([
        import('@nestjs/common'),
        import('@nestjs/core'),
        import('@batchkit/nestjs'),
      ])
      // `@Module({ imports })` on an empty class: a Nest app (platform-express, its defaults) with only batchkit.
      class AppModule {}
      Module({ imports: [BatchKitModule.forRoot({ ...options, path: '/v1' })] })(AppModule)
      const app = await NestFactory.create(AppModule, { logger: ['error'] })
      await app.init()
      return { server: app.getHttpServer() as Server, close: () => app.close() }
    },
    async serveHandler(answer) {
      await import('reflect-metadata')
      const [{ Module, RequestMethod }, { NestFactory }] = await Promise.all([
        import('@nestjs/common'),
        import('@nestjs/core'),
      ])
      // A module that applies one middleware to `v1/{*rest}`, as BatchKitModule does (its defaults: platform-express, body parsers on).
      class HandlerModule {
        configure(consumer: MiddlewareConsumer) {
          consumer.apply(nodeMiddleware(answer)).forRoutes({ path: 'v1/{*rest}', method: RequestMethod.ALL })
        }
      }
      Module({})(HandlerModule)
      const app = await NestFactory.create(HandlerModule, { logger: ['error'] })
      await app.init()
      return { server: app.getHttpServer() as Server, close: () => app.close() }
    },
  },
]

/** The repository root. */
export const REPO_ROOT = new URL('../../../', import.meta.url)

/** Why a host cannot be measured in this checkout, or undefined when it can. */
export function unavailable(host: Host): string | undefined {
  if (!existsSync(new URL(`${host.adapterDir}/src/index.ts`, REPO_ROOT))) return 'not built yet'
  if (!host.serve) return 'no bench entry yet'
  return undefined
}

/** The host called `name` (case-insensitive). */
export function hostNamed(name: string): Host {
  const host = HOSTS.find((h) => h.name.toLowerCase() === name.toLowerCase())
  if (!host) throw new Error(`unknown host '${name}'; known: ${HOSTS.map((h) => h.name).join(', ')}`)
  return host
}
