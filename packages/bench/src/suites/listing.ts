import { performance } from 'node:perf_hooks'
import { callJson, clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { ENDPOINT } from '../constants.js'
import { HOSTS } from '../hosts.js'
import { quantile, type Spread, spreadOf } from '../stats.js'
import { startTarget, type Target } from '../targets.js'
import { jsonlShape, uploadJsonl } from '../upload.js'

/** `GET /batches?limit=100` figures for one store and kind of batch. */
export interface ListingRow {
  store: 'memory' | 'redis'
  /** Whether the listed batches are still running upstream (each is then refreshed from the provider) or finished. */
  batches: 'unfinished' | 'finished'
  count: number
  skipped?: string
  p50Ms?: Spread
  p99Ms?: Spread
}

type Log = (line: string) => void
type Agent = ReturnType<typeof clientAgent>

/**
 * Creates `config.listing.batches` batches for one owner on batchkit (Express), then times the
 * first page of `GET /batches?limit=100`, on each store, with batches the provider still runs
 * (batchkit refreshes each of them upstream before answering) and with finished ones (store only).
 */
export async function runListing(config: BenchConfig, redis: boolean, log: Log): Promise<ListingRow[]> {
  const host = HOSTS[0]
  if (!host) throw new Error('no host to list through')
  const rows: ListingRow[] = []
  const live: { row: ListingRow; target: Target; results: { p50Ms: number; p99Ms: number }[] }[] = []
  const agent = clientAgent(16)
  try {
    for (const store of ['memory', 'redis'] as const) {
      for (const batches of ['unfinished', 'finished'] as const) {
        const row: ListingRow = { store, batches, count: config.listing.batches }
        rows.push(row)
        if (store === 'redis' && !redis) {
          row.skipped = 'no Redis on 127.0.0.1'
          continue
        }
        const target = await startTarget(
          { kind: 'batchkit', host, store },
          { kind: 'minimal', completedBatches: batches === 'finished' },
        )
        live.push({ row, target, results: [] })
        const started = performance.now()
        await seed(agent, target, config.listing.batches)
        log(
          `  seeded ${config.listing.batches} ${batches} batches on ${store} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        )
        for (let i = 0; i < 5; i++) await listPage(agent, target)
      }
    }
    for (let run = 1; run <= config.runs; run++) {
      for (const entry of live) {
        const latencies: number[] = []
        for (let i = 0; i < config.listing.callsPerRun; i++) latencies.push(await listPage(agent, entry.target))
        const result = { p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) }
        entry.results.push(result)
        log(
          `  run ${run}/${config.runs} list on ${entry.row.store}, ${entry.row.batches}: ` +
            `p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms`,
        )
      }
    }
    for (const entry of live) Object.assign(entry.row, spreadOf(entry.results, ['p50Ms', 'p99Ms']))
    return rows
  } finally {
    await agent.close()
    await Promise.all(live.map((entry) => entry.target.stop()))
  }
}

/** Creates `count` batches on one input file from 16 concurrent clients. */
async function seed(agent: Agent, target: Target, count: number): Promise<void> {
  const { id } = await uploadJsonl(agent, target, jsonlShape(10 * 4_096))
  const body = { input_file_id: id, endpoint: ENDPOINT, completion_window: '24h' }
  let created = 0
  const client = async () => {
    while (created < count) {
      created++
      await callJson(agent, target, 'POST', '/batches', body)
    }
  }
  await Promise.all(Array.from({ length: 16 }, client))
}

/** One `GET /batches?limit=100`, checked to be a full page; its latency in ms. */
async function listPage(agent: Agent, target: Target): Promise<number> {
  const started = performance.now()
  const page = await callJson<{ data: unknown[]; has_more: boolean }>(agent, target, 'GET', '/batches?limit=100')
  const ms = performance.now() - started
  if (page.data.length !== 100) throw new Error(`a page of ${page.data.length} batches, not 100`)
  return ms
}
