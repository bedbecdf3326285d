import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { runDemo, SAMPLE_FILE } from '../src/demo-flow.js'
import { type RunningExample, startExample } from '../src/server.js'

let example: RunningExample
const logs: string[] = []

beforeAll(async () => {
  example = await startExample(
    configFromEnv({ PORT: '0', BATCHKIT_API_KEYS: 'sk-smoke:smoke-team' }),
    (l) => logs.push(l),
    {
      fakeStepMs: 50,
    },
  )
})
afterAll(() => example?.close())

it('boots on the fake upstream and runs the sample batch to completion', async () => {
  expect(logs[0]).toMatch(/OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream/)
  expect(logs.some((l) => l.startsWith('WARNING'))).toBe(false)
  const progress: string[] = []
  const results = await runDemo(example.baseURL, 'sk-smoke', (l) => progress.push(l), 20)
  const sample = (await readFile(SAMPLE_FILE, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).custom_id)
  expect(results.map((r) => r.customId)).toEqual(sample)
  expect(results.every((r) => r.answer.length > 0)).toBe(true)
  expect(progress.some((l) => /completed\s+5\/5 done, 0 failed/.test(l))).toBe(true)
})

it('refuses callers without a configured key', async () => {
  const response = await fetch(`${example.baseURL}/batches`)
  expect(response.status).toBe(401)
})

it('warns loudly at start when no keys are configured', async () => {
  const lines: string[] = []
  const open = await startExample(configFromEnv({ PORT: '0' }), (l) => lines.push(l))
  await open.close()
  expect(lines).toContainEqual(expect.stringMatching(/^WARNING: BATCHKIT_API_KEYS is not set/))
})
