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
   * The framework alone, mounted where `serve` mounts the API and answering the way its adapter does,
   * with the JSON text `body` to every request under `/v1`: what the host costs per request before
   * batchkit does anything.
   */
  serveAlone?: (body: string) => Promise<HostedApi>
}

/** Answers `body` as `serveNodeRequest` answers on Node's response: status, headers one by one, `end`. */
function answerNode(req: IncomingMessage, res: ServerResponse, body: string): void {
  req.resume()
  res.statusCode = 200
  res.setHeader('content-type', 'application/json')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
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
    async serveAlone(body) {
      const { default: express } = await import('express')
      const app = express()
      app.use('/v1', (req, res) => answerNode(req, res, body))
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
    async serveAlone(body) {
      const { default: Koa } = await import('koa')
      const app = new Koa()
      // As the adapter answers: through Koa's own body, status and headers.
      app.use(async (ctx, next) => {
        if (!ctx.path.startsWith('/v1/')) return next()
        ctx.req.resume()
        ctx.body = body
        ctx.status = 200
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
    async serveAlone(body) {
      await import('reflect-metadata')
      const [{ Module, RequestMethod }, { NestFactory }] = await Promise.all([
        import('@nestjs/common'),
        import('@nestjs/core'),
      ])
      // A module that applies one middleware to `v1/{*rest}`, as BatchKitModule does (its defaults: platform-express, body parsers on).
      class AloneModule {
        configure(consumer: MiddlewareConsumer) {
          consumer
            .apply((req: IncomingMessage, res: ServerResponse) => answerNode(req, res, body))
            .forRoutes({ path: 'v1/{*rest}', method: RequestMethod.ALL })
        }
      }
      Module({})(AloneModule)
      const app = await NestFactory.create(AloneModule, { logger: ['error'] })
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
