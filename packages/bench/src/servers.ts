import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The bench package's folder: children run with it as their working directory, so `--import tsx` resolves. */
export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url))

/** What a child server sends over IPC once it listens. */
export interface ListeningMessage {
  type: 'listening'
  port: number
  address: string
}

/** A server running in a child process of its own, so its memory can be read alone. */
export interface ServerProcess {
  readonly name: string
  readonly pid: number
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** The process's resident memory now, in bytes (`VmRSS`). */
  rssBytes(): number
  /** CPU time the process has used so far (user + system), in seconds. */
  cpuSeconds(): number
  /** The process's peak resident memory since it started or since {@link resetPeak}, in bytes (`VmHWM`). */
  peakRssBytes(): number
  /** Resets the peak to the current resident memory (Linux `clear_refs` 5), so the next peak is one phase's own. */
  resetPeak(): void
  /** Whether {@link resetPeak} works here; when not, peaks are since start. */
  readonly canResetPeak: boolean
  /** Stops the process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>
}

/** How to start a child server. */
export interface ServerSpec {
  name: string
  /** Arguments to `node` (flags, script, script arguments). */
  args: string[]
  env?: Record<string, string>
  /** How long it may take to listen. @default 30000 */
  startTimeoutMs?: number
}

const running = new Set<ServerProcess>()

/**
 * Node flags every server child runs with (gateways, fakes, Portkey alike), from `BENCH_NODE_FLAGS`
 * (space-separated), such as `--single-threaded-gc`: to measure a deployment tuned the same for all.
 */
export const SERVER_NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)

/** A TypeScript child of the bench, run by Node with tsx and workspace packages resolved to source. */
export function tsChild(script: string, ...args: string[]): string[] {
  return ['--conditions=@batchkit/source', '--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args]
}

/**
 * Node flags that write V8 CPU profiles (`node --cpu-prof`) into `<dir>/<name>` when the process exits:
 * one per thread, so the main thread's is the largest.
 */
export function cpuProfileFlags(dir: string | undefined, name: string): string[] {
  if (!dir) return []
  return ['--cpu-prof', `--cpu-prof-dir=${join(dir, name.replace(/[^\w.-]+/g, '_'))}`]
}

/**
 * Starts a server in a child process with an IPC channel, and waits for its `listening` message.
 * The child must listen on 127.0.0.1 only; any other address is refused and the child killed.
 */
export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...spec.args], {
    cwd: BENCH_DIR,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000)
  })
  const listening = await new Promise<ListeningMessage>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${spec.name} did not listen within ${spec.startTimeoutMs ?? 30_000} ms\n${stderr}`)),
      spec.startTimeoutMs ?? 30_000,
    )
    child.on('message', (message: ListeningMessage) => {
      if (message?.type !== 'listening') return
      clearTimeout(timer)
      resolve(message)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${spec.name} exited (${code ?? signal}) before listening\n${stderr}`))
    })
  }).catch((error) => {
    child.kill('SIGKILL')
    throw error
  })
  if (listening.address !== '127.0.0.1') {
    child.kill('SIGKILL')
    throw new Error(`${spec.name} listened on ${listening.address}, not 127.0.0.1`)
  }
  const server = processHandle(spec.name, child, listening.port)
  running.add(server)
  return server
}

function processHandle(name: string, child: ChildProcess, port: number): ServerProcess {
  const pid = child.pid as number
  const status = (field: 'VmRSS' | 'VmHWM') => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) * 1024 : Number.NaN
  }
  let canResetPeak = true
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  const server: ServerProcess = {
    name,
    pid,
    port,
    origin: `http://127.0.0.1:${port}`,
    rssBytes: () => status('VmRSS'),
    cpuSeconds: () => cpuSecondsOf(pid),
    peakRssBytes: () => status('VmHWM'),
    resetPeak() {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5')
      } catch {
        canResetPeak = false
      }
    },
    get canResetPeak() {
      return canResetPeak
    },
    async stop() {
      running.delete(server)
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
  return server
}

/** Clock ticks per second in /proc/<pid>/stat (USER_HZ); 100 on every Linux the bench is meant for. */
const USER_HZ = 100

/** User + system CPU time of a process so far, in seconds, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at state, field 3; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ
}

/** Stops every server this process started and has not stopped yet. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()))
}

/** Kills every child server at once, for a bench process that is exiting now. */
export function killAllServersNow(): void {
  for (const server of running) {
    try {
      process.kill(server.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  running.clear()
}

/** Runs `fn` with a started server and stops the server afterwards, whatever happens. */
export async function withServer<T>(spec: ServerSpec, fn: (server: ServerProcess) => Promise<T>): Promise<T> {
  const server = await startServer(spec)
  try {
    return await fn(server)
  } finally {
    await server.stop()
  }
}

/** Runs a child to completion and returns the `result` message it sends over IPC. */
export function runToResult<T>(
  name: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<T> {
  const child = spawn(process.execPath, args, {
    cwd: BENCH_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000)
  })
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} took over ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'result') {
        clearTimeout(timer)
        resolve(message as T)
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) without a result\n${stderr}`))
    })
  })
}
