import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import type { UpstreamCalls } from '../children/minimal-fake.js'
import { callJson, clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { ENDPOINT } from '../constants.js'
import { HOSTS } from '../hosts.js'
import { quantile, type Spread, spreadOf } from '../stats.js'
import { startTarget, type Target } from '../targets.js'
import { jsonlShape, uploadJsonl } from '../upload.js'

/** The two reads a client polls with. */
export type ReadKind = 'retrieve' | 'list'

/** Figures of one read, on one store, at one number of readers. */
export interface ReadsRow {
  store: 'memory' | 'redis'
  read: ReadKind
  readers: number
  skipped?: string
  readsPerSecond?: Spread
  p50Ms?: Spread
  p99Ms?: Spread
  /** Every request the provider got during the run, per read answered. */
  upstreamPerRead?: Spread
  /** The provider's reads of single batches during the run, per batch, per freshness window the run lasted. */
  upstreamPerBatchWindow?: Spread
  errors: number
}

interface RunResult {
  readsPerSecond: number
  p50Ms: number
  p99Ms: number
  upstreamPerRead: number
  upstreamPerBatchWindow: number
  errors: number
}

type Log = (line: string) => void
type Agent = ReturnType<typeof clientAgent>

const READS: ReadKind[] = ['retrieve', 'list']

/**
 * Unfinished batches, a provider 200 ms away: one owner's batches are read by 1 and by 50
 * closed-loop clients, by `GET /batches/{id}` (each reader takes the next batch in turn) and by
 * `GET /batches?limit=100`, on batchkit (Express) with each store. The fake counts what reaches it.
 */
export async function runReads(config: BenchConfig, redis: boolean, log: Log): Promise<ReadsRow[]> {
  const host = HOSTS[0]
  if (!host) throw new Error('no host to read through')
  const { reads } = config
  const rows: ReadsRow[] = []
  const live: { store: ReadsRow['store']; target: Target; ids: string[]; results: Map<string, RunResult[]> }[] = []
  const agent = clientAgent(Math.max(...reads.readers))
  try {
    for (const store of ['memory', 'redis'] as const) {
      const skipped = store === 'redis' && !redis ? 'no Redis on 127.0.0.1' : undefined
      for (const read of READS)
        for (const readers of reads.readers) rows.push({ store, read, readers, skipped, errors: 0 })
      if (skipped) continue
      const target = await startTarget(
        { kind: 'batchkit', host, store },
        { kind: 'minimal', delayMs: reads.upstreamDelayMs },
      )
      const ids = await seed(agent, target, reads.batches)
      live.push({ store, target, ids, results: new Map() })
      log(`  seeded ${reads.batches} unfinished batches on ${store}, ${reads.upstreamDelayMs} ms from the fake`)
      for (const read of READS) await readRun(agent, target, ids, read, Math.max(...reads.readers), reads.warmupSeconds)
    }
    const window = reads.freshnessMs / 1000
    for (let run = 1; run <= config.runs; run++) {
      for (const entry of live) {
        for (const read of READS) {
          for (const readers of reads.readers) {
            const r = await readRun(agent, entry.target, entry.ids, read, readers, reads.runSeconds)
            const result: RunResult = {
              readsPerSecond: r.reads / r.seconds,
              p50Ms: quantile(r.latencies, 0.5),
              p99Ms: quantile(r.latencies, 0.99),
              upstreamPerRead: r.requests / r.reads,
              upstreamPerBatchWindow: r.batchReads / entry.ids.length / (reads.runSeconds / window),
              errors: r.errors,
            }
            const key = `${read}/${readers}`
            entry.results.set(key, [...(entry.results.get(key) ?? []), result])
            log(
              `  run ${run}/${config.runs} ${read} on ${entry.store}, ${readers} reader(s): ${result.readsPerSecond.toFixed(0)} reads/s, ` +
                `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ` +
                `${result.upstreamPerRead.toFixed(3)} upstream calls/read, ${result.upstreamPerBatchWindow.toFixed(2)} per batch per window` +
                (result.errors ? `, ${result.errors} errors` : ''),
            )
          }
        }
      }
    }
    for (const entry of live) {
      for (const row of rows.filter((r) => r.store === entry.store)) {
        const results = entry.results.get(`${row.read}/${row.readers}`) ?? []
        Object.assign(
          row,
          spreadOf(results, ['readsPerSecond', 'p50Ms', 'p99Ms', 'upstreamPerRead', 'upstreamPerBatchWindow']),
        )
        row.errors = results.reduce((sum, r) => sum + r.errors, 0)
      }
    }
    return rows
  } finally {
    await agent.close()
    await Promise.all(live.map((entry) => entry.target.stop()))
  }
}

/** Creates `count` batches on one input file from 16 concurrent clients; their ids. */
async function seed(agent: Agent, target: Target, count: number): Promise<string[]> {
  const { id } = await uploadJsonl(agent, target, jsonlShape(10 * 4_096))
  const body = { input_file_id: id, endpoint: ENDPOINT, completion_window: '24h' }
  const ids: string[] = []
  let created = 0
  const client = async () => {
    while (created < count) {
      created++
      ids.push((await callJson<{ id: string }>(agent, target, 'POST', '/batches', body)).id)
    }
  }
  await Promise.all(Array.from({ length: 16 }, client))
  return ids
}

/** What the fake has answered so far, asked of it directly (not through the delay proxy). */
async function upstreamCalls(agent: Agent, target: Target, span = { from: 0, to: 0 }): Promise<UpstreamCalls> {
  const url = `${target.upstream.origin}/bench/calls?from=${span.from}&to=${span.to}`
  return (await (await request(url, { dispatcher: agent })).body.json()) as UpstreamCalls
}

/**
 * `readers` closed-loop clients read for `seconds`, then finish the reads they have started. The
 * provider's calls are counted until the last read is answered (all the calls the reads made), and
 * its reads of single batches over exactly `seconds` on the fake's own clock, where they arrive: a
 * span of whole freshness windows, however long the last reads take.
 */
async function readRun(agent: Agent, target: Target, ids: string[], read: ReadKind, readers: number, seconds: number) {
  const latencies: number[] = []
  let next = 0
  let errors = 0
  let firstError: unknown
  const before = await upstreamCalls(agent, target)
  const begin = performance.now()
  const deadline = begin + seconds * 1000
  const reader = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      try {
        if (read === 'retrieve') {
          await callJson(agent, target, 'GET', `/batches/${ids[next++ % ids.length]}`)
        } else {
          const page = await callJson<{ data: unknown[] }>(agent, target, 'GET', '/batches?limit=100')
          if (page.data.length !== ids.length)
            throw new Error(`a page of ${page.data.length} batches, not ${ids.length}`)
        }
        latencies.push(performance.now() - t0)
      } catch (error) {
        errors++
        firstError ??= error
        if (errors > 100) break
      }
    }
  }
  await Promise.all(Array.from({ length: readers }, reader))
  const elapsed = (performance.now() - begin) / 1000
  // Readers that gave up early must not cut the span short. Past the deadline here, the span has
  // ended on the fake's clock too: `before` was taken there before `begin`.
  await sleep(deadline - performance.now())
  const after = await upstreamCalls(agent, target, { from: before.atMs, to: before.atMs + seconds * 1000 })
  if (firstError) process.stderr.write(`  ${target.label}: ${errors} failed reads, first: ${String(firstError)}\n`)
  return {
    reads: latencies.length,
    errors,
    seconds: elapsed,
    latencies,
    requests: after.requests - before.requests,
    /** Reads of single batches that reached the fake over exactly `seconds`. */
    batchReads: after.batchReadsBetween,
  }
}
