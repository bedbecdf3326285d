import type { IncomingMessage, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { apiKeyAuth, type BatchKit, createBatchKit, openai } from '@batchkit/core'
import { type FakeOpenAI, startFakeOpenAI } from '@batchkit/testkit'
import {
  Controller,
  Get,
  type INestApplication,
  Inject,
  Injectable,
  Module,
  Post,
  VersioningType,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { Test } from '@nestjs/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { BATCH_KIT, BatchKitModule, InjectBatchKit } from '../src/index.js'
import { type Platform, platforms } from './hosts.js'

const ALICE = 'sk-module-alice'
const line = `${JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } })}\n`

let fake: FakeOpenAI
beforeAll(async () => {
  fake = await startFakeOpenAI()
})
afterAll(() => fake?.close())

/** Stands in for the app's configuration module (`@nestjs/config` in the example). */
@Module({
  providers: [{ provide: 'SETTINGS', useFactory: () => ({ keys: { [ALICE]: 'alice' }, path: '/openai' }) }],
  exports: ['SETTINGS'],
})
class SettingsModule {}

/** The app's own code using the kit, in a module that does not import BatchKitModule (it is global). */
@Injectable()
class Uploads {
  constructor(@InjectBatchKit() private readonly kit: BatchKit) {}
  async uploadFor(owner: string) {
    return this.kit.files.create({ owner }, { file: Readable.from([line]), filename: 'code.jsonl', purpose: 'batch' })
  }
}

@Controller('own')
class OwnController {
  @Post('echo')
  echo(): string {
    return 'own'
  }
  @Get('ping')
  ping(): string {
    return 'pong'
  }
}

@Module({ providers: [Uploads], exports: [Uploads], controllers: [OwnController] })
class FeatureModule {}

@Module({
  imports: [
    BatchKitModule.forRootAsync({
      imports: [SettingsModule],
      inject: ['SETTINGS'],
      useFactory: (settings: { keys: Record<string, string>; path: string }) => ({
        providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
        authenticate: apiKeyAuth(settings.keys),
        path: settings.path,
        onError: () => undefined,
      }),
    }),
    FeatureModule,
  ],
})
class AppModule {}

/** A response's JSON, as the API's list or error object. */
async function json(response: Response): Promise<{ data: { id: string }[]; error: object }> {
  return (await response.json()) as { data: { id: string }[]; error: object }
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1')
  return `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`
}

describe.each(Object.keys(platforms) as Platform[])('BatchKitModule on platform-%s', (platform) => {
  let app: INestApplication
  let origin: string
  beforeAll(async () => {
    app = await NestFactory.create(AppModule, platforms[platform](), { logger: false })
    app.setGlobalPrefix('api')
    app.enableVersioning({ type: VersioningType.URI, defaultVersion: '2' })
    // Another middleware of the app's, failing some requests the way Express middleware does.
    app.use((req: IncomingMessage, _res: unknown, next: (error?: unknown) => void) =>
      req.headers['x-deny'] ? next(Object.assign(new Error('denied'), { status: 403 })) : next(),
    )
    origin = await listen(app)
  })
  afterAll(async () => {
    ;(app?.getHttpServer() as Server | undefined)?.closeAllConnections()
    await app?.close()
  })

  it('configures from forRootAsync, serves at prefix + path, and injects the same kit into app code', async () => {
    const file = await app.get(Uploads).uploadFor('alice')
    const auth = { authorization: `Bearer ${ALICE}` }
    const list = await fetch(`${origin}/api/openai/files`, { headers: auth })
    expect(list.status).toBe(200)
    expect((await json(list)).data.map((f) => f.id)).toEqual([file.id])
    expect((await fetch(`${origin}/openai/files`, { headers: auth })).status).toBe(404)
    expect((await fetch(`${origin}/api/v2/own/ping`)).status).toBe(200)
  })

  it("answers malformed and oversize JSON on the API's routes with OpenAI's errors, and leaves other routes to Nest", async () => {
    const post = (path: string, body: string) =>
      fetch(origin + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json' },
        body,
      })
    const malformed = await post('/api/openai/batches', '{"input_file_id":')
    expect(malformed.status).toBe(400)
    expect((await json(malformed)).error).toMatchObject({ code: 'invalid_json', type: 'invalid_request_error' })
    // Above the limit of Nest's JSON parser on Express (100 kB), which reads the body first there; on
    // Fastify the core reads it (limit 1 MiB) and goes on to validate it.
    const large = await post('/api/openai/batches', JSON.stringify({ metadata: { x: 'y'.repeat(200_000) } }))
    expect((await json(large)).error).toMatchObject(
      platform === 'express' ? { code: 'request_too_large' } : { param: 'input_file_id' },
    )
    expect(large.status).toBe(platform === 'express' ? 413 : 400)
    const own = await post('/api/v2/own/echo', '{"broken":')
    expect(own.status).toBe(400)
    expect(await json(own)).toMatchObject({ statusCode: 400 })
  })

  it('never serves a request another middleware failed, whatever the body', async () => {
    for (const init of [
      {},
      { method: 'POST', body: '{"input_file_id":', headers: { 'content-type': 'application/json' } },
    ]) {
      const headers = { ...init.headers, authorization: `Bearer ${ALICE}`, 'x-deny': '1' }
      const response = await fetch(`${origin}/api/openai/batches`, { ...init, headers })
      expect(response.status).toBe(500)
      expect(response.headers.get('x-request-id')).toBeNull()
    }
  })

  it('closes the kit it built on shutdown, once', async () => {
    const other = await NestFactory.create(AppModule, platforms[platform](), { logger: false })
    await other.init()
    const kit = other.get<BatchKit>(BATCH_KIT)
    const close = vi.spyOn(kit, 'close')
    await other.close()
    expect(close).toHaveBeenCalledTimes(1)
  })
})

describe('BatchKitModule options', () => {
  it('mounts at the root of the global prefix with path "/", and leaves a provided kit to its owner', async () => {
    const kit = createBatchKit({ providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) } })
    const close = vi.spyOn(kit, 'close')
    const moduleRef = await Test.createTestingModule({
      imports: [BatchKitModule.forRoot({ providers: {}, path: '/' })],
    })
      .overrideProvider(BATCH_KIT)
      .useValue(kit)
      .compile()
    const app = moduleRef.createNestApplication({ logger: false })
    app.setGlobalPrefix('/openai/')
    const origin = await listen(app)
    expect((await fetch(`${origin}/openai/batches`)).status).toBe(200)
    expect((await fetch(`${origin}/batches`)).status).toBe(404)
    ;(app.getHttpServer() as Server).closeAllConnections()
    await app.close()
    expect(close).not.toHaveBeenCalled()
    await kit.close()
  })

  it('is global unless asked not to be', async () => {
    @Injectable()
    class NeedsKit {
      constructor(@Inject(BATCH_KIT) readonly kit: BatchKit) {}
    }
    @Module({ providers: [NeedsKit] })
    class Feature {}
    const compile = (isGlobal?: boolean) =>
      Test.createTestingModule({
        imports: [
          BatchKitModule.forRoot({ providers: { openai: openai({ apiKey: 'sk-unused' }) }, isGlobal }),
          Feature,
        ],
      }).compile()
    const moduleRef = await compile()
    expect(moduleRef.get(NeedsKit).kit).toBe(moduleRef.get(BATCH_KIT))
    await moduleRef.close()
    await expect(compile(false)).rejects.toThrow(/can't resolve dependencies of the NeedsKit/i)
  })
})
