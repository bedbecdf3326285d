import { type ExampleConfig, exampleAuth, exampleEventOptions, printToStdout } from '@batchkit/example-support'
import { BatchKitModule } from '@batchkit/nestjs'
import { type DynamicModule, Module } from '@nestjs/common'
import { ConfigModule, ConfigService } from '@nestjs/config'
import { Backend, BackendModule, RUN_OPTIONS, type RunOptions, type Settings } from './backend.module.js'
import { ReportsModule } from './reports.js'

/** The example app: batchkit at `/v1`, configured through `@nestjs/config`, and a feature of its own. */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static factory
export class AppModule {
  /** The app on `config` (read from the environment by `configFromEnv`, as in every example). */
  static register(config: ExampleConfig, options: RunOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [(): Settings => ({ example: config })] }),
        BackendModule.register(options),
        BatchKitModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService, Backend, RUN_OPTIONS],
          useFactory: (settings: ConfigService<Settings, true>, backend: Backend, { log, printEvent }: RunOptions) => ({
            store: backend.store,
            providers: backend.upstream.providers,
            models: backend.upstream.models,
            // BATCHKIT_API_KEYS as `key:owner` pairs; without them, one shared owner and a loud warning.
            authenticate: exampleAuth(settings.get('example', { infer: true }), log),
            // Every event as one JSON line; BATCHKIT_POLL_INTERVAL_MS paces the tracker.
            ...exampleEventOptions(settings.get('example', { infer: true }), printEvent ?? printToStdout),
            path: '/v1',
          }),
        }),
        ReportsModule,
      ],
    }
  }
}
