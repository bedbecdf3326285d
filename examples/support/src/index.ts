export { demoApiKey, exampleAuth } from './auth.js'
export { configFromEnv, type ExampleConfig } from './config.js'
export { runDemoApp } from './demo-app.js'
export { type DemoResult, runDemo, SAMPLE_FILE } from './demo-flow.js'
export { exampleEventOptions } from './events.js'
export {
  type ExampleRunOptions,
  printToStdout,
  type RunningExample,
  type StartExample,
  type StartedExample,
} from './example.js'
export { createExampleKit, type ExampleKit } from './kit.js'
export { describeStore, storeFromUri } from './store.js'
export { type ExampleUpstream, exampleUpstream } from './upstream.js'
