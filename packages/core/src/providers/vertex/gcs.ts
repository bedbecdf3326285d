import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApiError, isApiError } from '../../errors.js'
import { Crc32c } from '../../util/crc32c.js'
import { jitter } from '../../util/jitter.js'
import type { ProviderDownload } from '../types.js'
import { asObject, type ErrorMapper, type GoogleHttp, NO_RETRY, PROVIDER, readJson } from './http.js'
import { checksumRefusal, uploadHashHeader, verifiedDownload, verifyUploaded } from './integrity.js'

/** GCS's granularity of resumable upload chunks: every chunk but the last is a multiple of it. */
export const GCS_CHUNK_GRANULE = 256 * 1024

/** The part of a GCS Object resource batchkit reads. */
export interface GcsObject {
  bucket: string
  name: string
  size: number
  /** RFC 3339. */
  timeCreated: string | null
  generation: string | null
  /** GCS's CRC32C of the bytes (base64, big-endian); null when the answer leaves it out. */
  crc32c: string | null
  metadata: Record<string, string>
}

/** Options of {@link GcsClient.upload}. */
export interface GcsUploadOptions {
  contentType: string
  /** Custom metadata, asked for when the upload starts (after the first byte when `lazy`). */
  metadata?: () => Record<string, string>
  /** Start the upload only when the first byte arrives; a source without any byte uploads nothing (null). */
  lazy?: boolean
  /**
   * Create the object only if there is none (`ifGenerationMatch=0`); when another writer got there first,
   * the existing object is the answer.
   */
  ifAbsent?: boolean
  signal?: AbortSignal | undefined
}

/** Bytes held as the pieces they arrived in. */
export interface Bytes {
  parts: Buffer[]
  length: number
}

const EMPTY: Readonly<Bytes> = Object.freeze({ parts: [], length: 0 })

/** Bytes `start` to `end` of `bytes`, sharing their memory. */
export function slice(bytes: Bytes, start: number, end = bytes.length): Bytes {
  const parts: Buffer[] = []
  let position = 0
  for (const part of bytes.parts) {
    const from = Math.max(start - position, 0)
    const to = Math.min(end - position, part.length)
    if (to > from) parts.push(from === 0 && to === part.length ? part : part.subarray(from, to))
    position += part.length
    if (position >= end) break
  }
  return { parts, length: Math.max(Math.min(end, bytes.length) - start, 0) }
}

/** Transient failures a chunk is retried after. */
const RETRY_DELAYS_MS = [250, 1000, 4000]

/**
 * A streaming client of the Cloud Storage JSON API: resumable uploads fed from a byte stream with
 * backpressure, media downloads as streams, metadata, listing by prefix and deletion. Every URL is built on
 * the configured endpoint; resumable uploads continue at the session URI GCS answers.
 */
export class GcsClient {
  constructor(
    private readonly http: GoogleHttp,
    /** e.g. `https://storage.googleapis.com`. */
    private readonly endpoint: string,
    /** Bytes per resumable chunk, a multiple of {@link GCS_CHUNK_GRANULE}. */
    private readonly chunkBytes: number,
  ) {
    if (!Number.isInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % GCS_CHUNK_GRANULE !== 0) {
      throw new TypeError(`vertex(): uploadChunkBytes must be a positive multiple of ${GCS_CHUNK_GRANULE}`)
    }
  }

  /** `gs://bucket/name`. */
  static uri(bucket: string, name: string): string {
    return `gs://${bucket}/${name}`
  }

  /** The object's metadata; null when there is none. */
  async stat(bucket: string, name: string, signal?: AbortSignal): Promise<GcsObject | null> {
    try {
      return toObject(await this.http.json('GET', this.objectUrl(bucket, name), undefined, { signal }))
    } catch (error) {
      if (isNotFound(error)) return null
      throw error
    }
  }

  /**
   * The object's bytes as a stream, with the length GCS states; a missing object is `upstream_not_found`.
   * The stream is checked against the object's checksum as it passes and ends with
   * `upstream_checksum_mismatch` in place of its end when the bytes were damaged.
   */
  async download(bucket: string, name: string, signal?: AbortSignal): Promise<ProviderDownload> {
    const response = await this.http.send('GET', `${this.objectUrl(bucket, name)}?alt=media`, {
      signal,
      streaming: true,
      headers: { accept: '*/*', 'accept-encoding': 'identity' },
    })
    const length = Number(response.headers['content-length'])
    return {
      body: verifiedDownload(response.body, response.headers),
      bytes: Number.isSafeInteger(length) ? length : null,
    }
  }

