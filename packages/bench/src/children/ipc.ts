import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * Tells the bench (the parent, over IPC) where this child listens, and makes the child exit when
 * the bench asks (SIGTERM) or goes away (IPC disconnect), running `cleanUp` first.
 */
export function announce(server: Server, cleanUp: () => Promise<void> = async () => undefined): void {
  const { port, address } = server.address() as AddressInfo
  process.send?.({ type: 'listening', port, address })
  let exiting = false
  const exit = () => {
    if (exiting) return
    exiting = true
    server.closeAllConnections()
    server.close()
    const timer = setTimeout(() => process.exit(0), 10_000)
    timer.unref()
    cleanUp()
      .catch((error) => process.stderr.write(`clean-up failed: ${String(error)}\n`))
      .finally(() => process.exit(0))
  }
  process.once('SIGTERM', exit)
  process.once('SIGINT', exit)
  process.once('disconnect', exit)
}

/** Listens on 127.0.0.1 only, on a free port. */
export function listenOnLoopback(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}
