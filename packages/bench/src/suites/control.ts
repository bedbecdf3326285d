import { callJson, clientAgent } from '../client.js'
import type { BenchConfig } from '../config.js'
import { type CoreLayout, coreLayout, pinTo } from '../cores.js'
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

/** The control plane's figures, and where its processes ran. */
export interface ControlResult {
  rows: ControlRow[]
  /** Which CPUs the measured server and everything else had, or why they were not pinned. */
  cores: string
}

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
  for (const host of HOSTS) rows.push({ spec: { kind: 'reference', host }, upstream })
  for (const host of HOSTS) rows.push({ spec: { kind: 'alone', host }, upstream })
  rows.push({ spec: { kind: 'portkey' }, upstream })
  return rows
}

/**
 * create+retrieve from 1 and 16 closed-loop clients, on every path side by side: all targets are
 * started first, then each round measures every target in turn, so drift hits all alike. Each
 * measured server has a CPU of its own (see {@link CoreLayout}) where the machine allows it.
 */
export async function runControlPlane(
  config: BenchConfig,
  redis: boolean,
  log: Log,
  profileDir?: string,
): Promise<ControlResult> {
  const rows: ControlRow[] = []
  const layout = coreLayout()
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
    const cores = 'none' in layout ? `not pinned: ${layout.none}` : placeOnCores(layout, live)
    log(`  CPUs: ${cores}`)
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
          `  run ${run}/${config.runs} ${entry.row.label}: warmed in ${warm.windows} window(s), fastest ${warm.requestsPerSecond.toFixed(0)} req/s`,
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
    return { rows, cores }
  } finally {
    if (!('none' in layout)) pinTo(process.pid, layout.all)
    for (const entry of live) resume(entry.target)
    await agent.close()
    await Promise.all(live.map((entry) => entry.target.stop()))
  }
}

/** Gives every gateway (or the fake of a direct row) the server CPU, and the bench and the fakes the rest. */
function placeOnCores(layout: CoreLayout, live: { target: Target }[]): string {
  pinTo(process.pid, layout.rest)
  for (const { target } of live) {
    if (target.upstream !== target.server) pinTo(target.upstream.pid, layout.rest)
    pinTo(target.server.pid, layout.server)
  }
  return `the measured server alone on CPU ${layout.server}; the clients and the fakes on CPU ${layout.rest} (taskset)`
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
 * until three in a row are no more than 2% faster than the fastest before them, for at most
 * `warmupMaxSeconds`. Needed before every turn, not once: Portkey's gateway, idle for the minute the
 * other paths take, answers at a third of its speed at first. And judged against the fastest window,
 * not the last: a server still compiling its hot paths gets faster by a few percent a second for
 * fifteen seconds, which window-to-window steps of 5% took for settled.
 */
async function warmUp(
  agent: ReturnType<typeof clientAgent>,
  entry: { target: Target; inputFileId: string },
  config: BenchConfig,
): Promise<{ windows: number; requestsPerSecond: number }> {
  const { warmupSeconds, warmupMaxSeconds, clients, maxPairs } = config.control
  const window = { clients: Math.max(...clients), maxSeconds: warmupSeconds, maxPairs }
  let best = (await createRetrieveRun(agent, entry.target, entry.inputFileId, window)).requestsPerSecond
  let windows = 1
  let flat = 0
  while (flat < 3 && windows * warmupSeconds < warmupMaxSeconds) {
    const next = (await createRetrieveRun(agent, entry.target, entry.inputFileId, window)).requestsPerSecond
    windows++
    flat = next > best * 1.02 ? 0 : flat + 1
    best = Math.max(best, next)
  }
  return { windows, requestsPerSecond: best }
}

/** Proof that a gateway forwards to our fake (and nowhere else): a batch made through it is the fake's own. */
async function proveForwardsToFake(agent: ReturnType<typeof clientAgent>, gateway: Target, inputFileId: string) {
  const body = { input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' }
  const batch = await callJson<{ id: string }>(agent, gateway, 'POST', '/batches', body)
  const seen = await callJson<{ id: string }>(agent, upstreamTarget(gateway), 'GET', `/batches/${batch.id}`)
  if (seen.id !== batch.id) throw new Error(`${gateway.label} answered with a batch the fake upstream does not have`)
}
