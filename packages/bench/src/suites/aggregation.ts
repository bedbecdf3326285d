import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AGGREGATORS } from '../aggregators.js'
import { builtChild } from '../build.js'
import type { BenchConfig } from '../config.js'
import { writeOutputFile } from '../output.js'
import { runToResult } from '../servers.js'
import { type Spread, spread } from '../stats.js'

/** Figures of one cost/usage pass over a batch output file of one size. */
export interface AggregationRow {
  label: string
  bytes: number
  skipped?: string
  mbPerSecond?: Spread
  /** The pass's process's peak RSS, in bytes. */
  peakRssBytes?: Spread
  /** Its RSS once the pass's code was loaded, just before the pass, in bytes. */
  idleRssBytes?: Spread
}

type Log = (line: string) => void

/**
 * Times each cost/usage pass of {@link AGGREGATORS} over generated batch output files of each size,
 * each run in a fresh process, round after round. A pass that is not built yet gets a row that says so.
 */
export async function runAggregation(config: BenchConfig, log: Log): Promise<AggregationRow[]> {
  const names = Object.keys(AGGREGATORS).filter((name) => AGGREGATORS[name]?.load)
  const rows: AggregationRow[] = []
  for (const size of config.aggregation.sizes) {
    const path = join(tmpdir(), `batchkit-bench-output-${process.pid}-${size}.jsonl`)
    try {
      const bytes = await writeOutputFile(path, size)
      const samples = new Map(
        names.map((name) => [name, { speed: [] as number[], peak: [] as number[], idle: [] as number[] }]),
      )
      for (let run = 1; run <= config.runs; run++) {
        for (const name of names) {
          const result = await runToResult<{ seconds: number; peakRssBytes: number; idleRssBytes: number }>(
            `aggregate ${name}`,
            builtChild('aggregate'),
            { BENCH_AGGREGATOR: name, BENCH_FILE: path },
          )
          const sample = samples.get(name)
          sample?.speed.push(bytes / 1e6 / result.seconds)
          sample?.peak.push(result.peakRssBytes)
          sample?.idle.push(result.idleRssBytes)
          log(
            `  run ${run}/${config.runs} ${name} pass, ${(bytes / 1e6).toFixed(0)} MB: ` +
              `${(bytes / 1e6 / result.seconds).toFixed(0)} MB/s, peak RSS ${(result.peakRssBytes / 1e6).toFixed(0)} MB ` +
              `(${(result.idleRssBytes / 1e6).toFixed(0)} MB before)`,
          )
        }
      }
      for (const [name, aggregator] of Object.entries(AGGREGATORS)) {
        const sample = samples.get(name)
        rows.push(
          sample
            ? {
                label: aggregator.label,
                bytes,
                mbPerSecond: spread(sample.speed),
                peakRssBytes: spread(sample.peak),
                idleRssBytes: spread(sample.idle),
              }
            : { label: aggregator.label, bytes, skipped: 'not built yet' },
        )
      }
    } finally {
      await rm(path, { force: true })
    }
  }
  return rows
}
