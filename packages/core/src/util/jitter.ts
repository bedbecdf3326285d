/** How far a jittered delay may stray from the one asked for, either way. */
const SPREAD = 0.2

/**
 * A retry or poll delay spread by up to 20% either way, so that the retries of many batches, events
 * or instances that failed together do not all come back at the same moment.
 */
export function jitter(delayMs: number): number {
  return Math.round(delayMs * (1 - SPREAD + 2 * SPREAD * Math.random()))
}