  /** Every object whose name starts with `prefix`, page after page. */
  async *list(bucket: string, prefix: string, signal?: AbortSignal): AsyncGenerator<GcsObject> {
    let pageToken: string | undefined
    do {
      const query = new URLSearchParams({ prefix })
      if (pageToken) query.set('pageToken', pageToken)
      const page = asObject(await this.http.json('GET', `${this.bucketUrl(bucket)}/o?${query}`, undefined, { signal }))
      const items = Array.isArray(page.items) ? page.items : []
      for (const item of items) yield toObject(item)
      pageToken = typeof page.nextPageToken === 'string' && page.nextPageToken !== '' ? page.nextPageToken : undefined
    } while (pageToken)
  }

  /** Deletes an object; false when there was none. */
  async delete(bucket: string, name: string, signal?: AbortSignal): Promise<boolean> {
    try {
      const response = await this.http.send('DELETE', this.objectUrl(bucket, name), { signal })
      await response.body.dump()
      return true
    } catch (error) {
      if (isNotFound(error)) return false
      throw error
    }
  }

  /** A small object in one request (`uploadType=media`), with its CRC32C for GCS to check. */
  async put(
    bucket: string,
    name: string,
    bytes: Buffer,
    options: { contentType: string; ifAbsent?: boolean; signal?: AbortSignal | undefined },
  ): Promise<GcsObject> {
    const query = new URLSearchParams({ uploadType: 'media', name })
    if (options.ifAbsent) query.set('ifGenerationMatch', '0')
    const crc = new Crc32c().update(bytes)
    try {
      const response = await this.http.send('POST', `${this.uploadUrl(bucket)}?${query}`, {
        body: bytes,
        headers: { 'content-type': options.contentType, 'x-goog-hash': uploadHashHeader(crc) },
        signal: options.signal,
        mapError: bucketNotFound,
      })
      const object = toObject(await readJson(response))
      await this.unlessIntact(object, crc, options.signal)
      return object
    } catch (error) {
      if (options.ifAbsent && isPreconditionFailed(error)) return this.existing(bucket, name, options.signal)
      throw error
    }
  }

