import { describe, expect, it } from 'vitest'
import {
  batchStatusOf,
  jobErrorsOf,
  jobTimestamps,
  requestCountsOf,
  rfc3339ToSeconds,
  VERTEX_STATE_TO_STATUS,
  type VertexJobTimestamps,
} from '../src/providers/vertex/job-state.js'
import { VERTEX_JOB_STATES, type VertexJobState } from '../src/providers/vertex/types.js'
import { BATCH_ENDPOINTS, type BatchStatus } from '../src/types.js'

const OPENAI_STATUSES: readonly BatchStatus[] = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
]

describe('job state → batch status', () => {
  it.each<[VertexJobState, BatchStatus]>([
    ['JOB_STATE_UNSPECIFIED', 'validating'],
    ['JOB_STATE_QUEUED', 'validating'],
    ['JOB_STATE_PENDING', 'validating'],
    ['JOB_STATE_RUNNING', 'in_progress'],
    ['JOB_STATE_SUCCEEDED', 'completed'],
    ['JOB_STATE_FAILED', 'failed'],
    ['JOB_STATE_CANCELLING', 'cancelling'],
    ['JOB_STATE_CANCELLED', 'cancelled'],
    ['JOB_STATE_PAUSED', 'in_progress'],
    ['JOB_STATE_EXPIRED', 'expired'],
    ['JOB_STATE_UPDATING', 'in_progress'],
    ['JOB_STATE_PARTIALLY_SUCCEEDED', 'completed'],
  ])('%s → %s', (state, status) => {
    expect(batchStatusOf(state)).toBe(status)
  })

  it('covers every enum value with an OpenAI status', () => {
    expect(VERTEX_JOB_STATES).toHaveLength(12)
    expect(Object.keys(VERTEX_STATE_TO_STATUS).sort()).toEqual([...VERTEX_JOB_STATES].sort())
    for (const status of Object.values(VERTEX_STATE_TO_STATUS)) expect(OPENAI_STATUSES).toContain(status)
    expect(BATCH_ENDPOINTS).toContain('/v1/chat/completions')
  })

  it('keeps polling a state it does not know', () => {
    expect(batchStatusOf('JOB_STATE_FROM_THE_FUTURE')).toBe('in_progress')
    expect(batchStatusOf(undefined)).toBe('in_progress')
    expect(batchStatusOf('toString')).toBe('in_progress')
  })
})

describe('rfc3339ToSeconds', () => {
  it.each([
    ['2025-09-19T21:29:47Z', 1758317387],
    ['2025-09-19T21:29:47.484619Z', 1758317387],
    ['2025-09-19T21:29:47.999999999Z', 1758317387],
    ['2025-09-19T21:29:47.352+00:00', 1758317387],
    ['2025-09-19T23:29:47+02:00', 1758317387],
    ['2025-09-19T16:59:47.1-04:30', 1758317387],
    ['1970-01-01T00:00:00Z', 0],
  ])('%s → %i', (text, seconds) => {
    expect(rfc3339ToSeconds(text)).toBe(seconds)
    expect(Number.isInteger(rfc3339ToSeconds(text))).toBe(true)
  })

  it.each([undefined, null, '', 'yesterday', '2025-09-19', '2025-09-19T21:29:47', 1758317387])('%j → null', (value) => {
    expect(rfc3339ToSeconds(value)).toBeNull()
  })
})

