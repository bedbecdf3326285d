import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A `redis-server` of a test's own, on a free loopback port with its own directory and no
 * persistence, for tests that freeze, kill and restart their store: the shared Redis is never
 * touched.
 */
export class OwnRedis {
  private process: ChildProcess | undefined

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** Starts a server, or returns undefined when `redis-server` cannot be run here. */
  static async start(): Promise<OwnRedis | undefined> {
    const redis = new OwnRedis(await freePort(), await mkdtemp(join(tmpdir(), 'batchkit-redis-')))
    return (await redis.restart()) ? redis : undefined
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** (Re)starts the server on the same port and directory; whether it answers within 5 s. */
  async restart(): Promise<boolean> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    this.process = child
    const failed = once(child, 'error').then(() => false)
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        if (await pings(this.port)) return true
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return false
    })()
    return Promise.race([ready, failed])
  }

  /** Sends a signal to the server: `SIGSTOP` freezes it, `SIGCONT` thaws it, `SIGKILL` ends it. */
  signal(signal: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL'): void {
    this.process?.kill(signal)
  }

  /** Stops the server (thawing it first, should it be frozen) and removes its directory. */
  async stop(): Promise<void> {
    const child = this.process
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    await rm(this.dir, { recursive: true, force: true })
  }
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

function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
    socket.once('error', () => done(false))
  })
}
