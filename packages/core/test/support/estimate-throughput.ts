/**
 * What estimating costs per request line, and how close sampling comes to tokenizing everything, on
 * 20,000 generated chat lines of 4 kB: one text repeated on every line (as the bench's upload file),
 * and distinct English-like texts. Prints µs per line of the estimator alone (the lines are parsed
 * beforehand, as the validator parses them anyway) and the input tokens counted; no timed assertion.
 *
 *   npx tsx --conditions=@batchkit/source packages/core/test/support/estimate-throughput.ts
 */
import { FileEstimator } from '../../src/estimates/file-estimator.js'
import { loadTokenizers } from '../../src/estimates/tokenizers.js'
import { createPricing } from '../../src/pricing/cost.js'
import { seededRandom } from './output-lines.js'

const LINES = 20_000
const WORDS = (
  'the a of to and in report revenue quarter growth customer invoice receipt shipment delay refund ' +
  'summarise translate paragraph sentence number exact meeting Thursday afternoon database migration risk'
).split(' ')
const random = seededRandom(7)
const text = (i: number) => {
  const words: string[] = [String(i)]
  for (let length = 0; length < 3_900; ) {
    const word =
      (WORDS[Math.floor(random() * WORDS.length)] as string) + (random() < 0.1 ? `${Math.floor(random() * 1000)},` : '')
    words.push(word)
    length += word.length + 1
  }
  return words.join(' ')
}
const same = 'Summarise the following paragraph in one sentence, keeping every number exact. '.repeat(49)
const pricing = createPricing()
await loadTokenizers()

for (const [label, content] of [
  ['one text on every line', () => same],
  ['distinct texts', text],
] as const) {
  const bodies = Array.from({ length: LINES }, (_, i) =>
    JSON.parse(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: content(i) }] })),
  )
  for (const sampleEvery of [1, 256]) {
    const estimator = new FileEstimator({ sampleEvery })
    const started = process.cpuUsage()
    for (const body of bodies) estimator.add('/v1/chat/completions', body)
    const cpu = process.cpuUsage(started)
    const estimate = estimator.result(pricing)
    console.log(
      `${label}, sampleEvery ${String(sampleEvery).padStart(3)}: ${((cpu.user + cpu.system) / LINES).toFixed(2)} µs CPU a line, ` +
        `${estimate?.inputTokens} input tokens, sampled share ${estimate?.sampledShare}`,
    )
  }
}
