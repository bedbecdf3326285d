import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

/**
 * Which CPUs the control-plane bench gives to whom: the measured server has one of its own, and
 * everything else (the bench's clients, the fakes) shares the others, as a load generator on another
 * machine would. Without it, the clients and the fake take CPU from the gateway in proportion to its
 * speed, so a faster gateway is held back more, and the scheduler's placement moves figures by a fifth
 * between runs.
 */
export interface CoreLayout {
  /** The measured server's CPU, as `taskset -c` takes it. */
  server: string
  /** Everyone else's. */
  rest: string
  /** All CPUs, to give the bench's own process back when it is done. */
  all: string
}

/** The layout on this machine, or why there is none: fewer than 2 CPUs, or no `taskset` (util-linux). */
export function coreLayout(): CoreLayout | { none: string } {
  const cpus = availableParallelism()
  if (cpus < 2) return { none: `only ${cpus} CPU` }
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
  } catch {
    return { none: 'no taskset (util-linux) on this machine' }
  }
  const last = cpus - 1
  return { server: String(last), rest: last === 1 ? '0' : `0-${last - 1}`, all: `0-${last}` }
}

/** Runs every thread of `pid` (V8's compiler and GC threads, libuv's pool) on `cpus` only. */
export function pinTo(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
}
