// The quick start's main job on NestJS: start the example app on its embedded defaults and run one
// batch through it end to end with OpenAI's own client, then ask the app's own report route.
import { configFromEnv, demoApiKey, runDemo } from '@batchkit/example-support'
import { startExample } from './server.js'

const config = configFromEnv({ PORT: '0', ...process.env })
const example = await startExample(config, (line) => console.log(line), { fakeStepMs: 700 })
try {
  const apiKey = demoApiKey(config)
  await runDemo(example.baseURL, apiKey, (line) => console.log(line))
  const report = await fetch(`${example.origin}/reports/usage`, { headers: { authorization: `Bearer ${apiKey}` } })
  console.log(`GET /reports/usage (the app's ReportsService, on the injected kit): ${await report.text()}`)
  console.log('demo finished: upload, batch, progress and output all went through batchkit in NestJS.')
} finally {
  await example.close()
}
