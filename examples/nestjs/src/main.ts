import { configFromEnv } from '@batchkit/example-support'
import { startExample } from './server.js'

const example = await startExample(configFromEnv())
// On SIGINT or SIGTERM, Nest closes the app: the kit, the store and the fake upstream with it.
example.app.enableShutdownHooks()
