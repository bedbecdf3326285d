import {
  type ExampleConfig,
  type ExampleRunOptions,
  type ExampleUpstream,
  exampleUpstream,
  storeFromUri,
} from '@batchkit/example-support'
import { type DynamicModule, Module, type OnApplicationShutdown } from '@nestjs/common'
import { ConfigService } from '@nestjs/config'
import type { Keyv } from 'keyv'

/** The app's settings in Nest's `ConfigService`: the environment contract every example shares. */
export interface Settings {
  example: ExampleConfig
}

/** How the app is run, besides its settings. */
export interface RunOptions extends ExampleRunOptions {
  /** Where the app's start-up lines go (the fake upstream, the no-keys warning, the address). */
  log: (line: string) => void
}

/** The run options, for the providers that log. */
export const RUN_OPTIONS = Symbol('RunOptions')

/**
 * What batchkit runs on, made from the settings: the upstream (OpenAI, or the fake one when there is
 * no key) and the Keyv store. Both are the app's to close, so it closes them on shutdown; the kit
 * itself is closed by BatchKitModule.
 */
export class Backend implements OnApplicationShutdown {
  private constructor(
    readonly upstream: ExampleUpstream,
    readonly store: Keyv,
  ) {}

  static async start(config: ConfigService<Settings, true>, { log, fakeStepMs }: RunOptions): Promise<Backend> {
    const settings = config.get('example', { infer: true })
    return new Backend(await exampleUpstream(settings, log, fakeStepMs), storeFromUri(settings.store))
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.disconnect()
    await this.upstream.close()
  }
}

/** Provides {@link Backend} and the run options app-wide. */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static factory
export class BackendModule {
  static register(options: RunOptions): DynamicModule {
    return {
      module: BackendModule,
      global: true,
      providers: [
        { provide: RUN_OPTIONS, useValue: options },
        {
          provide: Backend,
          inject: [ConfigService],
          useFactory: (config: ConfigService<Settings, true>) => Backend.start(config, options),
        },
      ],
      exports: [Backend, RUN_OPTIONS],
    }
  }
}
