import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { type HostHarness, runConformanceSuite } from '@batchkit/conformance'
import { bodyParser } from '@koa/bodyparser'
import Router from '@koa/router'
import Koa from 'koa'
import Koa2 from 'koa2'
import { createKoaMiddleware } from '../src/index.js'

/**
 * Koa with @koa/router serving its own route; @koa/bodyparser (when asked) mounted before batchkit,
 * the harder order, since the parser then reads JSON bodies first and hands its errors over through
 * `onBodyParserError`.
 */
function koaHarness(name: string, App: typeof Koa): HostHarness {
  return {
    name,
    async start({ kit, mountPath, jsonBodyParser }) {
      const app = new App()
      // The suite's clients abort uploads and downloads on purpose; Koa would log each as an error.
      app.silent = true
      const router = new Router()
      router.get('/host-route', (ctx) => {
        ctx.body = 'host'
      })
      const batchkit = createKoaMiddleware(kit, { prefix: mountPath })
      if (jsonBodyParser) app.use(bodyParser({ onError: batchkit.onBodyParserError }))
      app.use(batchkit)
      app.use(router.routes())
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

runConformanceSuite(koaHarness('Koa 3', Koa))
runConformanceSuite(koaHarness('Koa 2', Koa2))
