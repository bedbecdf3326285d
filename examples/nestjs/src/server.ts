import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BatchKit } from '@batchkit/core'
import {
  describeStore,
  type ExampleConfig,
  type ExampleRunOptions,
  type RunningExample,
} from '@batchkit/example-support'
import { BATCH_KIT } from '@batchkit/nestjs'
import type { INestApplication } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { AppModule } from './app.module.js'

/** The running Nest app, beside what every example gives. */
export interface RunningNestExample extends RunningExample {
  /** The app's own root, for its own routes (`/reports/usage`). */
  origin: string
  app: INestApplication
}

/** Starts the Nest app (on platform-express) with batchkit answering under `/v1`. */
export async function startExample(
  config: ExampleConfig,
  log: (line: string) => void = (line) => console.log(line),
  options: ExampleRunOptions = {},
): Promise<RunningNestExample> {
  const app = await NestFactory.create(AppModule.register(config, { log, ...options }), {
    logger: ['error', 'warn'],
    // Close keep-alive connections on app.close(), so shutting down never waits for idle clients.
    forceCloseConnections: true,
  })
  await app.listen(config.port, '127.0.0.1')
  const origin = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`
  const baseURL = `${origin}/v1`
  log(`batchkit on NestJS listening on ${baseURL} (store: ${describeStore(config.store)})`)
  // Closing the app closes the kit (BatchKitModule), the store and the upstream (Backend).
  return { baseURL, origin, app, kit: app.get<BatchKit>(BATCH_KIT), close: () => app.close() }
}
