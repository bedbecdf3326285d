import { execFileSync } from 'node:child_process'

/**
 * Which CPUs the control-plane bench gives to whom: the measured server has one of its own, and
 * everything else (the bench's clients, the fakes) shares the others, as a load generator on another
 * machine would. Shared, the CPU a gateway got depended on how much its clients and its fake took,
 * which grows with its speed.
 */
export interface CoreLayout {
  /** The measured server's CPU, as `taskset -c` takes it. */
  server: string
  /** Everyone else's. */
  rest: string
  /** Every CPU the bench may use, to give its own process back when it is done. */
  all: string
}

/** The layout on this machine, or why there is none: fewer than 2 CPUs allowed, or no `taskset` (util-linux). */
export function coreLayout(): CoreLayout | { none: string } {
  let allowed: string
  try {
    // "pid 123's current affinity list: 0-3,6"
    allowed =
      execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' })
        .split(':')
        .at(-1)
        ?.trim() ?? ''
  } catch {
    return { none: 'no taskset (util-linux) on this machine' }
  }
  const cpus = allowed.split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number)
    return Array.from({ length: (to as number) - (from as number) + 1 }, (_, i) => (from as number) + i)
  })
  if (cpus.length < 2 || cpus.some(Number.isNaN)) return { none: `CPUs allowed: ${allowed}` }
  return { server: String(cpus.at(-1)), rest: cpus.slice(0, -1).join(','), all: allowed }
}

/**
 * Runs every thread of `pid` (V8's compiler and GC threads, libuv's pool) on `cpus` only. A process that
 * has gone already is left alone: its own runs fail and say so.
 */
export function pinTo(pid: number, cpus: string): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
  } catch (error) {
    if (processExists(pid)) throw error
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
