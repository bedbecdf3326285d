import { readFile } from 'node:fs/promises'
import OpenAI, { toFile } from 'openai'

/** The sample batch input shipped with the example. */
export const SAMPLE_FILE = new URL('../sample/requests.jsonl', import.meta.url)

/** One result line of the demo: a request's id and the model's answer. */
export interface DemoResult {
  customId: string
  answer: string
}

/**
 * What a user of the API does, through OpenAI's own client: upload the sample JSONL, create a
 * batch, wait for it with visible progress, and read the output file.
 */
export async function runDemo(
  baseURL: string,
  apiKey: string,
  log: (line: string) => void,
  pollMs = 500,
): Promise<{ batchId: string; results: DemoResult[] }> {
  const client = new OpenAI({ baseURL, apiKey })
  const file = await client.files.create({
    file: await toFile(await readFile(SAMPLE_FILE), 'requests.jsonl'),
    purpose: 'batch',
  })
  log(`uploaded ${file.filename}: ${file.id}, ${file.bytes} bytes`)

  let batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { source: 'batchkit demo' },
  })
  log(`created ${batch.id} (${batch.status})`)
  const started = Date.now()
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    await new Promise((resolve) => setTimeout(resolve, pollMs))
    batch = await client.batches.retrieve(batch.id)
    const { completed, failed, total } = batch.request_counts ?? { completed: 0, failed: 0, total: 0 }
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    log(`  ${seconds.padStart(5)} s  ${batch.status.padEnd(11)} ${completed}/${total} done, ${failed} failed`)
  }
  if (batch.status !== 'completed' || !batch.output_file_id) {
    throw new Error(`batch ended ${batch.status}: ${JSON.stringify(batch.errors)}`)
  }
  log(`usage: ${JSON.stringify(batch.usage)}`)

  const output = await (await client.files.content(batch.output_file_id)).text()
  const results = output
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .map((line) => ({
      customId: line.custom_id as string,
      answer: line.response.body.choices[0].message.content as string,
    }))
    .sort((a, b) => a.customId.localeCompare(b.customId, 'en', { numeric: true }))
  log(`output ${batch.output_file_id}:`)
  for (const result of results) log(`  ${result.customId}: ${result.answer}`)
  return { batchId: batch.id, results }
}
