import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { Intent } from '../src/intents/intent-log.js'
import type { BatchRecord, Principal } from '../src/types.js'
import { chatRequests, rejection } from './support/chat-requests.js'
import { kitOnFakeOpenAI } from './support/fake-kit.js'

/**
 * What a client is told when a batch request cannot be served: the parameter at fault and a message
 * naming the values that disagree, as OpenAI words them. A create's leftover intent, settled after
 * the batch was stored, never takes back what the batch has become since; and once a batch is billed,
 * deleting its output file deletes the provider's copy at once.
 */

describe('batch requests that cannot be served', () => {
  const setup = kitOnFakeOpenAI()
  const ann: Principal = { owner: 'ann' }

  // The first request fails, so every batch that ends has an error file.
  const upload = () =>
    setup.kit.files.create(ann, { file: Readable.from([chatRequests(4, { failing: [0] })]), purpose: 'batch' })

  /** A batch that ended with one failed request, as a client reads it once it is billed: with its error file. */
  async function endedBatch(): Promise<BatchRecord> {
    const file = await upload()
    const batch = await setup.kit.batches.create(ann, {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
    for (let i = 0; i < 50; i++) {
      const read = await setup.kit.batches.retrieve(ann, batch.id)
      await setup.kit.batches.idle()
      if (read.status === 'completed') return read
    }
    throw new Error(`${batch.id} never completed`)
  }

  it('names the endpoint and the url of the requests when they disagree', async () => {
    const file = await upload()
    const error = await rejection(
      setup.kit.batches.create(ann, { inputFileId: file.id, endpoint: '/v1/embeddings', completionWindow: '24h' }),
    )
    expect(error).toMatchObject({
      status: 400,
      param: 'endpoint',
      message: `The endpoint '/v1/embeddings' does not match the url '/v1/chat/completions' of the requests in ${file.id}.`,
    })
  })

  it("names the batch whose failed requests an error file stands for when the endpoint is not that batch's", async () => {
    const ended = await endedBatch()
    const errorFileId = ended.errorFileId as string
    expect(errorFileId).toMatch(/^file-/)
    const error = await rejection(
      setup.kit.batches.create(ann, { inputFileId: errorFileId, endpoint: '/v1/embeddings', completionWindow: '24h' }),
    )
    expect(error).toMatchObject({
      status: 400,
      param: 'endpoint',
      message: `The endpoint '/v1/embeddings' does not match the endpoint '/v1/chat/completions' of ${ended.id}, whose failed requests ${errorFileId} names.`,
    })
  })

  it('refuses a page after a batch that is not the caller’s', async () => {
    const error = await rejection(setup.kit.batches.list(ann, { after: 'batch_nope' }))
    expect(error).toMatchObject({
      status: 400,
      param: 'after',
      message: "Invalid value for 'after': no batch 'batch_nope' to list after.",
    })
  })

  it('settles a leftover intent of a stored batch without taking back what the batch has become', async () => {
    const ended = await endedBatch()
    const { requestCounts } = ended
    const intent: Intent = {
      kind: 'batch',
      id: ended.id,
      owner: ended.owner,
      provider: ended.provider,
      createdAtMs: ended.createdAtMs,
      key: 'left-over',
      attempts: 0,
      batch: {
        id: ended.id,
        owner: ended.owner,
        provider: ended.provider,
        providerInputFileId: ended.providerInputFileId,
        endpoint: ended.endpoint,
        model: ended.model,
        inputFileId: ended.inputFileId,
        completionWindow: ended.completionWindow,
        metadata: ended.metadata,
        createdAt: ended.createdAt,
        createdAtMs: ended.createdAtMs,
        estimate: ended.estimate ?? null,
        budget: null,
        outputExpiresAfter: null,
        requestCount: requestCounts.total,
      },
    }
    await setup.kit.batches.settleIntent(intent)
    expect(await setup.kit.batches.retrieve(ann, ended.id)).toMatchObject({
      status: 'completed',
      errorFileId: ended.errorFileId,
      outputFileId: ended.outputFileId,
    })
    expect((await setup.kit.batches.list(ann)).data.map((b) => b.id)).toContain(ended.id)
  })

  it('settles only batch intents', async () => {
    const intent: Intent = {
      kind: 'file',
      id: 'file-x',
      owner: 'ann',
      provider: 'openai',
      createdAtMs: 0,
      key: 'k',
      attempts: 0,
    }
    await expect(setup.kit.batches.settleIntent(intent)).rejects.toThrow('not a batch intent: file-x')
  })
  it("deletes a billed batch's output and error files upstream at once", async () => {
    const ended = await endedBatch()
    const upstream = setup.fake.batches.get(ended.providerBatchId)
    const copies = [upstream?.output_file_id, upstream?.error_file_id]
    expect(copies.every((id) => id && setup.fake.files.has(id))).toBe(true)
    for (const id of [ended.outputFileId, ended.errorFileId]) await setup.kit.files.delete(ann, id as string)
    expect(copies.filter((id) => setup.fake.files.has(id as string))).toEqual([])
  })
})
