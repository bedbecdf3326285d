import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { open, rm, truncate, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { GoogleError, invalidArgument, noRoute, sendJson } from './errors.js'
import { type GcsStore, type UploadHashes, uploadHashes } from './storage.js'
import type { FakeGcsCorruption, FakeGcsObject } from './types.js'

/** Largest JSON metadata body of an upload initiation. */
const MAX_METADATA_BYTES = 1024 * 1024

/** A resumable upload in progress. */
interface UploadSession {
  id: string
  bucket: string
  name: string
  contentType: string
  metadata: Record<string, string> | undefined
  /** `X-Upload-Content-Length`, when the client declared it. */
  declaredTotal: number | undefined
  /** Where the persisted bytes accumulate. */
  path: string
  /** Bytes persisted so far: a multiple of the chunk granularity until the last chunk. */
  persisted: number
  /** The object, once the upload is complete. */
  result?: FakeGcsObject
}

export interface GcsContext {
  store: GcsStore
  origin: () => string
  /** Non-final chunks are persisted up to a multiple of this. */
  chunkBytes: number
  sessions: Map<string, UploadSession>
  /** Whether an upload's `x-goog-hash` is checked. */
  verifyUploadHashes: boolean
  /** Damage queued by `corruptNext`, taken first come first served. */
  corruptions: FakeGcsCorruption[]
}

const BUCKET_OBJECTS = /^\/(?:upload\/)?storage\/v1\/b\/([^/]+)\/o$/
const OBJECT = /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/
const DOWNLOAD = /^\/download\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/

/**
 * Whether a request needs the bearer token: a resumable session URI is itself the credential, as on GCS.
 */
export function gcsNeedsAuth(method: string, url: URL): boolean {
  return !(url.pathname.startsWith('/upload/') && url.searchParams.has('upload_id') && method !== 'POST')
}

/** Routes one GCS JSON API request. */
export async function handleGcs(ctx: GcsContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET'
  const path = url.pathname
  const query = url.searchParams

  let match = BUCKET_OBJECTS.exec(path)
  if (match) {
    const bucket = decode(match[1]!)
    const upload = path.startsWith('/upload/')
    if (upload && method === 'POST') return startUpload(ctx, req, res, bucket, query)
    if (upload && method === 'PUT' && query.has('upload_id')) return putChunk(ctx, req, res, query.get('upload_id')!)
    if (upload && method === 'DELETE' && query.has('upload_id')) return cancelUpload(ctx, res, query.get('upload_id')!)
    if (!upload && method === 'GET') return listObjects(ctx, res, bucket, query)
  }
  match = OBJECT.exec(path)
  if (match) {
    const bucket = decode(match[1]!)
    const name = decode(match[2]!)
    if (method === 'GET' && query.get('alt') === 'media') return download(ctx, res, bucket, name, query)
    if (method === 'GET') return sendJson(res, 200, ctx.store.resource(ctx.store.require(bucket, name)))
    if (method === 'DELETE') {
      await ctx.store.delete(bucket, name)
      res.writeHead(204, { 'content-length': 0 })
      res.end()
      return
    }
  }
  match = DOWNLOAD.exec(path)
  if (match && method === 'GET') return download(ctx, res, decode(match[1]!), decode(match[2]!), query)
  throw noRoute(method, path)
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw invalidArgument('Invalid percent-encoding in the path.')
  }
}

/** `POST /upload/storage/v1/b/{bucket}/o?uploadType=…`. */
async function startUpload(
  ctx: GcsContext,
  req: IncomingMessage,
  res: ServerResponse,
  bucket: string,
  query: URLSearchParams,
): Promise<void> {
  const uploadType = query.get('uploadType')
  if (uploadType === 'media') return simpleUpload(ctx, req, res, bucket, query)
  if (uploadType !== 'resumable') {
    await drain(req)
    throw invalidArgument(
      uploadType === null
        ? 'Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/'
        : `The fake GCS supports uploadType 'media' and 'resumable', not '${uploadType}'.`,
    )
  }
  ctx.store.checkBucket(bucket)
  const metadata = await readMetadata(req)
  const name = query.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined)
  if (!name) throw new GoogleError(400, 'Required', { reason: 'required' })
  const declared = req.headers['x-upload-content-length']
  let declaredTotal: number | undefined
  if (typeof declared === 'string') {
    if (!/^\d+$/.test(declared)) throw invalidArgument('Invalid X-Upload-Content-Length.')
    declaredTotal = Number(declared)
  }
  const contentType =
    headerString(req, 'x-upload-content-type') ??
    (typeof metadata.contentType === 'string' ? metadata.contentType : undefined) ??
    'application/octet-stream'
  const custom = isStringRecord(metadata.metadata) ? metadata.metadata : undefined

  const id = randomBytes(24).toString('base64url')
  const session: UploadSession = {
    id,
    bucket,
    name,
    contentType,
    metadata: custom,
    declaredTotal,
    path: ctx.store.tempPath(),
    persisted: 0,
  }
  await writeFile(session.path, '')
  ctx.sessions.set(id, session)
  const location = `${ctx.origin()}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`
  res.writeHead(200, { location, 'x-guploader-uploadid': id, 'content-length': 0 })
  res.end()
}

