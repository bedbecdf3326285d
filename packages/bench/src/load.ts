import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import { callJson } from './client.js'
import { ENDPOINT } from './constants.js'
import { quantile } from './stats.js'
import type { Target } from './targets.js'

/** One control-plane run: how far `clients` closed-loop clients got in the time and count allowed. */
export interface LoadResult {
  /** create+retrieve pairs that completed. */
  pairs: number
  /** Pairs that failed (any non-200 or transport error); a run with any is reported as such. */
  errors: number
  seconds: number
  /** HTTP requests per second: 2 per pair (one create, one retrieve). */
  requestsPerSecond: number
  /** Latency of one pair (create sent to retrieve answered), in ms. */
  p50Ms: number
  p99Ms: number
  /** CPU time the target's server process spent per request, in µs: its cost, whatever else ran. */
  serverCpuMicros: number
}

/** Bounds of one run: it stops at whichever comes first. */
export interface LoadBounds {
  clients: number
  maxSeconds: number
  maxPairs: number
}

/**
 * Runs create+retrieve in a closed loop from `clients` concurrent clients: each sends
 * `POST /batches` on a pre-uploaded input file, then `GET /batches/{id}` for the batch it got,
 * then starts over. Counted as 2 requests per pair.
 */
export async function createRetrieveRun(
  dispatcher: Dispatcher,
  target: Target,
  inputFileId: string,
  bounds: LoadBounds,
): Promise<LoadResult> {
  const latencies: number[] = []
  let started = 0
  let errors = 0
  let firstError: unknown
  const cpuBefore = target.server.cpuSeconds()
  const begin = performance.now()
  const deadline = begin + bounds.maxSeconds * 1000
  const body = { input_file_id: inputFileId, endpoint: ENDPOINT, completion_window: '24h' }

  const client = async () => {
    while (started < bounds.maxPairs && performance.now() < deadline) {
      started++
      const t0 = performance.now()
      try {
        const batch = await callJson<{ id: string }>(dispatcher, target, 'POST', '/batches', body)
        await callJson(dispatcher, target, 'GET', `/batches/${batch.id}`)
        latencies.push(performance.now() - t0)
      } catch (error) {
        errors++
        firstError ??= error
        if (errors > 100) break
      }
    }
  }
  await Promise.all(Array.from({ length: bounds.clients }, client))
  const seconds = (performance.now() - begin) / 1000
  const cpu = target.server.cpuSeconds() - cpuBefore
  if (firstError) process.stderr.write(`  ${target.label}: ${errors} failed pairs, first: ${String(firstError)}\n`)
  return {
    pairs: latencies.length,
    errors,
    seconds,
    requestsPerSecond: (latencies.length * 2) / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    serverCpuMicros: latencies.length === 0 ? Number.NaN : (cpu / (latencies.length * 2)) * 1e6,
  }
}
