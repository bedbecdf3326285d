import { exampleSmokeSuite } from '@batchkit/example-support/smoke-suite'
import { startExample } from '../src/server.js'

exampleSmokeSuite('Koa', startExample)
