import { type BatchKit, type BatchKitOptions, createBatchKit } from '@batchkit/core'
import { exampleAuth } from './auth.js'
import type { ExampleConfig } from './config.js'
import { exampleEventOptions } from './events.js'
import { type ExampleRunOptions, printToStdout } from './example.js'
import { storeFromUri } from './store.js'
import { exampleUpstream } from './upstream.js'

/** A kit made from the example settings, and how to release what it runs on. */
export interface ExampleKit {
  kit: BatchKit
  /** Closes the kit, then the store and the fake upstream (if one was started). */
  close(): Promise<void>
}

/** `BATCHKIT_BUDGETS` as batchkit's budgets: each owner's limit for every month; owners not named have none. */
function exampleBudgets(config: ExampleConfig): Pick<BatchKitOptions, 'budgets'> {
  const limits = config.budgets
  return limits ? { budgets: { limitFor: (owner) => (Object.hasOwn(limits, owner) ? limits[owner] : undefined) } } : {}
}

/**
 * The kit every example mounts, from the environment contract: providers and the model list,
 * the store, API keys, events on standard output and the tracker's pace.
 */
export async function createExampleKit(
  config: ExampleConfig,
  log: (line: string) => void,
  options: ExampleRunOptions = {},
): Promise<ExampleKit> {
  const upstream = await exampleUpstream(config, log, options.fakeStepMs)
  const store = storeFromUri(config.store)
  const kit = createBatchKit({
    store,
    providers: upstream.providers,
    models: upstream.models,
    authenticate: exampleAuth(config, log),
    limits: config.limits,
    ...(config.requestRetries > 0 ? { requestRetries: { attempts: config.requestRetries } } : {}),
    ...exampleEventOptions(config, options.printEvent ?? printToStdout),
    ...exampleBudgets(config),
  })
  return {
    kit,
    async close() {
      await kit.close()
      await store.disconnect()
      await upstream.close()
    },
  }
}
