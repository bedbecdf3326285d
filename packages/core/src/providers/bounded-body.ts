import type { Readable } from 'node:stream'

/** The most of an upstream error body batchkit reads; real error bodies are a few hundred bytes. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024

/**
 * The first `maxBytes` of a response body as UTF-8 text. Reading stops as soon as that many bytes have
 * arrived and the body is destroyed, so an upstream that answers an error with megabytes costs at most
 * `maxBytes` and one chunk, never the whole body. A body that fails part way is read for what arrived.
 */
export async function readBoundedText(body: Readable, maxBytes = MAX_ERROR_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = []
  let length = 0
  // Destroying an undici body may emit an error nobody else listens for.
  body.on('error', () => undefined)
  try {
    for await (const chunk of body) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
      chunks.push(bytes)
      length += bytes.length
      if (length >= maxBytes) break
    }
  } catch {
    // A body cut short is read for what arrived.
  } finally {
    body.destroy()
  }
  // A multi-byte character cut at the limit decodes as U+FFFD, which no parser of these bodies minds.
  return Buffer.concat(chunks, length).subarray(0, maxBytes).toString('utf8')
}

/** The first {@link MAX_ERROR_BODY_BYTES} of an error body parsed as JSON; undefined when it is not JSON. */
export async function readErrorJson(body: Readable): Promise<unknown> {
  try {
    return JSON.parse(await readBoundedText(body))
  } catch {
    return undefined
  }
}
