// `pnpm bench`: runs every measurement side by side, prints the tables, and rewrites docs/benchmarks.md.
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { buildChildren } from './build.js'
import { type BenchConfig, FULL, QUICK } from './config.js'
import { EMPTY_DOC, parseDoc } from './doc.js'
import { REPO_ROOT } from './hosts.js'
import { cpuSnapshot, machineInfo, otherCores } from './machine.js'
import { formatTopSelfTime, mainThreadProfiles, selfTimeByPackage, topSelfTime } from './profile.js'
import { redisVersion } from './redis.js'
import { BENCH_COMMAND, type BenchResults, renderReport, SUITES, type Suite } from './report.js'
import { BENCH_DIR, killAllServersNow, stopAllServers } from './servers.js'
import { runAggregation } from './suites/aggregation.js'
import { runBigJobs } from './suites/bigjobs.js'
import { runControlPlane } from './suites/control.js'
import { runListing } from './suites/listing.js'
import { runReads } from './suites/reads.js'
import { runUploads } from './suites/upload.js'
import { PORTKEY_SCRIPT } from './targets.js'

/** The command line: `--quick`, `--only=a,b`, `--profile`, `--baseline`, `--write[=<file>]` / `--no-write`. */
function parseArgs(argv: string[]): {
  config: BenchConfig
  suites: Suite[]
  profile: boolean
  baseline: boolean
  /** The file to update, if any. */
  write?: string
  /** The command line, as the report names it. */
  command: string
} {
  const args = argv.filter((arg) => arg !== '--')
  let quick = false
  let suites: Suite[] = [...SUITES]
  let profile = false
  let baseline = false
  let write: string | boolean | undefined
  for (const arg of args) {
    if (arg === '--quick') quick = true
    else if (arg === '--profile') profile = true
    else if (arg === '--baseline') baseline = true
    else if (arg === '--write') write = true
    else if (arg.startsWith('--write=')) write = resolve(arg.slice('--write='.length))
    else if (arg === '--no-write') write = false
    else if (arg.startsWith('--only=')) {
      suites = arg.slice('--only='.length).split(',') as Suite[]
      const unknown = suites.filter((s) => !SUITES.includes(s))
      if (unknown.length > 0) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${SUITES.join(', ')}`)
    } else
      throw new Error(
        `unknown option '${arg}'; options: --quick, --only=${SUITES.join(',')}, --profile, --baseline, --write[=<file>], --no-write`,
      )
  }
  // Only a full, unprofiled run of every suite on this checkout replaces the published figures, unless asked.
  write ??= !quick && !profile && !baseline && suites.length === SUITES.length
  return {
    config: quick ? QUICK : FULL,
    suites,
    profile,
    baseline,
    write: write === true ? fileURLToPath(new URL('docs/benchmarks.md', REPO_ROOT)) : write || undefined,
    command: [BENCH_COMMAND, ...args].join(' '),
  }
}

async function main(): Promise<void> {
  const { config, suites, profile, baseline, write, command } = parseArgs(process.argv.slice(2))
  if (process.platform !== 'linux' || !existsSync('/proc/self/status'))
    throw new Error('the bench reads /proc: Linux only')
  if (!existsSync(`${BENCH_DIR}${PORTKEY_SCRIPT}`)) throw new Error('Portkey is not installed: run pnpm install first')
  const started = performance.now()
  const cpuAtStart = cpuSnapshot()
  const log = (line: string) => console.log(line)
  const redis = await redisVersion()
  const machine = machineInfo(redis)
  log(
    `batchkit bench (${config.mode}, ${config.runs} runs, suites: ${suites.join(', ')}) on ${machine.cores} cores, Node ${machine.node}`,
  )
  if (!redis) log('Redis does not answer on 127.0.0.1:6379: the Redis rows are skipped.')
  if (machine.loadAtStart >= 1)
    log(`Note: the load average is ${machine.loadAtStart.toFixed(1)}; other work will blur the figures.`)
  await buildChildren()

  const profileDir = profile ? fileURLToPath(new URL('../.tmp/profiles/', import.meta.url)) : undefined
  if (profileDir) {
    await rm(profileDir, { recursive: true, force: true })
    await mkdir(profileDir, { recursive: true })
  }

  const results: BenchResults = {}
  if (suites.includes('control')) {
    log('\nControl plane: create + retrieve')
    results.control = await runControlPlane(config, redis !== undefined, log, profileDir)
  }
  if (suites.includes('upload')) {
    log('\nUpload')
    results.upload = await runUploads(config, log)
  }
  if (suites.includes('aggregation')) {
    log('\nAggregation')
    results.aggregation = await runAggregation(config, log)
  }
  if (suites.includes('listing')) {
    log('\nListing')
    results.listing = await runListing(config, redis !== undefined, log)
  }
  if (suites.includes('reads')) {
    log('\nReads')
    results.reads = await runReads(config, redis !== undefined, log)
  }
  if (suites.includes('bigjobs')) {
    log('\nBig jobs')
    results.bigjobs = await runBigJobs(config, log)
  }

  await stopAllServers()
  const minutes = (performance.now() - started) / 60_000
  const run = {
    command,
    date: machine.date,
    commit: machine.commit,
    mode: config.mode,
    runs: config.runs,
    otherCores: otherCores(cpuAtStart, cpuSnapshot()),
    cores: machine.cores,
    loadAtStart: machine.loadAtStart,
    baseline,
  }
  // A run that writes keeps the figures it did not measure again; one that only prints shows its own.
  const previous = write && existsSync(write) ? parseDoc(await readFile(write, 'utf8')) : EMPTY_DOC
  const report = renderReport(results, config, run, machine, previous)
  log(`\n${report}`)
  log(`Measured in ${minutes.toFixed(1)} minutes.`)
  if (profileDir) {
    for (const { name, path } of mainThreadProfiles(profileDir)) {
      log(`\nCPU profile of ${name} (${path})\n  self time by package:`)
      for (const line of formatTopSelfTime(selfTimeByPackage(path, 12))) log(`    ${line}`)
      log('  top functions by self time:')
      for (const line of formatTopSelfTime(topSelfTime(path, 20))) log(`    ${line}`)
    }
  }
  const target = write ?? fileURLToPath(new URL('../.tmp/benchmarks.md', import.meta.url))
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, report)
  log(
    `\nWritten to ${target}${write ? '' : ' (docs/benchmarks.md is updated by a full run of every suite, or with --write)'}`,
  )
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllServersNow()
    process.exit(130)
  })
}

try {
  await main()
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
} finally {
  await stopAllServers()
}
