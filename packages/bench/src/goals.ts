import type { AggregationRow } from './suites/aggregation.js'
import type { BigJobStage, BigJobsResult } from './suites/bigjobs.js'
import type { ControlRow } from './suites/control.js'
import type { ReadKind, ReadsRow } from './suites/reads.js'
import type { UploadRow } from './suites/upload.js'
import { mb, num } from './table.js'
import { ALONE_SUFFIX, REFERENCE_IN_PREFIX, REFERENCE_LABEL } from './targets.js'

/** One of the issue's targets, judged on this run's figures. */
export interface Goal {
  target: string
  /** What was measured, in words. */
  measured: string
  verdict: 'met' | 'missed' | 'not measured'
}

const PORTKEY = 'Portkey gateway'
const CLIENTS = 16

/**
 * create+retrieve at 16 clients: every batchkit row at least 4× Portkey's throughput. The text also
 * gives the ratio of server CPU per request, which other work on the machine disturbs least.
 */
export function throughputGoal(rows: ControlRow[] | undefined): Goal {
  const target = `create+retrieve at ${CLIENTS} clients ≥ 4× Portkey's throughput`
  const portkey = rows?.find((row) => row.label === PORTKEY)?.byClients[CLIENTS]
  const ours = (rows ?? []).filter((row) => row.label.startsWith('batchkit') && row.byClients[CLIENTS])
  if (!portkey || ours.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const vsPortkey = (row: ControlRow) =>
    (row.byClients[CLIENTS]?.requestsPerSecond.median ?? 0) / portkey.requestsPerSecond.median
  const ratios = ours.map((row) => ({
    label: row.label.replace('batchkit ', ''),
    throughput: vsPortkey(row),
    cpu: portkey.serverCpuMicros.median / (row.byClients[CLIENTS]?.serverCpuMicros.median ?? Number.NaN),
  }))
  const range = (values: number[]) => `${num(Math.min(...values), 1)}–${num(Math.max(...values), 1)}×`
  const throughputs = ratios.map((r) => `${r.label} ${num(r.throughput, 1)}×`).join(', ')
  const reference = rows?.find((row) => row.label === REFERENCE_LABEL && row.byClients[CLIENTS])
  const yardstick = reference
    ? `; the reference gateway (node:http and a Map: no framework, owner, validation, durable write or tracking) ` +
      `${num(vsPortkey(reference), 1)}×`
    : ''
  const inHosts = (rows ?? []).filter((row) => row.label.startsWith(REFERENCE_IN_PREFIX) && row.byClients[CLIENTS])
  const ceilings = inHosts.length
    ? `; the same gateway inside each host, mounted as its adapter is: ${inHosts
        .map((row) => `${row.label.slice(REFERENCE_IN_PREFIX.length)} ${num(vsPortkey(row), 1)}×`)
        .join(', ')}`
    : ''
  const alone = (rows ?? []).filter((row) => row.label.endsWith(ALONE_SUFFIX) && row.byClients[CLIENTS])
  const aloneFigures = alone.map(
    (row) =>
      `${row.label.replace(ALONE_SUFFIX, '')} ${num(vsPortkey(row), 1)}× ` +
      `(${num(row.byClients[CLIENTS]?.serverCpuMicros.median ?? Number.NaN)} µs CPU/req)`,
  )
  const floors = alone.length ? `; each host alone, answering a fixed Batch object: ${aloneFigures.join(', ')}` : ''
  return {
    target,
    measured:
      `${throughputs} (Portkey ${num(portkey.requestsPerSecond.median)} req/s); ` +
      `server CPU per request ${range(ratios.map((r) => r.cpu))} less than Portkey's${yardstick}${ceilings}${floors}`,
    verdict: ratios.every((r) => r.throughput >= 4) ? 'met' : 'missed',
  }
}

/** Upload peak RSS of batchkit under 100 MB at every size, and the largest within 10% of the smallest. */
export function uploadMemoryGoal(rows: UploadRow[] | undefined): Goal {
  const target = 'upload peak RSS < 100 MB and flat in file size'
  const ours = (rows ?? []).filter((row) => isDefaultBatchkit(row) && row.peakRssBytes)
  if (ours.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const peaks = ours.map((row) => row.peakRssBytes?.median ?? Number.NaN)
  const growth = ours.map((row) => (row.peakRssBytes?.median ?? Number.NaN) - (row.idleRssBytes?.median ?? Number.NaN))
  const flat = Math.max(...peaks) <= Math.min(...peaks) * 1.1
  const under = peaks.every((peak) => peak < 100e6)
  return {
    target,
    measured:
      ours.map((row, i) => `${mb(row.bytes)} MB file: peak ${mb(peaks[i] as number)} MB`).join(', ') +
      ` (of which ${growth.map((g) => mb(g)).join(' and ')} MB above the idle server); ` +
      (flat ? 'flat within 10%' : 'not flat within 10%'),
    verdict: under && flat ? 'met' : 'missed',
  }
}

/** Upload with full validation at 150 MB/s or more, at every size. */
export function uploadSpeedGoal(rows: UploadRow[] | undefined): Goal {
  const target = 'upload with full validation ≥ 150 MB/s'
  const ours = (rows ?? []).filter((row) => isDefaultBatchkit(row) && row.mbPerSecond)
  if (ours.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const speeds = ours.map((row) => row.mbPerSecond?.median ?? 0)
  return {
    target,
    measured: ours.map((row, i) => `${mb(row.bytes)} MB file: ${num(speeds[i] as number)} MB/s`).join(', '),
    verdict: speeds.every((speed) => speed >= 150) ? 'met' : 'missed',
  }
}

/** The suffix of the upload rows measured with estimates off, to compare with. */
export const ESTIMATES_OFF = ', estimates off'

/** A batchkit row as users run it: estimating, as by default. */
function isDefaultBatchkit(row: UploadRow): boolean {
  return row.label.startsWith('batchkit') && !row.label.includes(ESTIMATES_OFF)
}

/**
 * Estimating uploads (token counts and cost range, as they stream) costs at most 15% of upload speed at
 * every size. The two rows are measured in the same runs, one right after the other (in alternating
 * order), so each run gives a pair measured under the same load, and the figures are the medians of
 * the pairs' ratios. The verdict is on the server's CPU time per upload: the gateway's one event loop
 * bounds an upload's speed, so on an idle machine speed follows it, while on a shared one the
 * wall-clock ratio (given beside it) swings by ±20% from run to run with the other work.
 */
export function uploadEstimateGoal(rows: UploadRow[] | undefined): Goal {
  const target = 'estimating uploads costs ≤ 15% of upload speed (server CPU per upload)'
  const pairs = (rows ?? []).flatMap((off) => {
    if (!off.label.includes(ESTIMATES_OFF) || !off.runs) return []
    const on = rows?.find((row) => row.label === off.label.replace(ESTIMATES_OFF, '') && row.bytes === off.bytes)
    if (!on?.runs || on.runs.length !== off.runs.length || on.runs.length === 0) return []
    const runs = on.runs.map((run, i) => ({ on: run, off: off.runs?.[i] as typeof run }))
    return [
      {
        bytes: off.bytes,
        slower: median(runs.map((r) => 1 - r.on.mbPerSecond / r.off.mbPerSecond)),
        moreCpu: median(runs.map((r) => r.on.serverCpuSeconds / r.off.serverCpuSeconds - 1)),
      },
    ]
  })
  if (pairs.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  return {
    target,
    measured:
      "median of the runs' paired ratios: " +
      pairs
        .map(
          (pair) =>
            `${mb(pair.bytes)} MB file: server CPU ${signed(pair.moreCpu, 'more', 'less')}, wall clock ${signed(pair.slower, 'slower', 'faster')}`,
        )
        .join('; '),
    verdict: pairs.every((pair) => pair.moreCpu <= 0.15) ? 'met' : 'missed',
  }
}

/** A ratio as a percentage with the word its sign calls for: `4.2% slower`, `3.1% faster`. */
function signed(ratio: number, positive: string, negative: string): string {
  return `${num(Math.abs(ratio) * 100, 1)}% ${ratio < 0 ? negative : positive}`
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/**
 * batchkit's cost/usage pass at 150 MB/s or more on every file, in constant memory: its peak RSS on the
 * largest file within 10% of its peak on the smallest.
 */
export function aggregationGoal(rows: AggregationRow[] | undefined): Goal {
  const target = 'aggregation ≥ 150 MB/s in constant memory'
  const ours = (rows ?? []).filter((row) => row.label.startsWith('batchkit'))
  const measured = ours.filter((row) => row.mbPerSecond && row.peakRssBytes)
  if (measured.length === 0) {
    return { target, measured: ours[0]?.skipped ?? 'not measured in this run', verdict: 'not measured' }
  }
  const peak = (row: AggregationRow) => row.peakRssBytes?.median ?? Number.NaN
  const speeds = measured.map((row) => row.mbPerSecond?.median ?? 0)
  const flat = peak(measured.at(-1) as AggregationRow) <= peak(measured[0] as AggregationRow) * 1.1
  const perFile = measured.map(
    (row, i) => `${mb(row.bytes)} MB file: ${num(speeds[i] as number)} MB/s, peak ${mb(peak(row))} MB`,
  )
  return {
    target,
    measured: [...perFile, flat ? 'flat within 10%' : 'not flat within 10%'].join('; '),
    verdict: speeds.every((speed) => speed >= 150) && flat ? 'met' : 'missed',
  }
}

const storeName = (row: ReadsRow) => (row.store === 'redis' ? 'Redis' : 'memory')

/**
 * A read's p50 at most `limitMs`, judged on one reader on each store: 50 closed-loop readers on 2
 * cores queue behind one another, so their p50 is shown beside it but measures throughput.
 */
export function readLatencyGoal(rows: ReadsRow[] | undefined, read: ReadKind, limitMs: number): Goal {
  const what = read === 'list' ? 'list of 100 unfinished batches' : 'retrieve of an unfinished batch'
  const target = `${what} p50 ≤ ${limitMs} ms, 1 reader`
  const measured = (rows ?? []).filter((row) => row.read === read && row.p50Ms)
  const judged = measured.filter((row) => row.readers === 1)
  if (judged.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const byReaders = (readers: number) =>
    measured
      .filter((row) => row.readers === readers)
      .map((row) => `${storeName(row)} ${num(row.p50Ms?.median ?? Number.NaN, 1)} ms`)
      .join(', ')
  const others = [...new Set(measured.map((row) => row.readers))].filter((readers) => readers !== 1)
  return {
    target,
    measured: [`1 reader: ${byReaders(1)}`, ...others.map((r) => `${r} readers: ${byReaders(r)}`)].join('; '),
    verdict: judged.every((row) => (row.p50Ms?.median ?? Number.POSITIVE_INFINITY) <= limitMs) ? 'met' : 'missed',
  }
}

/** At most one provider call per unfinished batch per freshness window, in every run, whatever the readers. */
export function upstreamPerWindowGoal(rows: ReadsRow[] | undefined): Goal {
  const target = 'upstream calls per batch per freshness window ≤ 1, whatever the readers'
  const measured = (rows ?? []).filter((row) => row.upstreamPerBatchWindow)
  if (measured.length === 0) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const worst = measured.reduce((a, b) =>
    (b.upstreamPerBatchWindow?.max ?? 0) > (a.upstreamPerBatchWindow?.max ?? 0) ? b : a,
  )
  const most = worst.upstreamPerBatchWindow?.max ?? Number.NaN
  return {
    target,
    measured:
      `at most ${num(most, 3)} in any run of the ${measured.length} rows (worst: ${worst.read}, ${storeName(worst)}, ` +
      `${worst.readers} reader${worst.readers === 1 ? '' : 's'})`,
    verdict: most <= 1 ? 'met' : 'missed',
  }
}

/** What each stage of a big job is called in the Targets table. */
const STAGE_NAMES: Record<BigJobStage, string> = {
  upload: 'upload',
  batch: 'run',
  output: 'output download',
  input: 'input download',
}

/**
 * A batch above the provider's limits (1 GB, 1,000,000 requests in the full run) keeps the server's peak
 * RSS growth over its idle RSS under 100 MB in every stage: upload, run (create, tracking, billing) and
 * both downloads; judged on the worst run.
 */
export function bigJobsMemoryGoal(result: BigJobsResult | undefined): Goal {
  const target = 'big job: peak RSS growth < 100 MB in every stage (upload, run, downloads)'
  if (!result) return { target, measured: 'not measured in this run', verdict: 'not measured' }
  const worst = result.stages.map((row) => row.growthBytes.max)
  return {
    target,
    measured:
      `${mb(result.bytes)} MB, ${num(result.requests)} requests in ${result.parts} parts: ` +
      result.stages.map((row, i) => `${STAGE_NAMES[row.stage]} +${mb(worst[i] as number)} MB`).join(', ') +
      ` over the idle ${mb(result.idleRssBytes.median)} MB (worst of ${result.idleRssBytes.runs} run${result.idleRssBytes.runs === 1 ? '' : 's'})`,
    verdict: worst.every((growth) => growth < 100e6) ? 'met' : 'missed',
  }
}