  /**
   * Uploads `source` as the object `name` with a resumable upload: the bytes are cut into chunks of
   * `chunkBytes` (a multiple of 256 KiB), each sent with `Content-Range: bytes S-E/*` and the total given with
   * the last one. A 308 answer's `Range` says how much GCS kept; the rest is sent again, so at most one chunk
   * and one incoming piece are held. Nothing more is read from `source` while a chunk is on its way
   * (backpressure). A chunk that fails for a transient reason (5xx, 429, a lost connection) is retried after
   * asking GCS how much it has. Any failure cancels the session, so GCS keeps nothing.
   *
   * The bytes' CRC32C is computed as they stream and sent with the last chunk (`x-goog-hash`), so GCS refuses
   * to make an object of damaged bytes; the object GCS answers with must state that CRC32C too, or it is
   * deleted and the upload fails with `upstream_checksum_mismatch`.
   */
  async upload(
    bucket: string,
    name: string,
    source: AsyncIterable<Uint8Array | string>,
    options: GcsUploadOptions,
  ): Promise<GcsObject | null> {
    const session = new ResumableSession(this, bucket, name, options)
    try {
      let pending: Bytes = { parts: [], length: 0 }
      for await (const piece of source) {
        const bytes =
          typeof piece === 'string'
            ? Buffer.from(piece, 'utf8')
            : Buffer.isBuffer(piece)
              ? piece
              : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength)
        if (bytes.length === 0) continue
        session.crc.update(bytes)
        pending.parts.push(bytes)
        pending.length += bytes.length
        while (pending.length >= this.chunkBytes) {
          const kept = await session.send(slice(pending, 0, this.chunkBytes))
          pending = slice(pending, kept)
        }
      }
      if (options.lazy && !session.started && pending.length === 0) return null
      return await session.finish(pending)
    } catch (error) {
      await session.cancel()
      throw error
    }
  }

  /** Starts a resumable upload; resolves to its session URI, or null when `ifAbsent` found the object there. */
  async startSession(bucket: string, name: string, options: GcsUploadOptions): Promise<string | null> {
    const query = new URLSearchParams({ uploadType: 'resumable', name })
    if (options.ifAbsent) query.set('ifGenerationMatch', '0')
    const metadata = options.metadata?.() ?? {}
    const resource: Record<string, unknown> = { name, contentType: options.contentType }
    if (Object.keys(metadata).length > 0) resource.metadata = metadata
    const url = `${this.uploadUrl(bucket)}?${query}`
    let response: Awaited<ReturnType<GoogleHttp['send']>>
    try {
      response = await this.http.send('POST', url, {
        body: JSON.stringify(resource),
        headers: { 'content-type': 'application/json; charset=utf-8', 'x-upload-content-type': options.contentType },
        signal: options.signal,
        mapError: bucketNotFound,
      })
    } catch (error) {
      if (options.ifAbsent && isPreconditionFailed(error)) return null
      throw error
    }
    await response.body.dump()
    const location = response.headers.location
    if (typeof location !== 'string' || location === '') {
      throw new ApiError(502, `The ${PROVIDER} provider's storage started an upload without a session URI.`, {
        code: 'upstream_error',
      })
    }
    return new URL(location, url).toString()
  }

  /** The object that an `ifAbsent` write found already there. */
  async existing(bucket: string, name: string, signal?: AbortSignal): Promise<GcsObject> {
    const object = await this.stat(bucket, name, signal)
    if (!object)
      throw new ApiError(502, `The ${PROVIDER} provider lost an object being written.`, { code: 'upstream_error' })
    return object
  }

  /**
   * Deletes an object just written whose CRC32C is not that of the bytes sent, and fails; GCS had checked
   * them, so this is a last line against a store that does not.
   */
  async unlessIntact(object: GcsObject, sent: Crc32c, signal: AbortSignal | undefined): Promise<void> {
    try {
      verifyUploaded(object, sent)
    } catch (error) {
      await this.delete(object.bucket, object.name, signal).catch(() => undefined)
      throw error
    }
  }

  /**
   * Sends one PUT to a session URI (no bearer token: the URI is the credential); `hash` is the
   * `x-goog-hash` of the whole object, for the last chunk.
   */
  sessionPut(sessionUri: string, bytes: Bytes, contentRange: string, signal: AbortSignal | undefined, hash?: string) {
    return this.http.send('PUT', sessionUri, {
      // The pieces as they are, never copied into one buffer.
      body: bytes.length === 0 ? '' : Readable.from(bytes.parts, { objectMode: false }),
      headers: {
        'content-range': contentRange,
        'content-type': 'application/octet-stream',
        'content-length': String(bytes.length),
        ...(hash === undefined ? {} : { 'x-goog-hash': hash }),
      },
      auth: false,
      streaming: true,
      accept: [308],
      signal,
      mapError: sessionErrors,
    })
  }

  /** `DELETE <session URI>`: GCS drops the partial upload (and answers 499). */
  async cancelSession(sessionUri: string): Promise<void> {
    const response = await this.http.send('DELETE', sessionUri, { auth: false, accept: [499] })
    await response.body.dump()
  }

  private bucketUrl(bucket: string): string {
    return `${this.endpoint}/storage/v1/b/${encodeURIComponent(bucket)}`
  }

  private objectUrl(bucket: string, name: string): string {
    return `${this.bucketUrl(bucket)}/o/${encodeURIComponent(name)}`
  }

  private uploadUrl(bucket: string): string {
    return `${this.endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`
  }
}

/** One resumable upload: the session URI, the offset GCS has acknowledged, retries. */
class ResumableSession {
  started = false
  /** The CRC32C of every byte read from the source so far. */
  readonly crc = new Crc32c()
  private uri: string | null = null
  /** The object is already there (an `ifAbsent` upload that lost the race). */
  private exists = false
  /** Bytes GCS has kept. */
  private offset = 0
  private done = false
  /** The last chunk was sent: GCS may have made the object even if its answer never arrived. */
  private finishing = false

  constructor(
    private readonly gcs: GcsClient,
    private readonly bucket: string,
    private readonly name: string,
    private readonly options: GcsUploadOptions,
  ) {}

