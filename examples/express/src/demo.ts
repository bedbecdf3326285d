// The quick start's main job: start the example app on its embedded defaults and run one batch
// through it end to end with OpenAI's own client, printing each step.
import { configFromEnv, demoApiKey, runDemo } from '@batchkit/example-support'
import { startExample } from './server.js'

const config = configFromEnv({ PORT: '0', ...process.env })
const example = await startExample(config, (line) => console.log(line), { fakeStepMs: 700 })
try {
  await runDemo(example.baseURL, demoApiKey(config), (line) => console.log(line))
  console.log('demo finished: upload, batch, progress and output all went through batchkit.')
} finally {
  await example.close()
}