/**
 * `PUT <session URI>`: a chunk (`Content-Range: bytes S-E/TOTAL`, TOTAL may be `*` until the last chunk), a
 * status query or final commit (an empty body with `Content-Range: bytes *` + `/TOTAL`), or the whole body.
 */
async function putChunk(ctx: GcsContext, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  const session = ctx.sessions.get(id)
  if (!session) {
    await drain(req)
    throw new GoogleError(404, 'No such upload session (it was completed long ago, cancelled, or never existed).')
  }
  if (session.result) {
    await drain(req)
    return sendJson(res, 200, ctx.store.resource(session.result))
  }

  const header = headerString(req, 'content-range')
  let start = 0
  let end: number | undefined
  let total: number | undefined
  if (header !== undefined) {
    const chunk = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header)
    const status = /^bytes \*\/(\d+|\*)$/.exec(header)
    if (chunk) {
      start = Number(chunk[1])
      end = Number(chunk[2])
      total = chunk[3] === '*' ? undefined : Number(chunk[3])
      if (end < start) {
        await drain(req)
        throw invalidArgument(`Invalid Content-Range: ${header}`)
      }
    } else if (status) {
      if ((await drain(req)) > 0) throw invalidArgument('A Content-Range of bytes */… takes an empty body.')
      const declared = status[1] === '*' ? undefined : Number(status[1])
      if (declared !== undefined && declared === session.persisted) return finish(ctx, req, res, session)
      if (declared !== undefined && declared < session.persisted) {
        throw invalidArgument(`The total ${declared} is less than the ${session.persisted} bytes already persisted.`)
      }
      return resumeIncomplete(res, session)
    } else {
      await drain(req)
      throw invalidArgument(`Invalid Content-Range: ${header}`)
    }
  } else if (session.persisted !== 0) {
    await drain(req)
    throw invalidArgument('A PUT without Content-Range must carry the whole object; this session already has data.')
  }

  if (start !== session.persisted) {
    await drain(req)
    throw invalidArgument(
      `Invalid request. The chunk starts at byte ${start} but ${session.persisted} bytes are persisted; resume from the persisted offset.`,
    )
  }
  if (total !== undefined && session.declaredTotal !== undefined && total !== session.declaredTotal) {
    await drain(req)
    throw invalidArgument(`The total ${total} differs from X-Upload-Content-Length ${session.declaredTotal}.`)
  }

  const sink = createWriteStream(session.path, { flags: 'a' })
  try {
    await pipeline(req, sink)
  } catch (error) {
    // An interrupted chunk persists nothing, so the client can resume from the last 308's Range.
    await truncate(session.path, session.persisted)
    throw error
  }
  const written = sink.bytesWritten
  const size = session.persisted + written
  const rollback = async (message: string): Promise<never> => {
    await truncate(session.path, session.persisted)
    throw invalidArgument(message)
  }
  if (end === undefined) {
    // The whole object in one request.
    total = written
  } else if (written !== end - start + 1) {
    return rollback(`The Content-Range says ${end - start + 1} bytes but the request carried ${written}.`)
  }
  if (total !== undefined && size > total) return rollback(`The upload exceeds its declared total of ${total} bytes.`)
  if (total !== undefined && size === total) {
    session.persisted = size
    return finish(ctx, req, res, session)
  }
  const aligned = Math.floor(size / ctx.chunkBytes) * ctx.chunkBytes
  if (aligned !== size) await truncate(session.path, aligned)
  session.persisted = aligned
  resumeIncomplete(res, session)
}

/** 308 Resume Incomplete, with the persisted range. */
function resumeIncomplete(res: ServerResponse, session: UploadSession): void {
  const headers: Record<string, string | number> = { 'content-length': 0, 'x-guploader-uploadid': session.id }
  if (session.persisted > 0) headers.range = `bytes=0-${session.persisted - 1}`
  res.writeHead(308, headers)
  res.end()
}

/** Makes the object of a complete upload; the last request's `x-goog-hash` is checked, as GCS does. */
async function finish(
  ctx: GcsContext,
  req: IncomingMessage,
  res: ServerResponse,
  session: UploadSession,
): Promise<void> {
  await corruptIfAsked(ctx, session.path)
  try {
    session.result = await ctx.store.commit(
      session.bucket,
      session.name,
      session.path,
      session.contentType,
      session.metadata,
      expectedHashes(ctx, req),
    )
  } catch (error) {
    // A refused upload is over: GCS keeps nothing of it.
    ctx.sessions.delete(session.id)
    throw error
  }
  sendJson(res, 200, ctx.store.resource(session.result))
}

