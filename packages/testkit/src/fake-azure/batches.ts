import type { IncomingMessage } from 'node:http'
import type { BatchRunner } from '../fake-openai/batch-runner.js'
import { parseMetadata, parseOutputExpiresAfter } from '../fake-openai/batches.js'
import { invalidType, invalidValue, missingParameter } from '../fake-openai/errors.js'
import { isRecord, readJsonBody } from '../fake-openai/http.js'
import type { FakeBatch, FakeFile } from '../fake-openai/types.js'
import { AzureError } from './errors.js'
import type { AzureFileStatus } from './types.js'

/** The endpoints Azure OpenAI runs batches for, in both spellings its docs use. */
export const AZURE_BATCH_ENDPOINTS = [
  '/chat/completions',
  '/v1/chat/completions',
  '/responses',
  '/v1/responses',
  '/embeddings',
  '/v1/embeddings',
] as const

/** The range Azure documents for batch files' `expires_after` and batches' `output_expires_after`: 14 to 30 days. */
export const AZURE_EXPIRY_RANGE = { min: 14 * 24 * 60 * 60, max: 30 * 24 * 60 * 60 } as const

const CREATE_PARAMS = new Set(['input_file_id', 'endpoint', 'completion_window', 'metadata', 'output_expires_after'])

export interface AzureBatchesContext {
  files: Map<string, FakeFile>
  runner: BatchRunner
  statusOf(fileId: string): AzureFileStatus | undefined
  /** The `output_expires_after.seconds` taken; null when the API version drops the field unread. */
  expiryRange: { min: number; max: number } | null
}

/**
 * `POST /batches`: OpenAI's synchronous checks with Azure's endpoints and expiry range, plus Azure's
 * refusal of an input file it has not processed yet.
 */
export async function createAzureBatch(ctx: AzureBatchesContext, req: IncomingMessage): Promise<FakeBatch> {
  const body = await readJsonBody(req)
  if (!isRecord(body)) throw invalidType('body', 'an object', body)
  if (ctx.expiryRange === null) delete body.output_expires_after
  for (const key of Object.keys(body)) {
    if (!CREATE_PARAMS.has(key)) throw new AzureError(400, 'invalidPayload', `Unrecognized request argument: ${key}`)
  }
  for (const param of ['input_file_id', 'endpoint', 'completion_window'] as const) {
    if (body[param] === undefined || body[param] === null) throw missingParameter(param)
    if (typeof body[param] !== 'string') throw invalidType(param, 'a string', body[param])
  }
  const inputFileId = body.input_file_id as string
  const endpoint = body.endpoint as string
  const completionWindow = body.completion_window as string
  if (!(AZURE_BATCH_ENDPOINTS as readonly string[]).includes(endpoint)) {
    throw invalidValue('endpoint', endpoint, AZURE_BATCH_ENDPOINTS)
  }
  if (completionWindow !== '24h') throw invalidValue('completion_window', completionWindow, ['24h'])
  const metadata = parseMetadata(body.metadata)
  const outputExpiresAfterSeconds =
    ctx.expiryRange === null ? null : parseOutputExpiresAfter(body.output_expires_after, ctx.expiryRange)

  const inputFile = ctx.files.get(inputFileId)
  if (inputFile && inputFile.purpose !== 'batch') {
    throw new AzureError(
      400,
      'invalidPayload',
      `The input file '${inputFileId}' has purpose '${inputFile.purpose}'; batch input files need purpose 'batch'.`,
      { param: 'input_file_id' },
    )
  }
  const status = ctx.statusOf(inputFileId)
  if (inputFile && status !== 'processed') {
    throw new AzureError(
      400,
      'invalidPayload',
      `The input file '${inputFileId}' is in '${status}' state. Only files with status 'Processed' are accepted for batch inferencing.`,
      { param: 'input_file_id' },
    )
  }
  return ctx.runner.create({
    input_file_id: inputFileId,
    endpoint,
    completion_window: completionWindow,
    metadata,
    outputExpiresAfterSeconds,
  })
}
