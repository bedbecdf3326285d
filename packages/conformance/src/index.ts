export type { HostHarness, HostOptions, StartedHost } from './harness.js'
export { generatedJsonl, peakRssGrowth } from './memory.js'
export { nodeHttpHarness } from './node-http.js'
export { runConformanceSuite } from './suite.js'
