import { Keyv } from 'keyv'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EventOutbox } from '../src/events/outbox.js'
import type { BatchEvent } from '../src/events/types.js'
import { coordinationFor } from '../src/store/create-index.js'
import { DueQueue } from '../src/store/due-queue.js'
import { StoreGuard } from '../src/store/guard.js'
import { RecordStore } from '../src/store/records.js'

/**
 * The event outbox apart from its callbacks' retries (event-delivery.test.ts): how long an instance holds
 * an event while its callbacks run (a minute, or twice the callback timeout when that is longer, so no
 * other instance delivers it again while a slow callback is still within its time), what it logs and hands
 * to its sinks, and that stopping waits for the callbacks under way. Only `Date` is faked; the outbox's
 * poller runs on real timers.
 */

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0)

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

const event: BatchEvent = {
  id: 'evt-1',
  type: 'acreate_batch',
  createdAt: T0 / 1000,
  batchId: 'batch-1',
  owner: 'alice',
  provider: 'openai',
  model: 'gpt-4o-mini',
  endpoint: '/v1/chat/completions',
  metadata: null,
  requestCount: 1,
  responseCost: 0,
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} }

async function until(what: string, check: () => boolean): Promise<void> {
  const started = performance.now()
  while (!check()) {
    if (performance.now() - started > 5000) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe.each([
  { callbackTimeoutMs: 10_000, leaseMs: 60_000 },
  { callbackTimeoutMs: 100_000, leaseMs: 200_000 },
])('with a callback timeout of $callbackTimeoutMs ms', ({ callbackTimeoutMs, leaseMs }) => {
  it(`holds the event for ${leaseMs} ms while its callback runs`, async () => {
    const store = new Keyv()
    const { index, leases } = coordinationFor(store)
    const records = new RecordStore(store, index, new StoreGuard(1000, () => undefined))
    let release: (() => void) | undefined
    const outbox = new EventOutbox(
      [() => new Promise<void>((resolve) => (release = resolve))],
      records,
      new DueQueue(index, 'events'),
      leases,
      'instance-a',
      { callbackTimeoutMs, pollIntervalMs: 5 },
      () => undefined,
      quiet,
    )
    outbox.start()
    try {
      await outbox.emit(event)
      await until('the callback called', () => release !== undefined)
      vi.setSystemTime(T0 + leaseMs - 1)
      expect(await leases.acquire('event:evt-1', 'instance-b', 1000)).toBe(false)
      vi.setSystemTime(T0 + leaseMs)
      expect(await leases.acquire('event:evt-1', 'instance-b', 1000)).toBe(true)
    } finally {
      release?.()
      await outbox.stop()
    }
  })
})

describe('the outbox', () => {
  function outboxWith(callbacks: Array<(event: BatchEvent) => Promise<void> | void>) {
    const store = new Keyv()
    const { index, leases } = coordinationFor(store)
    const records = new RecordStore(store, index, new StoreGuard(1000, () => undefined))
    const logged: Array<{ fields: unknown; message?: string }> = []
    const sink = { enqueued: [] as string[], started: 0, stopped: 0 }
    const outbox = new EventOutbox(
      callbacks,
      records,
      new DueQueue(index, 'events'),
      leases,
      'instance-a',
      { pollIntervalMs: 5 },
      () => undefined,
      { ...quiet, info: (fields, message) => void logged.push({ fields, message }) },
      [
        {
          enqueue: async (e) => void sink.enqueued.push(e.id),
          start: () => void sink.started++,
          stop: async () => void sink.stopped++,
        },
      ],
    )
    return { outbox, records, logged, sink }
  }

  it('logs each event, hands it to every sink, and stores nothing for callbacks when there are none', async () => {
    const { outbox, records, logged, sink } = outboxWith([])
    outbox.start()
    await outbox.emit(event)
    await outbox.stop()
    expect(logged).toEqual([
      { fields: { eventId: 'evt-1', type: 'acreate_batch', batchId: 'batch-1' }, message: 'batchkit event' },
    ])
    expect(sink).toEqual({ enqueued: ['evt-1'], started: 1, stopped: 1 })
    expect(await records.getRecord('event', 'evt-1')).toBeUndefined()
  })

  it('stops only once the callbacks under way have settled', async () => {
    let release: (() => void) | undefined
    const { outbox } = outboxWith([() => new Promise<void>((resolve) => (release = resolve))])
    outbox.start()
    await outbox.emit(event)
    await until('the callback called', () => release !== undefined)
    let stopped = false
    const stopping = outbox.stop().then(() => {
      stopped = true
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(stopped).toBe(false)
    release?.()
    await stopping
    expect(stopped).toBe(true)
  })
})
