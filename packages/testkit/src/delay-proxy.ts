import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { assertLoopback } from './loopback.js'

/** Options of {@link startDelayProxy}. */
export interface DelayProxyOptions {
  /** Where to forward: a loopback host and port. */
  target: { host: string; port: number }
  /** How long every chunk of the answer waits before it is passed on, as a distant provider's would. */
  responseDelayMs: number
}

/** A running {@link startDelayProxy}. */
export interface DelayProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number
  /** Replaces `target`'s `host:port` in a URL with the proxy's. */
  url(targetUrl: string): string
  close(): Promise<void>
}

/**
 * A TCP proxy on loopback that passes requests on at once and holds every answer back by a fixed
 * delay: a provider's real latency for benchmarks, and a window in which a test can kill a client
 * process after the provider has done what it asked but before the client has heard so.
 */
export async function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  assertLoopback('startDelayProxy', options.target.host)
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(options.target)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      socket.on('error', () => undefined)
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      setTimeout(() => {
        if (!client.destroyed) client.write(chunk)
      }, options.responseDelayMs)
    })
    upstream.once('end', () => setTimeout(() => client.end(), options.responseDelayMs))
    client.once('close', () => upstream.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: (targetUrl) => {
      const url = new URL(targetUrl)
      url.host = `127.0.0.1:${port}`
      return url.toString().replace(/\/$/, '')
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
