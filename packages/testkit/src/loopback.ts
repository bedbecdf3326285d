import { rm } from 'node:fs/promises'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { isIP } from 'node:net'

/** Throws unless `host` is a loopback address: the fakes never listen anywhere else. */
export function assertLoopback(fake: string, host: string): void {
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
  if (!loopback) throw new Error(`${fake} only binds loopback addresses, not '${host}'`)
}

/** Throws unless `progress` is `'per-poll'` or a number of milliseconds. */
export function assertProgress(progress: 'per-poll' | number): void {
  if (progress !== 'per-poll' && !(Number.isFinite(progress) && progress >= 0)) {
    throw new RangeError(`progress must be 'per-poll' or a number of milliseconds, got ${String(progress)}`)
  }
}

/** Largest JSON request body a fake reads; their creation bodies are tiny. */
const MAX_JSON_BODY_BYTES = 1024 * 1024

/**
 * Reads and parses a JSON request body (an empty body is `{}`), throwing the fake's own errors for
 * a body that is too large or not JSON.
 */
export async function readJsonRequest(
  req: IncomingMessage,
  errors: { tooLarge: () => Error; unparseable: () => Error },
): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_JSON_BODY_BYTES) throw errors.tooLarge()
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text)
  } catch {
    throw errors.unparseable()
  }
}

/**
 * Stops an OpenAI-style fake once, however often it is asked: the batch runner, the requests left
 * hanging on purpose, the servers, and the data directory when the fake made it.
 */
export function stopper(parts: {
  runner: { close(): void; settled(): Promise<void> }
  hanging: ReadonlySet<ServerResponse>
  servers: Server[]
  dataDir: string
  ownsDataDir: boolean
}): () => Promise<void> {
  let closing: Promise<void> | undefined
  return () => {
    closing ??= (async () => {
      parts.runner.close()
      for (const res of parts.hanging) res.socket?.destroy()
      const stopped = Promise.all(
        parts.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      )
      for (const server of parts.servers) server.closeAllConnections()
      await stopped
      await parts.runner.settled()
      if (parts.ownsDataDir) await rm(parts.dataDir, { recursive: true, force: true })
    })()
    return closing
  }
}
