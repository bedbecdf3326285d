// The quick start's main job: start the example app on its embedded defaults and run one batch
// through it end to end with OpenAI's own client, printing each step.
import { parseApiKeys } from '@batchkit/core'
import { configFromEnv } from './config.js'
import { runDemo } from './demo-flow.js'
import { startExample } from './server.js'

const config = configFromEnv({ PORT: '0', ...process.env })
const example = await startExample(config, (line) => console.log(line), { fakeStepMs: 700 })
try {
  const apiKey = config.apiKeys ? (Object.keys(parseApiKeys(config.apiKeys))[0] as string) : 'sk-demo'
  await runDemo(example.baseURL, apiKey, (line) => console.log(line))
  console.log('demo finished: upload, batch, progress and output all went through batchkit.')
} finally {
  await example.close()
}
