import { runConformanceSuite } from '@batchkit/conformance'
import { nestHarness } from './hosts.js'

runConformanceSuite(nestHarness('express', 'NestJS on platform-express'))
runConformanceSuite(nestHarness('fastify', 'NestJS on platform-fastify'))
