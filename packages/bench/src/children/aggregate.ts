// One cost/usage pass (BENCH_AGGREGATOR, a key of AGGREGATORS) over a batch output file (BENCH_FILE),
// in a process of its own; reports its time and its own peak RSS to the bench over IPC.
import { createReadStream, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { AGGREGATORS } from '../aggregators.js'

const kb = (field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024

const name = process.env.BENCH_AGGREGATOR ?? 'reference'
const load = AGGREGATORS[name]?.load
if (!load) throw new Error(`no pass '${name}'`)
const pass = await load()
const idleRssBytes = kb('VmRSS')
const started = performance.now()
const totals = await pass(createReadStream(process.env.BENCH_FILE as string, { highWaterMark: 64 * 1024 }))
const seconds = (performance.now() - started) / 1000
process.send?.({ type: 'result', seconds, totals, idleRssBytes, peakRssBytes: kb('VmHWM') }, () => process.exit(0))
