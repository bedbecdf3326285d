// The quick start's main job: start this example on its embedded defaults and run one batch through it
// end to end with OpenAI's own client, printing each step and each event.
import { runDemoApp } from '@batchkit/example-support'
import { startExample } from './server.js'

await runDemoApp(startExample)
