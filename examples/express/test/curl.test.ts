import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createSchemaValidator } from '@batchkit/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { SAMPLE_FILE } from '../src/demo-flow.js'
import { type RunningExample, startExample } from '../src/server.js'

const run = promisify(execFile)
const hasCurl = await run('curl', ['--version']).then(
  () => true,
  () => false,
)
if (!hasCurl) console.warn('[batchkit tests] curl is not installed: skipping the curl walkthrough')

let example: RunningExample
const schemas = createSchemaValidator()

beforeAll(async () => {
  example = await startExample(configFromEnv({ PORT: '0', BATCHKIT_API_KEYS: 'sk-1234' }), () => undefined, {
    fakeStepMs: 20,
  })
})
afterAll(() => example?.close())

/** One curl call, as OpenAI's Batch guide writes it; returns the parsed JSON body. */
async function curl(...args: string[]) {
  const { stdout } = await run('curl', ['-sS', ...args, '-H', 'Authorization: Bearer sk-1234'])
  return JSON.parse(stdout)
}

it.skipIf(!hasCurl)("serves the curl commands of OpenAI's Batch guide", async () => {
  const file = await curl(
    `${example.baseURL}/files`,
    '-F',
    'purpose=batch',
    '-F',
    `file=@${fileURLToPath(SAMPLE_FILE)}`,
  )
  schemas.assert('OpenAIFile', file)
  expect(file).toMatchObject({ purpose: 'batch', filename: 'requests.jsonl' })

  const created = await curl(
    `${example.baseURL}/batches`,
    '-H',
    'Content-Type: application/json',
    '-d',
    JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }),
  )
  schemas.assert('Batch', created)
  expect(created.status).toBe('validating')

  let batch = created
  for (let i = 0; i < 50 && batch.status !== 'completed'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 30))
    batch = await curl(`${example.baseURL}/batches/${created.id}`)
    schemas.assert('Batch', batch)
  }
  expect(batch.status).toBe('completed')

  const list = await curl(`${example.baseURL}/batches`)
  schemas.assert('ListBatchesResponse', list)
  expect(list.data.map((b: { id: string }) => b.id)).toEqual([created.id])

  const { stdout } = await run('curl', [
    '-sS',
    `${example.baseURL}/files/${batch.output_file_id}/content`,
    '-H',
    'Authorization: Bearer sk-1234',
  ])
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
  for (const line of lines) schemas.assert('BatchRequestOutput', line)
  expect(lines).toHaveLength(5)
})
