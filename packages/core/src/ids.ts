import { createHash, randomBytes, randomUUID } from 'node:crypto'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** The first `length` base-62 digits of a 256-bit value: about 143 bits of it for 24 digits. */
function base62(bytes: Uint8Array, length: number): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex')}`)
  let out = ''
  for (let i = 0; i < length; i++) {
    out += ALPHABET[Number(n % 62n)]
    n /= 62n
  }
  return out
}

/** A new file id shaped like OpenAI's: `file-` and 24 letters or digits. */
export function newFileId(): string {
  return `file-${base62(randomBytes(32), 24)}`
}

/**
 * The file id for a provider's output or error file of a batch. It is derived, not random, so that
 * several instances registering the same file at once agree on one record.
 */
export function derivedFileId(batchId: string, providerFileId: string): string {
  return `file-${base62(createHash('sha256').update(`${batchId}\n${providerFileId}`).digest(), 24)}`
}

/** A new batch id shaped like OpenAI's: `batch_` and 32 hex digits. */
export function newBatchId(): string {
  return `batch_${hex32()}`
}

/** A new request id for the `x-request-id` header. */
export function newRequestId(): string {
  return `req_${hex32()}`
}

/** 32 random hex digits (122 random bits): `randomUUID` draws from a cached pool, far cheaper per call than `randomBytes`. */
function hex32(): string {
  return randomUUID().replaceAll('-', '')
}
