import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import {
  createExampleKit,
  describeStore,
  type ExampleConfig,
  type ExampleRunOptions,
  type RunningExample,
} from '@batchkit/example-support'
import { createKoaMiddleware } from '@batchkit/koa'
import { bodyParser } from '@koa/bodyparser'
import Router from '@koa/router'
import Koa from 'koa'

/** Starts the Koa app with batchkit answering under `/v1`, beside the app's own router. */
export async function startExample(
  config: ExampleConfig,
  log: (line: string) => void = (line) => console.log(line),
  options: ExampleRunOptions = {},
): Promise<RunningExample> {
  const { kit, close } = await createExampleKit(config, log, options)

  const app = new Koa()
  const router = new Router()
  router.get('/health', (ctx) => {
    ctx.body = { ok: true }
  })
  // The app's own JSON parser may come first: batchkit uses what it parsed, streams uploads itself, and
  // answers the parser's errors on its own routes with OpenAI's envelope (the app's routes keep Koa's).
  const batchkit = createKoaMiddleware(kit, { prefix: '/v1' })
  app.use(bodyParser({ onError: batchkit.onBodyParserError }))
  app.use(batchkit)
  app.use(router.routes())
  const server = app.listen(config.port, '127.0.0.1')
  await once(server, 'listening')
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  log(`batchkit on Koa listening on ${baseURL} (store: ${describeStore(config.store)})`)

  return {
    baseURL,
    kit,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await close()
    },
  }
}
