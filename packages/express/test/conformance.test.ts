import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { type HostHarness, runConformanceSuite } from '@batchkit/conformance'
import express5 from 'express'
import express4 from 'express4'
import { createExpressRouter } from '../src/index.js'

/** Express 4 and 5 differ in routing and body parsing; the adapter must not care. */
function expressHarness(name: string, express: typeof express5): HostHarness {
  return {
    name,
    async start({ kit, mountPath, jsonBodyParser }) {
      const app = express()
      if (jsonBodyParser) app.use(express.json())
      app.get('/host-route', (_req, res) => {
        res.send('host')
      })
      app.use(mountPath, createExpressRouter(kit))
      const server = app.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return {
        origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        async close() {
          server.closeAllConnections()
          await new Promise((resolve) => server.close(resolve))
        },
      }
    },
  }
}

runConformanceSuite(expressHarness('Express 5', express5))
// Typed as Express 5: the harness uses only what both versions share.
runConformanceSuite(expressHarness('Express 4', express4 as unknown as typeof express5))
