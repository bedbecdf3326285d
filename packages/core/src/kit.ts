import { Keyv } from 'keyv'
import type { Authenticate } from './auth/api-keys.js'
import { BatchService } from './batches/service.js'
import { type ErrorReporter, FileService } from './files/service.js'
import { DEFAULT_UPLOAD_LIMITS, type UploadLimits } from './files/upload-limits.js'
import { createHttpHandler, type HttpHandler } from './http/handler.js'
import { ProviderRegistry } from './providers/registry.js'
import type { Provider } from './providers/types.js'
import { createIndexFor } from './store/create-index.js'
import type { OrderedIndex } from './store/ordered-index.js'
import { RecordStore } from './store/records.js'

/** Options of {@link createBatchKit}. */
export interface BatchKitOptions {
  /**
   * Where records live: any Keyv instance, best one of its own. batchkit sets its `throwOnErrors`,
   * so a store outage is a 503 rather than a false "not found". @default an in-memory Keyv (lost on restart)
   */
  store?: Keyv
  /** The upstream services by name, such as `{ openai: openai({ apiKey }) }`. */
  providers: Record<string, Provider>
  /** The provider for uploads when several are configured. @default the first */
  defaultProvider?: string
  /** Decides who is calling. @default none: every call shares the owner `default` */
  authenticate?: Authenticate
  /** Upload limits. @default OpenAI's: 200 MB and 50,000 requests per batch file, 512 MB per other file */
  limits?: Partial<UploadLimits>
  /** Told about failures no caller can be shown, such as a failed clean-up. @default a line on stderr */
  onError?: ErrorReporter
  /** The ordered index for lists. @default chosen to fit the store (Redis sorted sets, a PostgreSQL table, or memory) */
  index?: OrderedIndex
}

/** An OpenAI-compatible Files and Batches API: typed services for server code, and an HTTP handler for adapters. */
export interface BatchKit {
  /** Files of a principal: `create`, `retrieve`, `list`, `delete`, `content`. */
  readonly files: FileService
  /** Batches of a principal: `create`, `retrieve`, `list`, `cancel`. */
  readonly batches: BatchService
  /** The wire format, for adapters. */
  readonly http: HttpHandler
  /** Whether an `authenticate` hook is configured; without one every caller shares one owner. */
  readonly authenticated: boolean
  /** Whether several server instances may share this kit's store (Redis or PostgreSQL). */
  readonly multiInstanceSafe: boolean
  /** Closes provider connections; safe to call more than once. The store is the caller's to close. */
  close(): Promise<void>
}

/** Creates the API over a store and providers; mount `kit.http` with an adapter, or call the services directly. */
export function createBatchKit(options: BatchKitOptions): BatchKit {
  const keyv = options.store ?? new Keyv()
  // Keyv swallows store errors by default, which would turn a store outage into "not found".
  keyv.throwOnErrors = true
  const index = options.index ?? createIndexFor(keyv)
  const reportError: ErrorReporter = options.onError ?? defaultReporter
  const store = new RecordStore(keyv, index, reportError)
  const providers = new ProviderRegistry(options.providers, options.defaultProvider)
  const files = new FileService(store, providers, { ...DEFAULT_UPLOAD_LIMITS, ...options.limits }, reportError)
  const batches = new BatchService(store, providers, reportError)
  return {
    files,
    batches,
    http: createHttpHandler({ files, batches, authenticate: options.authenticate, reportError }),
    authenticated: options.authenticate !== undefined,
    multiInstanceSafe: index.shared,
    close: once(() => providers.close()),
  }
}

function defaultReporter(error: unknown, context: string): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  process.stderr.write(`[batchkit] error while ${context}: ${message}\n`)
}

/** A function that runs `fn` the first time and returns that same promise after, so closing twice is harmless. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined
  return () => {
    result ??= fn()
    return result
  }
}
