import { callJson, clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { HOSTS } from '../hosts.js'
import { createRetrieveRun, type LoadResult } from '../load.js'
import { type Spread, spreadOf } from '../stats.js'
import {
  labelOf,
  startTarget,
  type Target,
  type TargetSpec,
  targetUnavailable,
  type UpstreamOptions,
  upstreamTarget,
} from '../targets.js'
import { jsonlShape, uploadJsonl } from '../upload.js'

/** One path's control-plane figures, per number of clients. */
export interface ControlRow {
  label: string
  /** Why it was not measured, such as "not built yet". */
  skipped?: string
  byClients: Record<
    number,
    { requestsPerSecond: Spread; p50Ms: Spread; p99Ms: Spread; serverCpuMicros: Spread; errors: number }
  >
}

type Log = (line: string) => void

/** The paths of the control-plane table, in order. */
function plan(config: BenchConfig): { spec: TargetSpec; upstream: UpstreamOptions }[] {
  const upstream: UpstreamOptions = { kind: config.upstream }
  const rows: { spec: TargetSpec; upstream: UpstreamOptions }[] = [
    { spec: { kind: 'direct' }, upstream: { kind: 'testkit' } },
    { spec: { kind: 'direct' }, upstream: { kind: 'minimal' } },
  ]
  for (const host of HOSTS) {
    rows.push({ spec: { kind: 'batchkit', host, store: 'memory' }, upstream })
    rows.push({ spec: { kind: 'batchkit', host, store: 'redis' }, upstream })
  }
  rows.push({ spec: { kind: 'reference' }, upstream })
  for (const host of HOSTS) rows.push({ spec: { kind: 'alone', host }, upstream })
  rows.push({ spec: { kind: 'portkey' }, upstream })
  return rows
}

/**
 * create+retrieve from 1 and 16 closed-loop clients, on every path side by side: all targets are
 * started first, then each round measures every target in turn, so drift hits all alike.
 */
export async function runControlPlane(
  config: BenchConfig,
  redis: boolean,
  log: Log,
  profileDir?: string,
): Promise<ControlRow[]> {
  const rows: ControlRow[] = []
  const live: { row: ControlRow; target: Target; inputFileId: string; results: Record<number, LoadResult[]> }[] = []
  const agent = clientAgent(Math.max(...config.control.clients))
  try {
    for (const { spec, upstream } of plan(config)) {
      const row: ControlRow = { label: labelOf(spec, upstream), byClients: {} }
      rows.push(row)
      const noRedis = spec.kind === 'batchkit' && spec.store === 'redis' && !redis
      row.skipped = targetUnavailable(spec) ?? (noRedis ? 'no Redis on 127.0.0.1' : undefined)
      if (row.skipped) continue
      let target: Target | undefined
      try {
        target = await startTarget(spec, upstream, { profileDir })
        // batchkit needs the file in its own store; the other paths use the fake's file.
        const uploadTo = spec.kind === 'batchkit' ? target : upstreamTarget(target)
        const { id } = await uploadJsonl(agent, uploadTo, jsonlShape(10 * 4_096))
        if (spec.kind === 'portkey' || spec.kind === 'reference') {
          await proveForwardsToFake(agent, target, id)
          log(`  ${row.label} forwards to the fake upstream: a batch created through it is the fake's own`)
        }
        live.push({ row, target, inputFileId: id, results: {} })
        log(`  started ${row.label}`)
      } catch (error) {
        await target?.stop()
        row.skipped = `failed to start: ${(error as Error).message.split('\n')[0]}`
        log(`  ${row.label}: ${row.skipped}`)
      }
    }
    const bounds = (clients: number, seconds: number) => ({
      clients,
      maxSeconds: seconds,
      maxPairs: config.control.maxPairs,
    })
    // Only the path measured runs: a paused one's background work (batchkit's tracker polls) waits for its own turn.
    for (const entry of live) pause(entry.target)
    for (let run = 1; run <= config.runs; run++) {
      for (const entry of live) {
        resume(entry.target)
        const warm = await warmUp(agent, entry, config)
        log(
          `  run ${run}/${config.runs} ${entry.row.label}: warmed in ${warm.windows} window(s), last ${warm.requestsPerSecond.toFixed(0)} req/s`,
        )
        for (const clients of config.control.clients) {
          const result = await createRetrieveRun(
            agent,
            entry.target,
            entry.inputFileId,
            bounds(clients, config.control.runSeconds),
          )
          const results = entry.results[clients] ?? []
          results.push(result)
          entry.results[clients] = results
          log(
            `  run ${run}/${config.runs} ${entry.row.label}, ${clients} client(s): ${result.requestsPerSecond.toFixed(0)} req/s, ` +
              `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, server ${result.serverCpuMicros.toFixed(0)} µs CPU/req` +
              (result.errors ? `, ${result.errors} errors` : ''),
          )
        }
        pause(entry.target)
      }
    }
    for (const entry of live) {
      for (const [clients, results] of Object.entries(entry.results)) {
        entry.row.byClients[Number(clients)] = {
          ...spreadOf(results, ['requestsPerSecond', 'p50Ms', 'p99Ms', 'serverCpuMicros']),
          errors: results.reduce((sum, r) => sum + r.errors, 0),
        }
      }
    }
    return rows
  } finally {
    for (const entry of live) resume(entry.target)
    await agent.close()
    await Promise.all(live.map((entry) => entry.target.stop()))
  }
}

/** Stops a path's processes (its gateway and its fake) with SIGSTOP, so they take no CPU from the path measured. */
function pause(target: Target): void {
  signalPath(target, 'SIGSTOP')
}

function resume(target: Target): void {
  signalPath(target, 'SIGCONT')
}

function signalPath(target: Target, signal: NodeJS.Signals): void {
  for (const pid of new Set([target.server.pid, target.upstream.pid])) {
    try {
      process.kill(pid, signal)
    } catch {
      // Gone already: its own runs fail and say so; the other paths go on.
    }
  }
}

/**
 * Loads a path at the highest concurrency until it stops getting faster: windows of `warmupSeconds`
 * until two in a row are each within 5% of the one before (or slower), for at most `warmupMaxSeconds`. Needed before
 * every turn, not once: Portkey's gateway, idle for the minute the other paths take, answers at a
 * third of its speed at first and takes seconds of load to recover; batchkit does not slow down so.
 */
async function warmUp(
  agent: ReturnType<typeof clientAgent>,
  entry: { target: Target; inputFileId: string },
  config: BenchConfig,
): Promise<{ windows: number; requestsPerSecond: number }> {
  const { warmupSeconds, warmupMaxSeconds, clients, maxPairs } = config.control
  const window = { clients: Math.max(...clients), maxSeconds: warmupSeconds, maxPairs }
  let last = await createRetrieveRun(agent, entry.target, entry.inputFileId, window)
  let windows = 1
  let settled = 0
  // Two settled windows in a row, so one slow window of noise does not end a warm-up still under way.
  while (settled < 2 && windows * warmupSeconds < warmupMaxSeconds) {
    const next = await createRetrieveRun(agent, entry.target, entry.inputFileId, window)
    windows++
    settled = next.requestsPerSecond <= last.requestsPerSecond * 1.05 ? settled + 1 : 0
    last = next
  }
  return { windows, requestsPerSecond: last.requestsPerSecond }
}

/** Proof that a gateway forwards to our fake (and nowhere else): a batch made through it is the fake's own. */
async function proveForwardsToFake(agent: ReturnType<typeof clientAgent>, gateway: Target, inputFileId: string) {
  const body = { input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' }
  const batch = await callJson<{ id: string }>(agent, gateway, 'POST', '/batches', body)
  const seen = await callJson<{ id: string }>(agent, upstreamTarget(gateway), 'GET', `/batches/${batch.id}`)
  if (seen.id !== batch.id) throw new Error(`${gateway.label} answered with a batch the fake upstream does not have`)
}