function expectedHashes(ctx: GcsContext, req: IncomingMessage): UploadHashes | undefined {
  return ctx.verifyUploadHashes ? uploadHashes(req.headers['x-goog-hash']) : undefined
}

/** Flips the first byte of the file at `path` when an upload's corruption is queued. */
async function corruptIfAsked(ctx: GcsContext, path: string): Promise<void> {
  const at = ctx.corruptions.indexOf('upload')
  if (at === -1) return
  ctx.corruptions.splice(at, 1)
  const file = await open(path, 'r+')
  try {
    const byte = Buffer.alloc(1)
    if ((await file.read(byte, 0, 1, 0)).bytesRead === 1) await file.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 0)
  } finally {
    await file.close()
  }
}

/** A stream that flips the first byte passing through it. */
function flipFirstByte(): Transform {
  let first = true
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (first && chunk.length > 0) {
        first = false
        const copy = Buffer.from(chunk)
        copy[0] = copy[0]! ^ 0xff
        return done(null, copy)
      }
      done(null, chunk)
    },
  })
}

/** `DELETE <session URI>`: abandons the upload with GCS's 499. */
async function cancelUpload(ctx: GcsContext, res: ServerResponse, id: string): Promise<void> {
  const session = ctx.sessions.get(id)
  if (!session) throw new GoogleError(404, 'No such upload session.')
  ctx.sessions.delete(id)
  if (!session.result) await rm(session.path, { force: true })
  res.writeHead(499, { 'content-length': 0 })
  res.end()
}

/** `POST …?uploadType=media&name=…`: the body is the object. */
async function simpleUpload(
  ctx: GcsContext,
  req: IncomingMessage,
  res: ServerResponse,
  bucket: string,
  query: URLSearchParams,
): Promise<void> {
  const name = query.get('name')
  if (!name) {
    await drain(req)
    throw new GoogleError(400, 'Required', { reason: 'required' })
  }
  ctx.store.checkBucket(bucket)
  const temp = ctx.store.tempPath()
  try {
    await pipeline(req, createWriteStream(temp))
    await corruptIfAsked(ctx, temp)
    const object = await ctx.store.commit(
      bucket,
      name,
      temp,
      headerString(req, 'content-type') ?? 'application/octet-stream',
      undefined,
      expectedHashes(ctx, req),
    )
    sendJson(res, 200, ctx.store.resource(object))
  } finally {
    await rm(temp, { force: true })
  }
}

/** `GET …?alt=media`: the bytes, streamed from disk. */
async function download(
  ctx: GcsContext,
  res: ServerResponse,
  bucket: string,
  name: string,
  query: URLSearchParams,
): Promise<void> {
  const object = ctx.store.require(bucket, name)
  const generation = query.get('generation')
  if (generation !== null && generation !== object.generation)
    throw new GoogleError(404, `No such object: ${bucket}/${name}#${generation}`)
  res.writeHead(200, {
    'content-type': object.contentType,
    'content-length': object.size,
    'x-goog-generation': object.generation,
    'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5Hash}`,
    'x-goog-stored-content-length': object.size,
  })
  const at = ctx.corruptions.indexOf('download')
  if (at === -1) return pipeline(createReadStream(object.path), res)
  ctx.corruptions.splice(at, 1)
  await pipeline(createReadStream(object.path), flipFirstByte(), res)
}

/** `GET /storage/v1/b/{bucket}/o?prefix=&delimiter=&maxResults=&pageToken=`. */
function listObjects(ctx: GcsContext, res: ServerResponse, bucket: string, query: URLSearchParams): void {
  const rawMax = query.get('maxResults')
  if (rawMax !== null && !/^\d+$/.test(rawMax)) throw invalidArgument(`Invalid maxResults: ${rawMax}`)
  const maxResults = rawMax === null ? 1000 : Math.min(Math.max(Number(rawMax), 1), 1000)
  const page = ctx.store.list(bucket, {
    prefix: query.get('prefix') ?? '',
    delimiter: query.get('delimiter') || undefined,
    maxResults,
    pageToken: query.get('pageToken') ?? undefined,
  })
  // GCS leaves out empty lists and a missing token.
  sendJson(res, 200, {
    kind: 'storage#objects',
    ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
    ...(page.items.length > 0 ? { items: page.items.map((object) => ctx.store.resource(object)) } : {}),
  })
}

async function readMetadata(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_METADATA_BYTES) throw new GoogleError(413, 'Metadata part is too large.')
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // Falls through.
  }
  throw invalidArgument('Invalid JSON payload received: the upload metadata must be a JSON object.')
}

/** Reads and discards a request body; resolves to its length. */
async function drain(req: IncomingMessage): Promise<number> {
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) size += chunk.length
  return size
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return typeof value === 'string' ? value : undefined
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((item) => typeof item === 'string')
  )
}