describe('jobTimestamps', () => {
  const times = {
    createTime: '2025-01-01T00:00:00.123456Z',
    startTime: '2025-01-01T00:01:00.5Z',
    endTime: '2025-01-01T01:00:00.999Z',
    updateTime: '2025-01-01T01:00:01Z',
  }
  const created = 1735689600
  const started = created + 60
  const ended = created + 3600
  const updated = ended + 1
  const none: VertexJobTimestamps = {
    createdAt: created,
    inProgressAt: started,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    cancellingAt: null,
    cancelledAt: null,
    expiredAt: null,
  }

  it.each<[VertexJobState, Partial<VertexJobTimestamps>]>([
    ['JOB_STATE_SUCCEEDED', { completedAt: ended }],
    ['JOB_STATE_PARTIALLY_SUCCEEDED', { completedAt: ended }],
    ['JOB_STATE_FAILED', { failedAt: ended }],
    ['JOB_STATE_CANCELLED', { cancelledAt: ended }],
    ['JOB_STATE_EXPIRED', { expiredAt: ended }],
    ['JOB_STATE_CANCELLING', { cancellingAt: updated }],
    ['JOB_STATE_RUNNING', {}],
    ['JOB_STATE_PAUSED', {}],
    ['JOB_STATE_UPDATING', {}],
    ['JOB_STATE_UNSPECIFIED', {}],
  ])('%s', (state, set) => {
    expect(jobTimestamps({ state, ...times })).toEqual({ ...none, ...set })
  })

  it('leaves unreached times null and falls back to updateTime without endTime', () => {
    expect(jobTimestamps({ state: 'JOB_STATE_PENDING', createTime: times.createTime })).toEqual({
      ...none,
      inProgressAt: null,
    })
    expect(jobTimestamps({ state: 'JOB_STATE_QUEUED', createTime: times.createTime })).toEqual({
      ...none,
      inProgressAt: null,
    })
    expect(
      jobTimestamps({ state: 'JOB_STATE_EXPIRED', createTime: times.createTime, updateTime: times.updateTime }),
    ).toEqual({ ...none, inProgressAt: null, expiredAt: updated })
    expect(jobTimestamps({ state: 'JOB_STATE_SUCCEEDED' })).toEqual({ ...none, createdAt: null, inProgressAt: null })
  })
})

describe('requestCountsOf', () => {
  it('parses int64 strings into integers', () => {
    expect(requestCountsOf({ successfulCount: '97', failedCount: '2', incompleteCount: '1' })).toEqual({
      total: 100,
      completed: 97,
      failed: 2,
    })
  })

  it('reads omitted zero counters as 0 and an unknown incompleteCount (-1) as nothing', () => {
    expect(requestCountsOf({ successfulCount: '5', incompleteCount: '-1' })).toEqual({
      total: 5,
      completed: 5,
      failed: 0,
    })
    expect(requestCountsOf({})).toEqual({ total: 0, completed: 0, failed: 0 })
    expect(requestCountsOf(undefined)).toEqual({ total: 0, completed: 0, failed: 0 })
  })

  it('ignores values that are not integers', () => {
    expect(requestCountsOf({ successfulCount: 'lots', failedCount: '1.5', incompleteCount: '3' })).toEqual({
      total: 3,
      completed: 0,
      failed: 0,
    })
    expect(requestCountsOf({ successfulCount: 4 as unknown as string })).toEqual({ total: 4, completed: 4, failed: 0 })
  })
})

describe('jobErrorsOf', () => {
  it('reports the job error and partial failures with rpc code names', () => {
    expect(
      jobErrorsOf({
        error: { code: 3, message: 'Failed to read gs://b/in.jsonl' },
        partialFailures: [{ code: 13, message: 'some rows failed' }, { message: 'no code' }],
      }),
    ).toEqual([
      { code: 'invalid_argument', message: 'Failed to read gs://b/in.jsonl', param: null, line: null },
      { code: 'internal', message: 'some rows failed', param: null, line: null },
      { code: 'vertex_error', message: 'no code', param: null, line: null },
    ])
  })

  it('is null without errors', () => {
    expect(jobErrorsOf({})).toBeNull()
    expect(jobErrorsOf({ error: {}, partialFailures: [] })).toBeNull()
  })

  it('leaves a cancelled job’s error out, as OpenAI leaves errors null on cancel; partial failures stay', () => {
    const error = { code: 1, message: 'CANCELED' }
    expect(jobErrorsOf({ state: 'JOB_STATE_CANCELLED', error })).toBeNull()
    expect(jobErrorsOf({ state: 'JOB_STATE_CANCELLING', error })).toBeNull()
    expect(
      jobErrorsOf({ state: 'JOB_STATE_CANCELLED', error, partialFailures: [{ code: 5, message: 'gone' }] }),
    ).toEqual([{ code: 'not_found', message: 'gone', param: null, line: null }])
    expect(jobErrorsOf({ state: 'JOB_STATE_FAILED', error })).toEqual([
      { code: 'cancelled', message: 'CANCELED', param: null, line: null },
    ])
  })

  it('gives an error without a message a readable one', () => {
    expect(jobErrorsOf({ error: { code: 1 } })).toEqual([
      { code: 'cancelled', message: 'The Vertex AI batch prediction job reported an error.', param: null, line: null },
    ])
  })
})
