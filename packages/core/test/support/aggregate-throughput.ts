/**
 * Throughput of `aggregateUsage` on ~200 MB of realistic batch output, generated on the fly (no file, no timed
 * assertion): prints MB/s and peak RSS, and the same for the whole-line `JSON.parse` implementation.
 *
 *   cd /work/main && npx tsx --conditions=@batchkit/source packages/core/test/support/aggregate-throughput.ts [MB] [--no-reference]
 *
 * The lines come from a pool of distinct realistic lines (chat, Responses, embeddings of 1536 floats, Gemini,
 * failures) cycled into 64 KiB chunks, as a file stream delivers them; producing the chunks alone is timed too.
 * Then the same number of bytes as a single line (one giant embeddings response), to show memory stays flat.
 * CPU time is printed next to wall time: on a busy machine the CPU figure is the one that measures the code.
 */
import os from 'node:os'
import { createPricing } from '../../src/pricing/cost.js'
import { aggregateUsage } from '../../src/tracking/aggregate.js'
import { aggregateUsageByParsing } from './aggregate-reference.js'
import { mixedLine, seededRandom } from './output-lines.js'

const targetMb = Number(process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 200)
const withReference = !process.argv.includes('--no-reference')
const CHUNK = 64 * 1024
const POOL_LINES = 4000

const random = seededRandom(42)
const pool: Buffer[] = []
let poolBytes = 0
for (let i = 0; i < POOL_LINES; i++) {
  const line = Buffer.from(`${mixedLine(random)}\n`, 'utf8')
  pool.push(line)
  poolBytes += line.length
}
const totalBytes = targetMb * 1e6

/** 64 KiB chunks of whole pool lines cycled until `totalBytes`; lines straddle chunk boundaries. */
async function* chunks(): AsyncGenerator<Buffer> {
  let produced = 0
  let index = 0
  let chunk = Buffer.allocUnsafe(CHUNK)
  let fill = 0
  while (produced < totalBytes) {
    const line = pool[index++ % pool.length]!
    let offset = 0
    while (offset < line.length) {
      const n = line.copy(chunk, fill, offset)
      fill += n
      offset += n
      if (fill === CHUNK) {
        yield chunk
        chunk = Buffer.allocUnsafe(CHUNK)
        fill = 0
      }
    }
    produced += line.length
  }
  if (fill > 0) yield chunk.subarray(0, fill)
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1)
}

async function time(label: string, run: () => Promise<unknown>): Promise<number> {
  global.gc?.()
  const rssBefore = process.memoryUsage().rss
  let peakRss = rssBefore
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
  }, 20)
  const started = process.hrtime.bigint()
  const cpuBefore = process.cpuUsage()
  const result = await run()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = process.cpuUsage(cpuBefore)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  clearInterval(sampler)
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  const rate = totalBytes / 1e6 / seconds
  console.log(
    `${label.padEnd(34)} ${seconds.toFixed(2).padStart(6)} s  ${rate.toFixed(0).padStart(5)} MB/s ` +
      `(CPU ${cpuSeconds.toFixed(2)} s: ${(totalBytes / 1e6 / cpuSeconds).toFixed(0)} MB/s)  ` +
      `RSS ${mb(rssBefore)} → peak ${mb(peakRss)} MB (+${mb(peakRss - rssBefore)})`,
  )
  if (result && typeof result === 'object' && 'lines' in result) {
    const summary = result as Awaited<ReturnType<typeof aggregateUsage>>
    console.log(
      `${''.padEnd(34)} ${summary.lines} lines, ${summary.malformedLines} malformed, ` +
        `${Object.keys(summary.byModel).length} models, total cost $${summary.totals.cost}`,
    )
  }
  return rate
}

const pricing = createPricing({}, { onUnpricedModel: () => undefined })
console.log(
  `load average ${os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')} on ${os.cpus().length} CPUs`,
)
console.log(
  `node ${process.version}; ${mb(totalBytes)} MB of output lines from a pool of ${POOL_LINES} lines ` +
    `(${mb(poolBytes)} MB, mean ${(poolBytes / POOL_LINES).toFixed(0)} B/line), ${CHUNK / 1024} KiB chunks`,
)
await time('producing the chunks only', async () => {
  for await (const _ of chunks());
})
await time('aggregateUsage (scanner)', () => aggregateUsage(chunks(), pricing))
if (withReference) await time('whole-line JSON.parse (reference)', () => aggregateUsageByParsing(chunks(), pricing))
await time('aggregateUsage (scanner), again', () => aggregateUsage(chunks(), pricing))

/** One embeddings result line of `totalBytes` (millions of floats), in 64 KiB chunks: memory must not follow it. */
async function* oneHugeLine(): AsyncGenerator<Buffer> {
  const head = Buffer.from(
    '{"id":"batch_req_1","custom_id":"huge","response":{"status_code":200,"request_id":"req_1","body":{"object":"list","data":[{"object":"embedding","index":0,"embedding":[',
  )
  const tail = Buffer.from(
    '0.5]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":8000000,"total_tokens":8000000}}},"error":null}\n',
  )
  yield head
  const numbers = Buffer.from('-0.0123456789,'.repeat(Math.floor(CHUNK / 14)))
  for (let produced = head.length + tail.length; produced < totalBytes; produced += numbers.length) {
    yield Buffer.from(numbers) // a fresh chunk each time, as a stream delivers them
  }
  yield tail
}
await time('aggregateUsage, one line of it all', () => aggregateUsage(oneHugeLine(), pricing))
console.log(`process peak RSS (maxRSS): ${mb(process.resourceUsage().maxRSS * 1024)} MB`)
