import { nodeHttpHarness, runConformanceSuite } from '../src/index.js'

runConformanceSuite(nodeHttpHarness)
