import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createSchemaValidator } from '@batchkit/testkit'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configFromEnv } from './config.js'
import { runDemo, SAMPLE_FILE } from './demo-flow.js'
import type { StartExample, StartedExample } from './example.js'

const run = promisify(execFile)

/**
 * The smoke tests every example app passes: it boots on the fake upstream, runs the sample batch
 * to completion through OpenAI's client, serves the curl commands of OpenAI's Batch guide, answers
 * malformed JSON with OpenAI's envelope, refuses unknown callers, warns loudly when it has no keys,
 * and sends a signed `batch.completed` webhook to `BATCHKIT_WEBHOOK_URL` on loopback.
 */
export function exampleSmokeSuite(host: string, startExample: StartExample): void {
  describe(`the ${host} example`, () => {
    let example: StartedExample
    const logs: string[] = []
    const events: { type: string; batchId: string; responseCost: number | null }[] = []
    const schemas = createSchemaValidator()
    const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`
    const webhooks: { headers: IncomingHttpHeaders; body: string }[] = []
    let receiver: Server
    let demoBatchId: string | undefined

    beforeAll(async () => {
      receiver = createServer((req, res) => {
        let body = ''
        req.setEncoding('utf8')
        req.on('data', (chunk: string) => {
          body += chunk
        })
        req.on('end', () => {
          webhooks.push({ headers: req.headers, body })
          res.end()
        })
      })
      receiver.listen(0, '127.0.0.1')
      await once(receiver, 'listening')
      const config = configFromEnv({
        PORT: '0',
        BATCHKIT_API_KEYS: 'sk-1234:smoke-team',
        BATCHKIT_POLL_INTERVAL_MS: '20',
        BATCHKIT_FRESHNESS_MS: '20',
        BATCHKIT_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`,
        BATCHKIT_WEBHOOK_SECRET: webhookSecret,
      })
      example = await startExample(config, (line) => logs.push(line), {
        fakeStepMs: 20,
        printEvent: (line) => events.push(JSON.parse(line)),
      })
    })
    afterAll(async () => {
      await example?.close()
      receiver?.closeAllConnections()
      await new Promise((resolve) => receiver?.close(resolve))
    })

    it('boots on the fake upstream and runs the sample batch to completion', async () => {
      expect(logs[0]).toMatch(/OPENAI_API_KEY is not set: using batchkit's fake OpenAI upstream/)
      expect(logs.some((line) => line.startsWith('WARNING'))).toBe(false)
      const progress: string[] = []
      const { batchId, results } = await runDemo(example.baseURL, 'sk-1234', (line) => progress.push(line), 20)
      demoBatchId = batchId
      const sample = (await readFile(SAMPLE_FILE, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).custom_id)
      expect(results.map((r) => r.customId)).toEqual(sample)
      expect(results.every((r) => r.answer.length > 0)).toBe(true)
      expect(progress.some((line) => /completed\s+5\/5 done, 0 failed/.test(line))).toBe(true)
      for (let i = 0; i < 200 && !events.some((e) => e.type === 'batch_success' && e.batchId === batchId); i++) {
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      const mine = events.filter((e) => e.batchId === batchId)
      expect(mine.map((e) => e.type)).toEqual(['acreate_batch', 'batch_success'])
      expect(mine[1]?.responseCost).toBeGreaterThan(0)
    })

    it('sends the batch.completed webhook of that batch to BATCHKIT_WEBHOOK_URL, signed with its secret', async () => {
      const ofDemo = () => webhooks.filter((w) => demoBatchId !== undefined && w.body.includes(demoBatchId))
      for (let i = 0; i < 200 && ofDemo().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      const [webhook] = ofDemo()
      if (!webhook) throw new Error('no webhook arrived for the demo batch')
      const headers = Object.fromEntries(Object.entries(webhook.headers).map(([name, value]) => [name, String(value)]))
      const event = await new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(webhook.body, headers, webhookSecret)
      expect(event).toMatchObject({ object: 'event', type: 'batch.completed', data: { id: demoBatchId } })
    })

    it("serves the curl commands of OpenAI's Batch guide", async (context) => {
      const hasCurl = await run('curl', ['--version']).then(
        () => true,
        () => false,
      )
      if (!hasCurl) {
        console.warn('[batchkit tests] curl is not installed: skipping the curl walkthrough')
        return context.skip()
      }
      const curl = async (...args: string[]) =>
        (await run('curl', ['-sS', '--fail-with-body', ...args, '-H', 'Authorization: Bearer sk-1234'])).stdout
      const url = example.baseURL
      const file = JSON.parse(
        await curl(`${url}/files`, '-F', 'purpose=batch', '-F', `file=@${fileURLToPath(SAMPLE_FILE)}`),
      )
      schemas.assert('OpenAIFile', file)
      expect(file).toMatchObject({ purpose: 'batch', filename: 'requests.jsonl' })
      const body = JSON.stringify({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      const created = JSON.parse(await curl(`${url}/batches`, '-H', 'Content-Type: application/json', '-d', body))
      schemas.assert('Batch', created)
      expect(created.status).toBe('validating')
      let batch = created
      for (let i = 0; i < 100 && batch.status !== 'completed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 30))
        batch = JSON.parse(await curl(`${url}/batches/${created.id}`))
        schemas.assert('Batch', batch)
      }
      expect(batch.status).toBe('completed')
      const list = JSON.parse(await curl(`${url}/batches`))
      schemas.assert('ListBatchesResponse', list)
      expect(list.data.map((b: { id: string }) => b.id)).toContain(created.id)
      const lines = (await curl(`${url}/files/${batch.output_file_id}/content`)).trim().split('\n')
      for (const line of lines) schemas.assert('BatchRequestOutput', JSON.parse(line))
      expect(lines).toHaveLength(5)
    })

    it("answers malformed JSON with OpenAI's error envelope", async () => {
      const response = await fetch(`${example.baseURL}/batches`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-1234', 'content-type': 'application/json' },
        body: '{"input_file_id": ',
      })
      expect(response.status).toBe(400)
      expect(response.headers.get('content-type')).toBe('application/json')
      const body = (await response.json()) as { error: unknown }
      schemas.assert('ErrorResponse', body)
      expect(body.error).toMatchObject({
        message: expect.stringMatching(/^We could not parse the JSON body of your request\./),
        type: 'invalid_request_error',
        code: 'invalid_json',
      })
    })

    it('refuses callers without a configured key', async () => {
      const response = await fetch(`${example.baseURL}/batches`)
      expect(response.status).toBe(401)
    })

    it('warns loudly at start when no keys are configured', async () => {
      const lines: string[] = []
      const open = await startExample(configFromEnv({ PORT: '0' }), (line) => lines.push(line), {})
      await open.close()
      expect(lines).toContainEqual(expect.stringMatching(/^WARNING: BATCHKIT_API_KEYS is not set/))
    })
  })
}
