import { describe, expect, it } from 'vitest'
import { createSchemaValidator } from '../src/index.js'

const validator = createSchemaValidator()

describe('createSchemaValidator', () => {
  it('accepts OpenAI’s documented examples', () => {
    validator.assert('OpenAIFile', {
      id: 'file-52voFe6FU6MWyAwa1Uj39R',
      bytes: 170,
      created_at: 1787176071,
      filename: 'bad_lines.jsonl',
      object: 'file',
      purpose: 'batch',
      status: 'processed',
      expires_at: 1789768071,
      status_details: null,
    })
    validator.assert('BatchRequestOutput', {
      id: 'batch_req_123',
      custom_id: 'request-3',
      response: null,
      error: {
        code: 'batch_expired',
        message: 'This request could not be executed before the completion window expired.',
      },
    })
    validator.assert('ErrorResponse', {
      error: { message: 'No such File object: file-abc123', type: 'invalid_request_error', param: 'id', code: null },
    })
  })

  it('throws listing the violations', () => {
    let message = ''
    try {
      validator.assert('DeleteFileResponse', { id: 'file-1', object: 'batch' })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain("Value does not match OpenAI schema 'DeleteFileResponse'")
    expect(message).toContain('/object must be equal to one of the allowed values')
    expect(message).toContain("(root) must have required property 'deleted'")
    expect(() => validator.assert('Batch', { id: 'b', object: 'batch' })).toThrow(/required property/)
  })

  it('rejects unknown schema names', () => {
    expect(() => validator.assert('NoSuchSchema', {})).toThrow(/Unknown OpenAI schema 'NoSuchSchema'/)
  })
})
