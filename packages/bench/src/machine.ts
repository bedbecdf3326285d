import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { BENCH_DIR } from './servers.js'

/** What the figures were measured on and with. */
export interface MachineInfo {
  date: string
  cpu: string
  cores: number
  memoryGiB: number
  kernel: string
  node: string
  pnpm: string
  redis: string | undefined
  /** The commit measured, and whether the work tree had changes. */
  commit: string
  packages: Record<string, string>
  /** 1-minute load average when the bench started; other work on the machine shows here. */
  loadAtStart: number
}

/** Packages whose versions the report names, as the bench package resolves them. */
const PACKAGES = [
  '@batchkit/core',
  '@batchkit/express',
  '@batchkit/koa',
  '@batchkit/nestjs',
  '@portkey-ai/gateway',
  'express',
  'koa',
  '@nestjs/core',
  'keyv',
  '@keyv/redis',
  'undici',
]

/** Reads the machine, the tool versions and the commit. */
export function machineInfo(redisVersion: string | undefined): MachineInfo {
  const packages: Record<string, string> = {}
  for (const name of PACKAGES) {
    try {
      packages[name] = JSON.parse(readFileSync(`${BENCH_DIR}node_modules/${name}/package.json`, 'utf8')).version
    } catch {
      // not installed (an adapter that is not built yet)
    }
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    pnpm: /pnpm\/(\S+)/.exec(process.env.npm_config_user_agent ?? '')?.[1] ?? 'not run through pnpm',
    redis: redisVersion,
    commit: gitCommit(),
    packages,
    loadAtStart: os.loadavg()[0] ?? 0,
  }
}

function gitCommit(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: BENCH_DIR, encoding: 'utf8' }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    return git('status', '--porcelain').length > 0 ? `${head} (with uncommitted changes)` : head
  } catch {
    return 'unknown'
  }
}

/** CPU time so far of the whole machine (busy, all cores) and of this process with its finished children, in seconds. */
export interface CpuSnapshot {
  machineBusy: number
  own: number
  at: number
}

/** Reads {@link CpuSnapshot} from `/proc/stat` and `/proc/self/stat`. */
export function cpuSnapshot(): CpuSnapshot {
  const [user, nice, system, , , irq, softirq, steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  const self = readFileSync('/proc/self/stat', 'utf8')
  // utime, stime, cutime, cstime: fields 14 to 17 (children count once they have exited and been waited for).
  const [utime, stime, cutime, cstime] = self
    .slice(self.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 15)
    .map(Number)
  const ticks = (values: (number | undefined)[]) => values.reduce<number>((sum, v) => sum + (v ?? 0), 0) / 100
  return {
    machineBusy: ticks([user, nice, system, irq, softirq, steal]),
    own: ticks([utime, stime, cutime, cstime]),
    at: Date.now(),
  }
}

/** Cores' worth of CPU that processes other than the bench's used between two snapshots (all children stopped). */
export function otherCores(start: CpuSnapshot, end: CpuSnapshot): number {
  const seconds = (end.at - start.at) / 1000
  return seconds > 0 ? Math.max(0, end.machineBusy - start.machineBusy - (end.own - start.own)) / seconds : 0
}
