import { Agent, type Dispatcher, request } from 'undici'
import type { Target } from './targets.js'

/** A keep-alive client for one target, with up to `connections` sockets. */
export function clientAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, pipelining: 1 })
}

/** A JSON call to a target; any status but 200 throws, with the body's first bytes. */
export async function callJson<T = Record<string, unknown>>(
  dispatcher: Dispatcher,
  target: Target,
  method: Dispatcher.HttpMethod,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await request(target.baseURL + path, {
    method,
    dispatcher,
    headers: body === undefined ? target.headers : { ...target.headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.body.text()
  if (response.statusCode !== 200) {
    throw new Error(`${method} ${path} on ${target.label}: ${response.statusCode} ${text.slice(0, 300)}`)
  }
  return JSON.parse(text) as T
}
