import { describe, expect, it } from 'vitest'
import { azureCodeToken } from '../src/providers/azure/errors.js'
import { normaliseBatch, normaliseStatus, unixSeconds } from '../src/providers/azure/normalise.js'
import { toProviderBatch } from '../src/providers/openai/objects.js'

describe('unixSeconds', () => {
  it.each([
    [1_720_000_000, 1_720_000_000],
    [1_720_000_000.9, 1_720_000_000],
    [1_720_000_000_123, 1_720_000_000],
    ['1720000000', 1_720_000_000],
    ['1720000000123', 1_720_000_000],
    ['2024-07-03T09:46:40Z', 1_720_000_000],
    ['2024-07-03T09:46:40.5917693Z', 1_720_000_000],
    ['2024-07-03T09:46:40.000+00:00', 1_720_000_000],
    ['2024-07-03T11:46:40+02:00', 1_720_000_000],
    ['2024-07-03T04:46:40-0500', 1_720_000_000],
    ['2024-07-03 09:46:40', 1_720_000_000],
    ['2024-07-03T09:46:40', 1_720_000_000],
    ['2024-07-03', 1_719_964_800],
    [null, null],
    [undefined, null],
    ['', null],
    ['yesterday', null],
    ['2024-13-45T99:99:99Z', null],
    [Number.NaN, null],
    [{}, null],
  ])('%j → %j', (value, seconds) => {
    expect(unixSeconds(value)).toBe(seconds)
  })
})

describe('normaliseStatus', () => {
  it.each([
    ['Validating', 'validating'],
    ['InProgress', 'in_progress'],
    ['IN_PROGRESS', 'in_progress'],
    ['in progress', 'in_progress'],
    ['Finalizing', 'finalizing'],
    ['Completed', 'completed'],
    ['Failed', 'failed'],
    ['Expired', 'expired'],
    ['Cancelling', 'cancelling'],
    ['Canceling', 'cancelling'],
    ['Cancelled', 'cancelled'],
    ['Canceled', 'cancelled'],
    ['cancelled', 'cancelled'],
    ['Processed', 'processed'],
  ])('%s → %s', (status, expected) => {
    expect(normaliseStatus(status)).toBe(expected)
  })
})

describe('a legacy Azure Batch object', () => {
  it('parses as OpenAI’s', () => {
    const batch = toProviderBatch(
      normaliseBatch({
        id: 'batch_1',
        object: 'batch',
        endpoint: null,
        status: 'InProgress',
        created_at: '2024-07-03T09:46:40.0000000Z',
        in_progress_at: '2024-07-03T09:47:40.0000000Z',
        expires_at: '2024-07-04T09:46:40Z',
        completed_at: null,
        request_counts: { total: null, completed: null, failed: null },
        output_file_id: null,
        error_file_id: '',
      }),
      'azure',
    )
    expect(batch).toMatchObject({
      id: 'batch_1',
      status: 'in_progress',
      inProgressAt: 1_720_000_060,
      expiresAt: 1_720_086_400,
      completedAt: null,
      requestCounts: { total: 0, completed: 0, failed: 0 },
      outputFileId: null,
    })
  })

  it('with an unknown status is a 502', () => {
    expect(() => toProviderBatch(normaliseBatch({ id: 'b', status: 'Paused' }), 'azure')).toThrow(
      'The azure provider answered with an object batchkit does not recognise.',
    )
  })
})

describe('azureCodeToken', () => {
  it.each([
    ['invalidPayload', 'invalid_payload'],
    ['unexpectedEntityState', 'unexpected_entity_state'],
    ['BadRequest', 'bad_request'],
    ['PermissionDenied', 'permission_denied'],
    ['ResponsibleAIPolicyViolation', 'responsible_ai_policy_violation'],
    ['model_not_found', 'model_not_found'],
    ['DeploymentNotFound', 'deployment_not_found'],
    ['401', null],
    ['', null],
    ['<b>x</b>', null],
    ['a'.repeat(65), null],
    [42, null],
    [null, null],
  ])('%j → %j', (code, token) => {
    expect(azureCodeToken(code)).toBe(token)
  })
})
