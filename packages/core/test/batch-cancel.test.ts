import { Readable } from 'node:stream'
import { startFakeOpenAI } from '@batchkit/testkit'
import { Keyv } from 'keyv'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ApiError } from '../src/errors.js'
import { type BatchKit, createBatchKit } from '../src/kit.js'
import { openai } from '../src/providers/openai/index.js'
import type { BatchRecord, Principal } from '../src/types.js'
import { chatRequests, rejection } from './support/chat-requests.js'
import { kitOnFakeOpenAI } from './support/fake-kit.js'
import { readStored, writeStored } from './support/stored.js'

/**
 * Cancel asks the provider only when there is something to cancel: a batch already cancelling is
 * answered as it is, an ended one with 409 at once; a provider's 409 (the batch ended upstream before
 * the store heard) brings the stored batch up to date and says why; any other provider failure is
 * passed on as it is.
 */

describe('cancelling a batch', () => {
  const setup = kitOnFakeOpenAI()
  const ann: Principal = { owner: 'ann' }

  async function newBatch(): Promise<BatchRecord> {
    const file = await setup.kit.files.create(ann, { file: Readable.from([chatRequests(4)]), purpose: 'batch' })
    return setup.kit.batches.create(ann, {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
  }

  /** The provider calls made about one provider batch. */
  const callsAbout = (providerBatchId: string, method: string, suffix = '') =>
    setup.fake.requests.filter((r) => r.method === method && r.path === `/v1/batches/${providerBatchId}${suffix}`)
      .length

  /** Cancels a provider batch at the provider itself, as someone with the provider's key would. */
  const cancelUpstream = (providerBatchId: string) =>
    fetch(`${setup.fake.baseURL}/batches/${providerBatchId}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${setup.fake.apiKey}` },
    })

  /** Reads a provider batch at the provider itself (a read of the fake moves the batch one step on). */
  const readUpstream = (providerBatchId: string) =>
    fetch(`${setup.fake.baseURL}/batches/${providerBatchId}`, {
      headers: { authorization: `Bearer ${setup.fake.apiKey}` },
    }).then((r) => r.json() as Promise<{ status: string; output_file_id: string | null; error_file_id: string | null }>)

  /**
   * Makes the first billing of a provider batch that has ended fail (its first read of each result file is
   * refused), so a client is shown it still finishing until a later billing settles.
   */
  async function holdFirstBilling(providerBatchId: string): Promise<void> {
    const upstream = await readUpstream(providerBatchId)
    const files = [upstream.output_file_id, upstream.error_file_id].filter((id): id is string => id !== null)
    expect(files.length).toBeGreaterThan(0)
    for (const id of files) setup.fake.failNext({ status: 500, method: 'GET', pathPrefix: `/v1/files/${id}/content` })
  }

  /** Reads the batch as a polling client would (through `kit`, the shared one unless given), until it shows `status` billed. */
  async function readUntil(id: string, status: string, kit: BatchKit = setup.kit): Promise<BatchRecord> {
    for (let i = 0; i < 50; i++) {
      const batch = await kit.batches.retrieve(ann, id)
      await kit.batches.idle()
      if (batch.status === status) return batch
    }
    throw new Error(`${id} never showed ${status}`)
  }

  it('asks the provider once, however often a client cancels', async () => {
    const batch = await newBatch()
    const first = await setup.kit.batches.cancel(ann, batch.id)
    const second = await setup.kit.batches.cancel(ann, batch.id)
    expect(first.status).toBe('cancelling')
    expect(second).toMatchObject({ id: batch.id, status: 'cancelling', cancellingAt: first.cancellingAt })
    expect(callsAbout(batch.providerBatchId, 'POST', '/cancel')).toBe(1)
  })

  it('answers 409 for a batch that has ended, without asking the provider', async () => {
    const batch = await newBatch()
    await setup.fake.expire(batch.providerBatchId)
    await readUntil(batch.id, 'expired')
    const error = await rejection(setup.kit.batches.cancel(ann, batch.id))
    expect(error).toMatchObject({ status: 409, message: "Cannot cancel a batch with status 'expired'." })
    expect(callsAbout(batch.providerBatchId, 'POST', '/cancel')).toBe(0)
  })

  it('answers an ended-upstream batch with 409 and why, and shows it ended from then on', async () => {
    const batch = await newBatch()
    // Under way, so the end has result files to bill from.
    await readUntil(batch.id, 'in_progress')
    // The provider ends it; the store has not heard yet.
    await setup.fake.expire(batch.providerBatchId)
    await holdFirstBilling(batch.providerBatchId)
    const error = await rejection(setup.kit.batches.cancel(ann, batch.id))
    expect(error).toMatchObject({ status: 409, message: "Cannot cancel a batch with status 'expired'." })
    // Brought up to date by the cancel itself: the next read answers from the store, no longer the stale
    // `validating`; shown finalizing while its bill is not settled, then expired.
    const shown = await setup.kit.batches.retrieve(ann, batch.id)
    expect(shown.status).toBe('finalizing')
    expect((await readUntil(batch.id, 'expired')).expiredAt).toBeGreaterThanOrEqual(batch.createdAt)
  })

  it('passes on a provider failure other than 409, without reading the batch again', async () => {
    const batch = await newBatch()
    setup.fake.failNext({ status: 500, method: 'POST', pathPrefix: `/v1/batches/${batch.providerBatchId}/cancel` })
    const error = await rejection(setup.kit.batches.cancel(ann, batch.id))
    expect(error).toMatchObject({ status: 502 })
    expect(callsAbout(batch.providerBatchId, 'GET')).toBe(0)
    expect((await setup.kit.batches.retrieve(ann, batch.id)).status).toBe('validating')
  })

  it('answers a batch whose cancel is still being billed as cancelling, not 409', async () => {
    const batch = await newBatch()
    await readUntil(batch.id, 'in_progress')
    // A second on, so the cancel's time is not the batch's creation time.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const { cancellingAt } = await setup.kit.batches.cancel(ann, batch.id)
    expect(cancellingAt).toBeGreaterThan(batch.createdAt)
    // The provider ends the cancel (a read of its own moves it on); its files cannot be read yet, so no bill settles.
    const upstream = await readUpstream(batch.providerBatchId)
    expect(upstream.status).toBe('cancelled')
    for (const id of [upstream.output_file_id, upstream.error_file_id]) {
      if (id) setup.fake.failNext({ status: 500, method: 'GET', pathPrefix: `/v1/files/${id}/content`, times: 50 })
    }
    const read = await setup.kit.batches.retrieve(ann, batch.id)
    await setup.kit.batches.idle()
    expect(read.status).toBe('cancelling')
    const again = await setup.kit.batches.cancel(ann, batch.id)
    expect(again).toMatchObject({ id: batch.id, status: 'cancelling', cancelledAt: null, cancellingAt })
    expect(callsAbout(batch.providerBatchId, 'POST', '/cancel')).toBe(1)
  })

  describe('when the provider first answers the cancel 409', () => {
    it('answers a batch someone else is cancelling upstream as cancelling', async () => {
      const batch = await newBatch()
      await cancelUpstream(batch.providerBatchId)
      setup.fake.failNext({ status: 409, method: 'POST', pathPrefix: `/v1/batches/${batch.providerBatchId}/cancel` })
      expect(await setup.kit.batches.cancel(ann, batch.id)).toMatchObject({ id: batch.id, status: 'cancelling' })
    })

    it('answers a batch someone else cancelled upstream as cancelling until it is billed, then cancelled', async () => {
      const batch = await newBatch()
      await readUntil(batch.id, 'in_progress')
      await cancelUpstream(batch.providerBatchId)
      expect((await readUpstream(batch.providerBatchId)).status).toBe('cancelled')
      await holdFirstBilling(batch.providerBatchId)
      setup.fake.failNext({ status: 409, method: 'POST', pathPrefix: `/v1/batches/${batch.providerBatchId}/cancel` })
      const answer = await setup.kit.batches.cancel(ann, batch.id)
      expect(answer).toMatchObject({ id: batch.id, status: 'cancelling', cancelledAt: null })
      expect((await readUntil(batch.id, 'cancelled')).cancelledAt).toBeGreaterThanOrEqual(batch.createdAt)
    })
  })

  it('answers 409 when the provider refuses the cancel each time it is asked, never showing the batch cancelling', async () => {
    // A fake of its own whose batches stay as they are for an hour: the refused batch is still running after.
    const fake = await startFakeOpenAI({ progress: 3_600_000 })
    const kit = createBatchKit({
      store: new Keyv(),
      providers: { openai: openai({ apiKey: fake.apiKey, baseURL: fake.baseURL }) },
      tracking: { enabled: false },
      onError: () => undefined,
    })
    onTestFinished(async () => {
      await kit.close()
      await fake.close()
    })
    const file = await kit.files.create(ann, { file: Readable.from([chatRequests(4)]), purpose: 'batch' })
    const batch = await kit.batches.create(ann, {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
    })
    fake.failNext({ status: 409, times: 2, method: 'POST', pathPrefix: `/v1/batches/${batch.providerBatchId}/cancel` })

    const error = await rejection(kit.batches.cancel(ann, batch.id))
    expect(error).toMatchObject({ status: 409, message: expect.stringContaining('refused the change') })
    expect(fake.batches.get(batch.providerBatchId)?.status).toBe('validating')
    expect(await kit.batches.retrieve(ann, batch.id)).toMatchObject({ status: 'validating', cancellingAt: null })
  })

  /**
   * A kit of its own over a provider whose next cancel or read can be held for a moment, to change the
   * store or the answer meanwhile, as another instance's tracker submitting a part again would. It is
   * closed when the test finishes.
   */
  async function racingKit() {
    const store = new Keyv()
    const base = openai({ apiKey: setup.fake.apiKey, baseURL: setup.fake.baseURL })
    const hooks: { beforeCancel?: () => Promise<void>; readInstead?: string; conflicts?: number } = {}
    const provider = Object.assign(Object.create(base) as typeof base, {
      async cancelBatch(id: string) {
        if (hooks.conflicts) {
          hooks.conflicts--
          throw new ApiError(409, "Cannot cancel a batch with status 'cancelled'.")
        }
        const hook = hooks.beforeCancel
        hooks.beforeCancel = undefined
        await hook?.()
        return base.cancelBatch(id)
      },
      async retrieveBatch(id: string) {
        const instead = hooks.readInstead
        hooks.readInstead = undefined
        return base.retrieveBatch(instead ?? id)
      },
    })
    const own = createBatchKit({
      store,
      providers: { openai: provider },
      tracking: { enabled: false },
      onError: () => undefined,
    })
    onTestFinished(() => own.close())
    const file = await own.files.create(ann, { file: Readable.from([chatRequests(4)]), purpose: 'batch' })
    const create = () =>
      own.batches.create(ann, { inputFileId: file.id, endpoint: '/v1/chat/completions', completionWindow: '24h' })
    return { kit: own, store, hooks, create }
  }

  it('also cancels a part submitted again while the cancel was on its way', async () => {
    const { kit: racing, store, hooks, create } = await racingKit()
    const [batch, other] = [await create(), await create()]
    // Meanwhile (as another instance's tracker would), the batch's work is submitted again upstream.
    hooks.beforeCancel = async () => {
      const stored = (await readStored<BatchRecord>(store, `batchkit:batch:${batch.id}`)) as BatchRecord
      await writeStored(store, `batchkit:batch:${batch.id}`, { ...stored, providerBatchId: other.providerBatchId })
    }
    const answer = await racing.batches.cancel(ann, batch.id)
    expect(answer).toMatchObject({ id: batch.id, status: 'cancelling', providerBatchId: other.providerBatchId })
    expect(setup.fake.batches.get(batch.providerBatchId)?.status).toBe('cancelling')
    expect(setup.fake.batches.get(other.providerBatchId)?.status).toBe('cancelling')
  })

  it('cancels a part a refresh finds submitted again during the cancel, and keeps the batch cancelling', async () => {
    const { kit: racing, hooks, create } = await racingKit()
    const [batch, other] = [await create(), await create()]
    const cancelling = await racing.batches.cancel(ann, batch.id)
    expect(cancelling.status).toBe('cancelling')
    // The provider answers for a part submitted again, still running, that the cancel never reached.
    hooks.readInstead = other.providerBatchId
    const refreshed = await racing.batches.refresh(cancelling)
    expect(refreshed).toMatchObject({ id: batch.id, status: 'cancelling', providerBatchId: batch.providerBatchId })
    expect((await racing.batches.retrieve(ann, batch.id)).status).toBe('cancelling')
    expect(setup.fake.batches.get(other.providerBatchId)?.status).toBe('cancelling')
  })

  it('answers a batch cancelled elsewhere, whose provider refuses the cancel with 409, as cancelling, then cancelled', async () => {
    const { kit: racing, hooks, create } = await racingKit()
    const batch = await create()
    // Under way at the provider (a read there moves it on), so its end has result files to bill from.
    expect((await readUpstream(batch.providerBatchId)).status).toBe('in_progress')
    await cancelUpstream(batch.providerBatchId)
    // A read at the provider finishes that cancel; the store has not heard. The provider refuses batchkit's own
    // cancel of the ended batch with 409, as some providers do.
    expect((await readUpstream(batch.providerBatchId)).status).toBe('cancelled')
    await holdFirstBilling(batch.providerBatchId)
    hooks.conflicts = 2
    const answer = await racing.batches.cancel(ann, batch.id)
    expect(answer).toMatchObject({ id: batch.id, status: 'cancelling', cancelledAt: null })
    expect((await readUntil(batch.id, 'cancelled', racing)).status).toBe('cancelled')
  })
})
