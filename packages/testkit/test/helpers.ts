import OpenAI, { toFile } from 'openai'
import type { Batch } from 'openai/resources/batches'
import { createSchemaValidator, type FakeOpenAI } from '../src/index.js'

export const schemas = createSchemaValidator()

export function clientFor(fake: FakeOpenAI, options: { timeout?: number } = {}): OpenAI {
  return new OpenAI({ baseURL: fake.baseURL, apiKey: fake.apiKey, maxRetries: 0, ...options })
}

export function chatLine(
  customId: string,
  content: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra },
  }
}

export const toJsonl = (lines: readonly unknown[]): string => lines.map((line) => `${JSON.stringify(line)}\n`).join('')

export async function uploadBatchFile(client: OpenAI, content: string, name = 'input.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(content), name), purpose: 'batch' })
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled'])

/** Polls (one step per poll in the fake's default mode) and returns every status seen, validating each Batch. */
export async function pollToTerminal(
  client: OpenAI,
  id: string,
  maxPolls = 20,
): Promise<{ batch: Batch; seen: string[] }> {
  const seen: string[] = []
  for (let i = 0; i < maxPolls; i++) {
    const batch = await client.batches.retrieve(id)
    schemas.assert('Batch', batch)
    seen.push(batch.status)
    if (TERMINAL.has(batch.status)) return { batch, seen }
  }
  throw new Error(`batch ${id} did not finish after ${maxPolls} polls: ${seen.join(' -> ')}`)
}

export async function readJsonl(client: OpenAI, fileId: string): Promise<Array<Record<string, unknown>>> {
  const response = await client.files.content(fileId)
  const text = await response.text()
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

/** The raw JSON of an authorized GET, to check envelopes the client's page objects do not expose. */
export async function getJson<T>(fake: FakeOpenAI, path: string): Promise<T> {
  const res = await fetch(`${fake.baseURL}${path}`, { headers: { authorization: `Bearer ${fake.apiKey}` } })
  return (await res.json()) as T
}

export interface ListEnvelope {
  object: 'list'
  data: Array<{ id: string }>
  first_id: string | null
  last_id: string | null
  has_more: boolean
}
