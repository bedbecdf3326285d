import { ApiError, isApiError } from '../errors.js'

/** How long one store operation may take when the kit is not told otherwise. */
export const DEFAULT_STORE_TIMEOUT_MS = 3000

/** The 503 every store failure becomes: the caller may retry, and nothing is claimed missing. */
export function storeUnavailable(): ApiError {
  return new ApiError(503, 'The store behind this API is unavailable; try again later.', { code: 'store_unavailable' })
}

/** A store operation that did not settle in time; it may still complete later. */
export class StoreTimeoutError extends Error {
  constructor(context: string, timeoutMs: number) {
    super(`the store did not answer within ${timeoutMs} ms while ${context}`)
    this.name = 'StoreTimeoutError'
  }
}

/**
 * Whether a key or list name can reach every store. PostgreSQL refuses NUL in text, so a name with
 * one is never written, and reading it finds nothing without asking the store.
 */
export function storable(name: string): boolean {
  return !name.includes('\u0000')
}

/**
 * Bounds and classifies store operations: each one settles within `timeoutMs`, and any failure
 * (an adapter error, a refused connection, a timeout) is reported once and surfaces as a 503
 * `store_unavailable`, never as an empty answer.
 */
export class StoreGuard {
  constructor(
    readonly timeoutMs: number,
    private readonly reportError: (error: unknown, context: string) => void,
  ) {}

  async run<T>(context: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(operation(), this.timeoutMs, context)
    } catch (error) {
      // Already classified by a guard further in (an index or lease call inside a record operation).
      if (isApiError(error)) throw error
      this.reportError(error, context)
      throw storeUnavailable()
    }
  }
}

function withTimeout<T>(operation: Promise<T>, timeoutMs: number, context: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreTimeoutError(context, timeoutMs)), timeoutMs)
    // A late failure of an operation that already timed out has been reported as the timeout.
    operation.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
