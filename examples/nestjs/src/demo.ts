// The quick start's main job on NestJS: start the example app on its embedded defaults, run one batch
// through it end to end with OpenAI's own client (printing each step and event), then ask the app's
// own report route, which reads the kit through Nest's injection.
import { runDemoApp } from '@batchkit/example-support'
import { startExample } from './server.js'

await runDemoApp(startExample, async (example, apiKey) => {
  const report = await fetch(`${example.origin}/reports/usage`, { headers: { authorization: `Bearer ${apiKey}` } })
  console.log(`GET /reports/usage (the app's ReportsService, on the injected kit): ${await report.text()}`)
})
