import { randomBytes, randomInt } from 'node:crypto'

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

function alphanumeric(length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]
  return out
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex')

/** `file-` + 24 alphanumerics, like OpenAI's current file ids. */
export const newFileId = (): string => `file-${alphanumeric(24)}`
/** `batch_` + 32 hex digits. */
export const newBatchId = (): string => `batch_${hex(16)}`
/** `req_` + 32 hex digits, used for `x-request-id` and `response.request_id`. */
export const newRequestId = (): string => `req_${hex(16)}`
/** `batch_req_` + 32 hex digits: the per-line id in output and error files. */
export const newBatchRequestId = (): string => `batch_req_${hex(16)}`
/** `chatcmpl-` + 29 alphanumerics. */
export const newChatCompletionId = (): string => `chatcmpl-${alphanumeric(29)}`
/** `cmpl-` + 29 alphanumerics. */
export const newCompletionId = (): string => `cmpl-${alphanumeric(29)}`
/** `resp_` + 48 hex digits. */
export const newResponseId = (): string => `resp_${hex(24)}`
/** `msg_` + 48 hex digits. */
export const newMessageId = (): string => `msg_${hex(24)}`

/** Current time as OpenAI reports it: whole seconds since the epoch. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000)
