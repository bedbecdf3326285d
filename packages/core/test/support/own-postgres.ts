import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { chown, mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A PostgreSQL server of a test's own: its own data directory in a temporary folder, a free
 * loopback port and its own socket directory, for tests that freeze, kill and restart their store.
 * Only the processes of this server are ever signalled (its postmaster, read from its own
 * `postmaster.pid`, and that postmaster's children): the shared server is never touched.
 *
 * `initdb` and `postgres` refuse to run as root, so as root they run as the `postgres` user through
 * `runuser`. Signals go to the postmaster itself, never to the `runuser` wrapper, which would not
 * pass them on.
 */
export class OwnPostgres {
  private wrapper: ChildProcess | undefined
  private postmaster: number | undefined
  /** The postmaster that ran last, whose stale `postmaster.pid` a restart must not take for the new one. */
  private lastPid: number | undefined
  /** The last lines the server wrote on stderr, for error messages. */
  private log = ''

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly bin: string,
  ) {}

  /**
   * Creates a cluster and starts it: the server, or why it cannot run here (no PostgreSQL binaries,
   * no `runuser` or `postgres` user when running as root, a server that would not start).
   */
  static async start(): Promise<OwnPostgres | string> {
    const bin = postgresBin()
    if (!bin) return 'no PostgreSQL binaries (initdb, postgres) under /usr/lib/postgresql/*/bin or BATCHKIT_TEST_PG_BIN'
    if (!existsSync('/proc/self/stat')) return 'finding the processes of a PostgreSQL server needs /proc (Linux)'
    const asRoot = process.getuid?.() === 0
    let owner: { uid: number; gid: number } | undefined
    if (asRoot) {
      if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser'))
        return 'running as root, and no runuser to start PostgreSQL as the postgres user'
      try {
        owner = {
          uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
          gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
        }
      } catch {
        return 'running as root, and there is no postgres user to run PostgreSQL as'
      }
    }
    const dir = await mkdtemp(join(tmpdir(), 'batchkit-pg-'))
    const server = new OwnPostgres(await freePort(), dir, bin)
    live.add(server)
    try {
      if (owner) await chown(dir, owner.uid, owner.gid)
      const initdb = asPostgres(join(bin, 'initdb'), [
        ...['-D', server.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'],
      ])
      execFileSync(initdb.command, initdb.args, { stdio: 'pipe', timeout: 30_000 })
    } catch (error) {
      await server.stop()
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
      return `initdb failed: ${stderr || String(error)}`
    }
    if (await server.restart()) return server
    const why = `postgres did not start: ${server.log.trim() || 'no output'}`
    await server.stop()
    return why
  }

  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`
  }

  /** The postmaster's process id while the server runs. */
  get pid(): number | undefined {
    return this.postmaster
  }

  private get dataDir(): string {
    return join(this.dir, 'data')
  }

  /**
   * (Re)starts the server on the same port and data directory (running crash recovery after a
   * kill); whether it accepts connections within 15 s.
   */
  async restart(): Promise<boolean> {
    const previous = this.postmaster ?? this.lastPid
    this.postmaster = undefined
    const { command, args } = asPostgres(join(this.bin, 'postgres'), [
      ...['-D', this.dataDir, '-p', String(this.port), '-k', this.dir],
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=16MB'],
      ...['-c', 'max_connections=50', '-c', 'log_min_messages=warning'],
      // Dynamic shared memory in the data directory, not /dev/shm: a killed server leaves none behind.
      ...['-c', 'dynamic_shared_memory_type=mmap'],
    ])
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    this.wrapper = child
    child.stderr?.on('data', (data: Buffer) => {
      this.log = (this.log + data.toString()).slice(-4000)
    })
    const ended = new Promise<boolean>((resolve) => {
      child.once('error', () => resolve(false))
      child.once('exit', () => resolve(false))
    })
    const ready = (async () => {
      for (let i = 0; i < 300 && child.exitCode === null && child.signalCode === null; i++) {
        const status = this.pidFile()
        // Line 8 of postmaster.pid says `ready` once the server accepts connections (PostgreSQL 10+).
        if (status && status.pid !== previous && status.ready && alive(status.pid)) {
          this.postmaster = status.pid
          this.lastPid = status.pid
          return true
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return false
    })()
    return Promise.race([ready, ended])
  }

  /** Freezes the server: the postmaster first (so it forks nothing more), then every backend. */
  freeze(): void {
    const pid = this.postmaster
    if (pid === undefined) return
    signal(pid, 'SIGSTOP')
    for (const child of childrenOf(pid)) signal(child, 'SIGSTOP')
  }

  /** Thaws a frozen server: its backends, then the postmaster. */
  thaw(): void {
    const pid = this.postmaster
    if (pid === undefined) return
    for (const child of childrenOf(pid)) signal(child, 'SIGCONT')
    signal(pid, 'SIGCONT')
    this.continueWrapper()
  }

  /**
   * `runuser` stops itself when the postmaster is stopped (job control, as `su` does), and while
   * stopped it cannot notice that the postmaster ended.
   */
  private continueWrapper(): void {
    const wrapper = this.wrapper
    if (wrapper?.pid !== undefined && wrapper.exitCode === null && wrapper.signalCode === null)
      signal(wrapper.pid, 'SIGCONT')
  }

  /**
   * Kills the server as a crash would: SIGKILL to the postmaster and to every one of its
   * processes, at once, nothing flushed or shut down. Resolves once they are all gone, so that
   * {@link restart} finds no process still attached to the old shared memory.
   */
  async kill(): Promise<void> {
    const pid = this.postmaster
    if (pid === undefined) return
    this.postmaster = undefined
    // Stopped first, so it forks no process after its children are listed.
    signal(pid, 'SIGSTOP')
    const all = [pid, ...childrenOf(pid)]
    for (const each of all) signal(each, 'SIGKILL')
    for (let i = 0; i < 200 && all.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 25))
    this.continueWrapper()
    const wrapper = this.wrapper
    if (wrapper && wrapper.exitCode === null && wrapper.signalCode === null) await once(wrapper, 'exit')
  }

  /**
   * Stops the server (an immediate shutdown, thawing it first should it be frozen; SIGKILL if it
   * does not end within 5 s) and removes its directory.
   */
  async stop(): Promise<void> {
    const pid = this.postmaster
    if (pid !== undefined) {
      this.thaw()
      signal(pid, 'SIGQUIT')
      for (let i = 0; i < 200 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 25))
      if (alive(pid)) await this.kill()
      this.postmaster = undefined
    }
    const wrapper = this.wrapper
    if (wrapper && wrapper.exitCode === null && wrapper.signalCode === null) {
      wrapper.kill('SIGCONT')
      wrapper.kill('SIGKILL')
      await once(wrapper, 'exit')
    }
    this.removeOrphanedSegment()
    rmSync(this.dir, { recursive: true, force: true })
    live.delete(this)
  }

  /**
   * After a kill with no restart, the server's small System V shared memory segment stays behind
   * (a restart on the same directory would remove it): its id is on line 7 of the stale
   * `postmaster.pid`, which a clean shutdown removes.
   */
  private removeOrphanedSegment(): void {
    try {
      const lines = readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')
      if (alive(Number(lines[0]))) return
      const shmid = lines[6]?.trim().split(/\s+/)[1]
      if (shmid && /^\d+$/.test(shmid)) execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore' })
    } catch {
      // No stale pid file (a clean shutdown), or the segment is already gone.
    }
  }

  /** What the server's `postmaster.pid` says: its process id and whether it accepts connections. */
  private pidFile(): { pid: number; ready: boolean } | undefined {
    try {
      const lines = readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')
      const pid = Number(lines[0])
      return Number.isInteger(pid) && pid > 0 ? { pid, ready: lines[7]?.trim() === 'ready' } : undefined
    } catch {
      return undefined
    }
  }

  /** Last resort when the process exits without `stop`: no server of ours outlives the tests. */
  killNow(): void {
    const pid = this.postmaster
    if (pid !== undefined) {
      const all = [pid, ...childrenOf(pid)]
      for (const each of all) signal(each, 'SIGCONT')
      for (const each of all) signal(each, 'SIGKILL')
    }
    this.wrapper?.kill('SIGCONT')
    this.wrapper?.kill('SIGKILL')
    this.removeOrphanedSegment()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

const live = new Set<OwnPostgres>()
process.once('exit', () => {
  for (const server of live) server.killNow()
})

/** The directory holding `initdb` and `postgres`: BATCHKIT_TEST_PG_BIN, else the newest under /usr/lib/postgresql. */
function postgresBin(): string | undefined {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))
  const fromEnv = process.env.BATCHKIT_TEST_PG_BIN
  if (fromEnv) return has(fromEnv) ? fromEnv : undefined
  let versions: string[] = []
  try {
    versions = readdirSync('/usr/lib/postgresql')
  } catch {
    return undefined
  }
  return versions
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    .map((version) => join('/usr/lib/postgresql', version, 'bin'))
    .find(has)
}

/** A PostgreSQL command line, as the `postgres` user when this process runs as root. */
function asPostgres(command: string, args: string[]): { command: string; args: string[] } {
  return process.getuid?.() === 0
    ? { command: 'runuser', args: ['-u', 'postgres', '--', command, ...args] }
    : { command, args }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // Already gone.
  }
}

/** Whether a process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** The processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces, in parentheses): state, then parent id.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (parent === pid) children.push(Number(entry))
    } catch {
      // Ended while listing.
    }
  }
  return children
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