  /**
   * Sends `chunk` (the bytes from the acknowledged offset on) as a non-final chunk; resolves to how many of
   * its bytes GCS kept.
   */
  async send(chunk: Bytes): Promise<number> {
    await this.start()
    if (this.exists) return chunk.length
    const before = this.offset
    let stalled = 0
    while (this.offset === before) {
      const range = `bytes ${this.offset}-${this.offset + chunk.length - 1}/*`
      const answer = await this.put(chunk, range)
      if (answer.kind === 'done') throw protocolError('finished the upload before its last chunk')
      this.acknowledge(answer.kept, before, chunk.length)
      if (this.offset === before && ++stalled > 3) throw protocolError('kept none of the chunks sent')
    }
    return this.offset - before
  }

  /** Sends the last bytes with the total and resolves to the object. */
  async finish(rest: Bytes): Promise<GcsObject> {
    await this.start()
    if (this.exists) return this.gcs.existing(this.bucket, this.name, this.options.signal)
    let remaining = rest
    let stalled = 0
    this.finishing = true
    for (;;) {
      const total = this.offset + remaining.length
      const range = remaining.length === 0 ? `bytes */${total}` : `bytes ${this.offset}-${total - 1}/${total}`
      const answer = await this.put(remaining, range, uploadHashHeader(this.crc))
      if (answer.kind === 'done') {
        this.done = true
        if (!answer.object) return this.gcs.existing(this.bucket, this.name, this.options.signal)
        await this.gcs.unlessIntact(answer.object, this.crc, this.options.signal)
        return answer.object
      }
      const before = this.offset
      this.acknowledge(answer.kept, before, remaining.length)
      remaining = slice(remaining, this.offset - before)
      if (this.offset === before && ++stalled > 3) throw protocolError('kept none of the last chunk')
    }
  }

  /**
   * Abandons the session, best effort: GCS drops unfinished sessions after a week anyway. A session whose
   * last chunk went out may have made the object already (an abort or a lost answer): that is deleted too,
   * unless the upload was `ifAbsent`, whose object may be another writer's.
   */
  async cancel(): Promise<void> {
    if (this.uri === null || this.done) return
    const uri = this.uri
    this.uri = null
    await this.gcs.cancelSession(uri).catch(() => undefined)
    if (this.finishing && !this.options.ifAbsent) await this.gcs.delete(this.bucket, this.name).catch(() => undefined)
  }

  private async start(): Promise<void> {
    if (this.started) return
    this.started = true
    const uri = await this.gcs.startSession(this.bucket, this.name, this.options)
    if (uri === null) this.exists = true
    else this.uri = uri
  }

  /** Moves the acknowledged offset to what a 308's `Range` says GCS holds. */
  private acknowledge(kept: number, before: number, sent: number): void {
    if (kept < before || kept > before + sent) throw protocolError('acknowledged bytes outside the chunk')
    this.offset = kept
  }

  /** One PUT, retried on transient failures after asking GCS how much it has. */
  private async put(
    body: Bytes,
    range: string,
    hash?: string,
  ): Promise<{ kind: 'done'; object: GcsObject | null } | { kind: 'incomplete'; kept: number }> {
    const uri = this.uri!
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.answerOf(await this.gcs.sessionPut(uri, body, range, this.options.signal, hash))
      } catch (error) {
        const delay = RETRY_DELAYS_MS[attempt]
        if (delay === undefined || this.options.signal?.aborted || !isTransient(error)) {
          if (this.options.ifAbsent && isPreconditionFailed(error)) {
            this.done = true
            return { kind: 'done', object: null }
          }
          throw error
        }
        await sleep(jitter(delay), undefined, { signal: this.options.signal }).catch(() => undefined)
        // Where does the session stand? GCS may have kept some or all of the chunk.
        const status = await this.statusQuery(uri).catch(() => undefined)
        if (status?.kind === 'done') return status
        if (status?.kind === 'incomplete' && status.kept !== this.offset) return status
      }
    }
  }

  /** `PUT` with `Content-Range: bytes *\/*`: how much the session holds. */
  private async statusQuery(
    uri: string,
  ): Promise<{ kind: 'done'; object: GcsObject | null } | { kind: 'incomplete'; kept: number }> {
    return this.answerOf(await this.gcs.sessionPut(uri, EMPTY, 'bytes */*', this.options.signal))
  }

  private async answerOf(
    response: Awaited<ReturnType<GcsClient['sessionPut']>>,
  ): Promise<{ kind: 'done'; object: GcsObject | null } | { kind: 'incomplete'; kept: number }> {
    if (response.statusCode === 308) {
      await response.body.dump()
      const range = response.headers.range
      const match = typeof range === 'string' ? /^bytes=0-(\d+)$/.exec(range) : null
      return { kind: 'incomplete', kept: match ? Number(match[1]) + 1 : 0 }
    }
    return { kind: 'done', object: toObject(await readJson(response)) }
  }
}

