import { connect } from 'node:net'

/** The Redis the bench uses for its Redis rows; loopback only. */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** The version of the Redis at {@link REDIS_URL} (from `INFO server`), or undefined when none answers in 2 s. */
export function redisVersion(url = REDIS_URL): Promise<string | undefined> {
  const { hostname, port } = new URL(url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
    return Promise.reject(new Error(`the bench only talks to a Redis on loopback, not ${url}`))
  }
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) })
    let reply = ''
    const done = (version: string | undefined) => {
      socket.destroy()
      resolve(version)
    }
    socket.setTimeout(2_000, () => done(undefined))
    socket.on('error', () => done(undefined))
    socket.on('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'))
    socket.setEncoding('utf8').on('data', (text: string) => {
      reply += text
      const match = /redis_version:([^\r\n]+)/.exec(reply)
      if (match) done(match[1])
    })
  })
}
