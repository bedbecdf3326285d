import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import {
  createExampleKit,
  describeStore,
  type ExampleConfig,
  type ExampleRunOptions,
  type RunningExample,
} from '@batchkit/example-support'
import { createExpressRouter } from '@batchkit/express'
import express from 'express'

/** Starts the Express app with batchkit mounted at `/v1`. */
export async function startExample(
  config: ExampleConfig,
  log: (line: string) => void = (line) => console.log(line),
  options: ExampleRunOptions = {},
): Promise<RunningExample> {
  const { kit, close } = await createExampleKit(config, log, options)

  const app = express()
  app.use('/v1', createExpressRouter(kit))
  const server = app.listen(config.port, '127.0.0.1')
  await once(server, 'listening')
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  log(`batchkit on Express listening on ${baseURL} (store: ${describeStore(config.store)})`)

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