/** The GCS Object resource as a {@link GcsObject}. */
export function toObject(value: unknown): GcsObject {
  const object = asObject(value)
  if (typeof object.name !== 'string' || typeof object.bucket !== 'string') {
    throw new ApiError(502, `The ${PROVIDER} provider's storage answered with an object batchkit does not recognise.`, {
      code: 'upstream_error',
    })
  }
  const size = Number(object.size)
  const metadata: Record<string, string> = {}
  if (typeof object.metadata === 'object' && object.metadata !== null) {
    for (const [key, item] of Object.entries(object.metadata)) if (typeof item === 'string') metadata[key] = item
  }
  return {
    bucket: object.bucket,
    name: object.name,
    size: Number.isSafeInteger(size) && size >= 0 ? size : 0,
    timeCreated: typeof object.timeCreated === 'string' ? object.timeCreated : null,
    generation: typeof object.generation === 'string' ? object.generation : null,
    crc32c: typeof object.crc32c === 'string' ? object.crc32c : null,
    metadata,
  }
}

/** `gs://bucket/name` → its parts. */
export function parseGsUri(uri: string): { bucket: string; name: string } | undefined {
  const match = /^gs:\/\/([^/]+)\/?(.*)$/.exec(uri)
  return match ? { bucket: match[1]!, name: match[2]! } : undefined
}

export function isNotFound(error: unknown): boolean {
  return isApiError(error) && error.code === 'upstream_not_found'
}

function isPreconditionFailed(error: unknown): boolean {
  return isApiError(error) && error.code === 'upstream_precondition_failed'
}

/** Errors of a session PUT that a retry may mend (5xx, 429, 408 answers), marked by {@link sessionErrors}. */
const transient = new WeakSet<object>()

function isTransient(error: unknown): boolean {
  if (!isApiError(error)) return false
  return transient.has(error) || error.code === 'upstream_unreachable' || error.code === 'upstream_timeout'
}

/** A bucket that does not exist is a configuration problem; GCS answers 404 for it when an upload starts. */
const bucketNotFound: ErrorMapper = (error) => {
  const refused = checksumRefusal(error)
  if (refused) return refused
  if (error.statusCode === 404) {
    return new ApiError(
      502,
      `The ${PROVIDER} provider's bucket does not exist or batchkit's credentials cannot see it; check the provider's bucket.`,
      { code: 'upstream_bucket_not_found', headers: NO_RETRY },
    )
  }
  if (error.statusCode === 412) return preconditionFailed()
  return undefined
}

function preconditionFailed(): ApiError {
  return new ApiError(409, `The ${PROVIDER} provider's storage already holds this object.`, {
    code: 'upstream_precondition_failed',
    headers: NO_RETRY,
  })
}

function protocolError(what: string): ApiError {
  return new ApiError(502, `The ${PROVIDER} provider's storage ${what} (resumable upload).`, {
    code: 'upstream_error',
  })
}

/** A session PUT: 412 is a conditional write that lost; 5xx, 429 and 408 are marked for a retry. */
const sessionErrors: ErrorMapper = (error) => {
  if (error.statusCode === 412) return preconditionFailed()
  const refused = checksumRefusal(error)
  if (refused) return refused
  if (error.statusCode >= 500 || error.statusCode === 429 || error.statusCode === 408) {
    const mapped = new ApiError(503, `The ${PROVIDER} provider's storage is unavailable; try again later.`, {
      code: 'upstream_unavailable',
    })
    transient.add(mapped)
    return mapped
  }
  return undefined
}
