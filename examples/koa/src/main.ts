import { configFromEnv } from '@batchkit/example-support'
import { startExample } from './server.js'

const example = await startExample(configFromEnv())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void example.close().then(() => process.exit(0))
  })
}
