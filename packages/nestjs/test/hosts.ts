import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { HostHarness, StartedHost } from '@batchkit/conformance'
import type { BatchKit } from '@batchkit/core'
import { Controller, Get, type INestApplication, Module } from '@nestjs/common'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { BATCH_KIT, BatchKitModule } from '../src/index.js'

@Controller()
class HostController {
  @Get('host-route')
  host(): string {
    return 'host'
  }
}

/** The platforms the module runs on. */
export type Platform = 'express' | 'fastify'
export const platforms: Record<Platform, () => ExpressAdapter | FastifyAdapter> = {
  express: () => new ExpressAdapter(),
  fastify: () => new FastifyAdapter(),
}

/**
 * A Nest app on `platform` with Nest's default body parsers, its own `GET /host-route` (outside the
 * global prefix), and the module serving `kit`: `mountPath` is realised as global prefix plus the
 * module's `path` (`/api/v1` = prefix `api` + `/v1`; `/v1` = no prefix + `/v1`).
 */
export async function startNest(platform: Platform, kit: BatchKit, mountPath: string): Promise<StartedHost> {
  const cut = mountPath.lastIndexOf('/')
  const prefix = mountPath.slice(0, cut)
  const path = mountPath.slice(cut)

  @Module({ imports: [BatchKitModule.forRoot({ providers: {}, path })], controllers: [HostController] })
  class AppModule {}

  // The suite hands over its own kit; the module's factory would otherwise build one from the options.
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(BATCH_KIT)
    .useValue(kit)
    .compile()
  const app: INestApplication = moduleRef.createNestApplication(platforms[platform](), { logger: false })
  if (prefix) app.setGlobalPrefix(prefix, { exclude: ['host-route'] })
  await app.listen(0, '127.0.0.1')
  const server: Server = app.getHttpServer()
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections()
      await app.close()
    },
  }
}

/**
 * The suite's harness for Nest on `platform`. Nest's body parsers stay on for every host, whatever
 * `jsonBodyParser` says: that is how Nest apps run, and no one should have to turn them off. So on
 * Express the whole suite runs behind Nest's JSON parser (a parsed body handed over as `parsedBody`),
 * while on Fastify, which parses only after middleware, the core reads every body itself.
 */
export function nestHarness(platform: Platform, name: string): HostHarness {
  return { name, start: ({ kit, mountPath }) => startNest(platform, kit, mountPath) }
}
