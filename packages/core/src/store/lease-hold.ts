import { holdToken, type LeaseStore } from './leases.js'

/** A lease this instance holds and keeps renewing until it lets go. */
export interface LeaseHold {
  /** Stops renewing and gives the lease up; safe to call twice. */
  release(): Promise<void>
}

/**
 * Takes `key` for `holder` and renews it every third of `ttlMs` while the work under it runs (an
 * upload can outlast any fixed lease); undefined when another holder has it. If this process dies,
 * renewals stop and the lease expires, so another instance can finish or undo the work.
 */
export async function holdLease(
  leases: LeaseStore,
  key: string,
  holder: string,
  ttlMs: number,
  onError: (error: unknown) => void,
): Promise<LeaseHold | undefined> {
  // Two requests in one process exclude each other as two instances do.
  const token = holdToken(holder)
  if (!(await leases.acquire(key, token, ttlMs))) return undefined
  const timer = setInterval(() => {
    leases.acquire(key, token, ttlMs).catch(onError)
  }, ttlMs / 3)
  timer.unref()
  let released: Promise<void> | undefined
  return {
    release() {
      clearInterval(timer)
      released ??= leases.release(key, token).catch(onError)
      return released
    },
  }
}
