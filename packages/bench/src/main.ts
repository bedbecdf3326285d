// `pnpm bench`: runs every measurement side by side, prints the tables, and rewrites docs/benchmarks.md.
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { buildChildren } from './build.js'
import { type BenchConfig, FULL, QUICK } from './config.js'
import { REPO_ROOT } from './hosts.js'
import { cpuSnapshot, machineInfo, otherCores } from './machine.js'
import { formatTopSelfTime, mainThreadProfiles, selfTimeByPackage, topSelfTime } from './profile.js'
import { redisVersion } from './redis.js'
import { type BenchResults, renderReport } from './report.js'
import { BENCH_DIR, killAllServersNow, stopAllServers } from './servers.js'
import { runAggregation } from './suites/aggregation.js'
import { runControlPlane } from './suites/control.js'
import { runListing } from './suites/listing.js'
import { runUploads } from './suites/upload.js'
import { PORTKEY_SCRIPT } from './targets.js'

const SUITES = ['control', 'upload', 'aggregation', 'listing'] as const
type Suite = (typeof SUITES)[number]

/** The command line: `--quick`, `--only=a,b`, `--profile`, `--write` / `--no-write`. */
function parseArgs(argv: string[]): { config: BenchConfig; suites: Suite[]; profile: boolean; write: boolean } {
  let quick = false
  let suites: Suite[] = [...SUITES]
  let profile = false
  let write: boolean | undefined
  for (const arg of argv) {
    if (arg === '--') continue
    else if (arg === '--quick') quick = true
    else if (arg === '--profile') profile = true
    else if (arg === '--write') write = true
    else if (arg === '--no-write') write = false
    else if (arg.startsWith('--only=')) {
      suites = arg.slice('--only='.length).split(',') as Suite[]
      const unknown = suites.filter((s) => !SUITES.includes(s))
      if (unknown.length > 0) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${SUITES.join(', ')}`)
    } else
      throw new Error(
        `unknown option '${arg}'; options: --quick, --only=${SUITES.join(',')}, --profile, --write, --no-write`,
      )
  }
  return {
    config: quick ? QUICK : FULL,
    suites,
    profile,
    // Only a full, unprofiled run of every suite replaces the published figures, unless asked.
    write: write ?? (!quick && !profile && suites.length === SUITES.length),
  }
}

async function main(): Promise<void> {
  const { config, suites, profile, write } = parseArgs(process.argv.slice(2))
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

  await stopAllServers()
  const minutes = (performance.now() - started) / 60_000
  const report = renderReport(results, config, machine, minutes, otherCores(cpuAtStart, cpuSnapshot()))
  log(`\n${report}`)
  if (profileDir) {
    for (const { name, path } of mainThreadProfiles(profileDir)) {
      log(`\nCPU profile of ${name} (${path})\n  self time by package:`)
      for (const line of formatTopSelfTime(selfTimeByPackage(path, 12))) log(`    ${line}`)
      log('  top functions by self time:')
      for (const line of formatTopSelfTime(topSelfTime(path, 20))) log(`    ${line}`)
    }
  }
  const target = write
    ? fileURLToPath(new URL('docs/benchmarks.md', REPO_ROOT))
    : fileURLToPath(new URL('../.tmp/benchmarks.md', import.meta.url))
  await mkdir(new URL('.', `file://${target}`), { recursive: true })
  await writeFile(target, report)
  log(
    `\nWritten to ${target}${write ? '' : ' (docs/benchmarks.md is rewritten by a full run of every suite, or with --write)'}`,
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
