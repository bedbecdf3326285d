import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { pipeline, type Readable, Transform } from 'node:stream'
import { ApiError } from '../../errors.js'
import { Crc32c } from '../../util/crc32c.js'
import type { GoogleErrorInfo } from './http.js'
import { PROVIDER } from './http.js'

/** An object's bytes were damaged on the way to or from GCS: the checksums GCS keeps did not match them. */
export function checksumMismatch(direction: 'upload' | 'download', algorithm: 'CRC32C' | 'MD5'): ApiError {
  const what = direction === 'upload' ? 'An upload to' : 'A download from'
  return new ApiError(
    502,
    `${what} the ${PROVIDER} provider's storage did not match its ${algorithm} checksum (the bytes were damaged on the way); try again.`,
    { code: 'upstream_checksum_mismatch' },
  )
}

/** `x-goog-hash` of the bytes hashed so far, sent with the last request of an upload for GCS to check. */
export function uploadHashHeader(crc: Crc32c): string {
  return `crc32c=${crc.base64()}`
}

/**
 * GCS's answer when the `x-goog-hash` sent with an upload does not match what it received
 * (`400 Provided CRC32C "…" doesn't match calculated CRC32C "…"`), as our error; else undefined.
 */
export function checksumRefusal(error: GoogleErrorInfo): ApiError | undefined {
  if (error.statusCode !== 400) return undefined
  const algorithm = /\b(crc32c|md5)\b/i.exec(error.message)?.[1]?.toUpperCase()
  return algorithm === 'CRC32C' || algorithm === 'MD5' ? checksumMismatch('upload', algorithm) : undefined
}

/** Throws when the object GCS made from an upload states a CRC32C other than that of the bytes sent. */
export function verifyUploaded(object: { crc32c: string | null }, sent: Crc32c): void {
  if (object.crc32c !== null && object.crc32c !== sent.base64()) throw checksumMismatch('upload', 'CRC32C')
}

/**
 * The body of a media download, checked as it streams against the `x-goog-hash` GCS sent with it
 * (CRC32C, else MD5, as Google's client does). A stream can only be found damaged at its end: the
 * bytes pass on as they come, and a mismatch ends the stream with an error in place of its end, so
 * a reader never takes damaged bytes for a whole object. Objects GCS transcodes (stored
 * gzip-encoded, served decoded) are not checked: their hashes are of the stored bytes.
 */
export function verifiedDownload(body: Readable, headers: IncomingHttpHeaders): Readable {
  const expected = expectedHashes(headers['x-goog-hash'])
  const stored = headers['x-goog-stored-content-encoding']
  const transcoded = typeof stored === 'string' && stored !== '' && stored !== 'identity'
  if (transcoded || (expected.crc32c === undefined && expected.md5 === undefined)) return body
  const crc = expected.crc32c === undefined ? undefined : new Crc32c()
  const md5 = crc === undefined ? createHash('md5') : undefined
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      crc?.update(chunk)
      md5?.update(chunk)
      done(null, chunk)
    },
    flush(done) {
      if (crc && crc.base64() !== expected.crc32c) return done(checksumMismatch('download', 'CRC32C'))
      if (md5 && md5.digest('base64') !== expected.md5) return done(checksumMismatch('download', 'MD5'))
      done()
    },
  })
  // Errors travel both ways: a failed source fails the check stream, a destroyed reader stops the source.
  return pipeline(body, check, () => undefined)
}

/** `crc32c=…,md5=…` (one header or several). */
function expectedHashes(header: string | string[] | undefined): { crc32c?: string; md5?: string } {
  const hashes: { crc32c?: string; md5?: string } = {}
  for (const part of [header ?? []].flat().flatMap((value) => value.split(','))) {
    const at = part.indexOf('=')
    const name = part.slice(0, at).trim().toLowerCase()
    const value = part.slice(at + 1).trim()
    if (at > 0 && (name === 'crc32c' || name === 'md5')) hashes[name] = value
  }
  return hashes
}
