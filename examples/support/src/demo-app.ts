import { demoApiKey } from './auth.js'
import { configFromEnv } from './config.js'
import { runDemo } from './demo-flow.js'
import type { StartExample, StartedExample } from './example.js'

/**
 * The quick start's main job for any example: start the app on its embedded defaults (a free port,
 * the fake upstream without `OPENAI_API_KEY`), run one batch through it with OpenAI's own client,
 * and wait for the batch's `batch_success` event with its cost before stopping.
 */
export async function runDemoApp<E extends StartedExample>(
  startExample: (...args: Parameters<StartExample>) => Promise<E>,
  afterRun?: (example: E, apiKey: string) => Promise<void>,
): Promise<void> {
  const config = configFromEnv({
    PORT: '0',
    BATCHKIT_POLL_INTERVAL_MS: '500',
    BATCHKIT_FRESHNESS_MS: '500',
    ...process.env,
  })
  const events: { type?: string; batchId?: string; responseCost?: number | null }[] = []
  const example = await startExample(config, (line) => console.log(line), {
    fakeStepMs: 700,
    printEvent: (line) => {
      console.log(`event ${line}`)
      events.push(JSON.parse(line))
    },
  })
  try {
    const apiKey = demoApiKey(config)
    const { batchId } = await runDemo(example.baseURL, apiKey, (line) => console.log(line))
    const deadline = Date.now() + 15_000
    let success = events.find((e) => e.type === 'batch_success' && e.batchId === batchId)
    while (!success && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      success = events.find((e) => e.type === 'batch_success' && e.batchId === batchId)
    }
    if (!success) throw new Error('no batch_success event within 15 s')
    console.log(
      `batch_success reported a cost of ${success.responseCost === null ? 'unknown (no price)' : `$${success.responseCost}`}`,
    )
    await afterRun?.(example, apiKey)
    console.log('demo finished: upload, batch, progress, output and cost all went through batchkit.')
  } finally {
    await example.close()
  }
}
