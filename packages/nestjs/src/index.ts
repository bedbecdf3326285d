import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type BatchKit,
  type BatchKitOptions,
  createBatchKit,
  isBodyParserError,
  serveNodeRequest,
} from '@batchkit/core'
import {
  ConfigurableModuleBuilder,
  Inject,
  type MiddlewareConsumer,
  Module,
  type NestModule,
  type OnApplicationShutdown,
  type OnModuleInit,
  RequestMethod,
  VERSION_NEUTRAL,
} from '@nestjs/common'
import { ApplicationConfig, HttpAdapterHost } from '@nestjs/core'

/** Options of {@link BatchKitModule}: the kit's own ({@link BatchKitOptions}) and where its API answers. */
export interface BatchKitModuleOptions extends BatchKitOptions {
  /** The API's path below Nest's global prefix; clients use origin + prefix + path as `baseURL`. @default '/v1' */
  path?: string
}

/** The injection token of the module's {@link BatchKit}. */
export const BATCH_KIT = Symbol.for('@batchkit/nestjs:BatchKit')

/** Injects the module's kit: `constructor(@InjectBatchKit() private readonly kit: BatchKit) {}`. */
export const InjectBatchKit = (): PropertyDecorator & ParameterDecorator => Inject(BATCH_KIT)

const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN, ASYNC_OPTIONS_TYPE, OPTIONS_TYPE } =
  new ConfigurableModuleBuilder<BatchKitModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal !== false }))
    .build()

/** What `BatchKitModule.forRoot` takes: the options, and `isGlobal` (default true: the kit is injectable app-wide). */
export type BatchKitModuleSyncOptions = typeof OPTIONS_TYPE
/** What `BatchKitModule.forRootAsync` takes: `imports`, and `useFactory` with `inject` (or `useClass`, `useExisting`). */
export type BatchKitModuleAsyncOptions = typeof ASYNC_OPTIONS_TYPE

/** Express's request, Fastify's raw request (`originalUrl` from @fastify/middie) or plain Node's. */
type HostRequest = IncomingMessage & { originalUrl?: string; body?: unknown }
type Next = (error?: unknown) => void
/** The kits the module built, and so closes; one provided in their place (`overrideProvider`) is its owner's. */
const built = new WeakSet<BatchKit>()

/**
 * The batchkit API in a Nest app (platform-express or platform-fastify): `BatchKitModule.forRoot({ providers,
 * authenticate })` or `forRootAsync({ imports, inject, useFactory })`. It serves the API at the global prefix
 * plus `path`, as middleware, so Nest guards, pipes and interceptors do not wrap it: authenticate with the
 * kit's `authenticate` hook. The kit is injectable ({@link InjectBatchKit}) and closed on shutdown.
 */
export class BatchKitModule extends ConfigurableModuleClass implements NestModule, OnModuleInit, OnApplicationShutdown {
  private basePath = ''

  constructor(
    private readonly kit: BatchKit,
    private readonly options: BatchKitModuleOptions,
    private readonly config: ApplicationConfig,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    super()
  }

  /** Mounts the API below the global prefix, ahead of the app's controllers. */
  configure(consumer: MiddlewareConsumer): void {
    const path = trimSlashes(this.options.path ?? '/v1')
    const base = [trimSlashes(this.config.getGlobalPrefix()), path].filter(Boolean).join('/')
    this.basePath = base && `/${base}`
    consumer
      .apply((req: HostRequest, res: ServerResponse, next: Next) => this.serve(req, res, next))
      .forRoutes({ path: `${path}/{*batchkit}`, method: RequestMethod.ALL, version: VERSION_NEUTRAL })
  }

  /**
   * On Express, Nest's body parsers run before all middleware, and their errors skip it: this error handler,
   * ahead of Nest's, answers a parser's error on the API's routes with OpenAI's. Any other error is left to
   * Nest, so a request another middleware failed is never served. Fastify parses after middleware.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter
    if (adapter?.getType() !== 'express') return
    adapter.use((error: unknown, req: HostRequest, res: ServerResponse, next: Next) =>
      isBodyParserError(error) ? this.serve(req, res, next, error) : next(error),
    )
  }

  /** Closes the provider connections of the kit it built; the store is the app's to close. */
  async onApplicationShutdown(): Promise<void> {
    if (built.has(this.kit)) await this.kit.close()
  }

  private serve(req: HostRequest, res: ServerResponse, next: Next, parseError?: unknown): void {
    const mount = { basePath: this.basePath, url: req.originalUrl ?? req.url ?? '/', parsedBody: req.body, parseError }
    if (!this.kit.http.matches(req.method ?? 'GET', mount.url, mount.basePath)) next(parseError)
    else serveNodeRequest(this.kit.http, req, res, mount).catch(next)
  }
}

// Nest's decorators, applied by call: the source needs no decorator compiler flag, so any transform
// (tsx, esbuild, SWC, tsc) loads it as it is, and no injection relies on emitted type metadata.
Module({
  providers: [{ provide: BATCH_KIT, inject: [MODULE_OPTIONS_TOKEN], useFactory: buildKit }],
  exports: [BATCH_KIT],
})(BatchKitModule)
for (const [index, token] of [BATCH_KIT, MODULE_OPTIONS_TOKEN, ApplicationConfig, HttpAdapterHost].entries()) {
  Inject(token)(BatchKitModule, undefined, index)
}

function buildKit({ path: _, ...options }: BatchKitModuleOptions): BatchKit {
  const kit = createBatchKit(options)
  built.add(kit)
  return kit
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '')
}
