import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { finished, pipeline } from 'node:stream/promises'
import busboy from 'busboy'
import { ApiError, fileNotFound, integerOutOfRange, invalidValue, missingParameter } from './errors.js'
import { integerQuery, paginate, sendJson } from './http.js'
import { newFileId, nowSeconds } from './ids.js'
import { type FakeFile, type FileObject, UPLOAD_PURPOSES } from './types.js'

const DAY_SECONDS = 24 * 60 * 60
/** OpenAI expires batch input files 30 days after upload unless told otherwise. */
const BATCH_FILE_EXPIRY_SECONDS = 30 * DAY_SECONDS
const MIN_EXPIRY_SECONDS = 3600
const MAX_EXPIRY_SECONDS = 30 * DAY_SECONDS
/** How far into an upload the batch format check looks for the end of the first line. */
const FIRST_LINE_PROBE_BYTES = 1024 * 1024

export interface FilesContext {
  files: Map<string, FakeFile>
  dataDir: string
}

/** The wire File object, with OpenAI's field order. */
export function toFileObject(file: FakeFile): FileObject {
  const { id, bytes, created_at, filename, object, purpose, status, expires_at, status_details } = file
  return { id, bytes, created_at, filename, object, purpose, status, expires_at, status_details }
}

function fileOr404(ctx: FilesContext, id: string): FakeFile {
  const file = ctx.files.get(id)
  if (!file) throw fileNotFound(id)
  return file
}

/** What a fake accepts in an upload beyond OpenAI's rules. */
export interface UploadRules {
  /** The `expires_after.seconds` range allowed for a purpose. @default one hour to 30 days */
  expiryRange?(purpose: string): { min: number; max: number }
  /** The expiry, in seconds, of a file uploaded without `expires_after`. @default 30 days for batch files, else none */
  defaultExpiry?(purpose: string): number | null
  /** Drop `expires_after` unread, as an API version that does not know it does. @default false */
  ignoreExpiresAfter?: boolean
}

/** `POST /files`: a streamed multipart upload; fields may come in any order. */
export async function uploadFile(ctx: FilesContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  sendJson(res, 200, toFileObject(await receiveUpload(ctx, req)))
}

/**
 * Reads and checks a multipart upload (fields in any order), stores its bytes and its {@link FakeFile},
 * and resolves to the file; a rejected or aborted upload leaves nothing behind.
 */
export async function receiveUpload(
  ctx: FilesContext,
  req: IncomingMessage,
  rules: UploadRules = {},
): Promise<FakeFile> {
  const fields = new Map<string, string>()
  let upload: Promise<{ id: string; path: string; bytes: number; filename: string }> | undefined
  let partial: WriteStream | undefined
  let committed = false

  let parser: busboy.Busboy
  try {
    parser = busboy({ headers: req.headers })
  } catch {
    throw new ApiError(
      400,
      `Invalid Content-Type header (${req.headers['content-type'] ?? 'none'}), expected multipart/form-data.`,
    )
  }
  parser.on('field', (name, value) => fields.set(name, value))
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || upload) {
      stream.resume()
      return
    }
    const id = newFileId()
    const path = join(ctx.dataDir, `${id}.part`)
    const sink = createWriteStream(path)
    partial = sink
    const written = pipeline(stream, sink).then(() => ({
      id,
      path,
      bytes: sink.bytesWritten,
      filename: info.filename ?? 'unknown_file',
    }))
    // Observed later; this keeps an aborted upload from surfacing as an unhandled rejection first.
    written.catch(() => undefined)
    upload = written
  })

  req.on('close', () => {
    if (!req.complete) parser.destroy(new Error('the client aborted the upload'))
  })
  // Not stream.pipeline: it would destroy `req`, and with it the socket the 400 below must go out on.
  req.pipe(parser)

  try {
    try {
      await finished(parser)
    } catch (error) {
      req.unpipe(parser)
      req.resume()
      throw new ApiError(400, `Could not parse the multipart form: ${(error as Error).message}`)
    }
    const uploaded = upload ? await upload : undefined
    if (!uploaded) throw missingParameter('file')
    const purpose = fields.get('purpose')
    if (purpose === undefined) throw missingParameter('purpose')
    if (!(UPLOAD_PURPOSES as readonly string[]).includes(purpose)) {
      throw invalidValue('purpose', purpose, UPLOAD_PURPOSES)
    }
    const expiresAfter = rules.ignoreExpiresAfter
      ? null
      : parseExpiresAfter(fields, rules.expiryRange?.(purpose) ?? { min: MIN_EXPIRY_SECONDS, max: MAX_EXPIRY_SECONDS })
    if (purpose === 'batch' && !(await startsWithJsonLine(uploaded.path, uploaded.bytes))) {
      throw new ApiError(400, 'Invalid file format for Batch API. Must be .jsonl')
    }

    const { id } = uploaded
    const path = join(ctx.dataDir, id)
    await rename(uploaded.path, path)
    committed = true
    const createdAt = nowSeconds()
    const expiry =
      expiresAfter ??
      (rules.defaultExpiry ? rules.defaultExpiry(purpose) : purpose === 'batch' ? BATCH_FILE_EXPIRY_SECONDS : null)
    const file: FakeFile = {
      id,
      bytes: uploaded.bytes,
      created_at: createdAt,
      filename: uploaded.filename,
      object: 'file',
      purpose: purpose as FakeFile['purpose'],
      status: 'processed',
      expires_at: expiry === null ? null : createdAt + expiry,
      status_details: null,
      path,
    }
    ctx.files.set(id, file)
    return file
  } finally {
    const sink = partial
    if (!committed && sink) {
      // Let the write stream settle and close first: one destroyed before its file was open still opens
      // (creates) it, and would leave it behind after the removal.
      await upload?.catch(() => undefined)
      if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()))
      await rm(sink.path, { force: true })
    }
  }
}

/** `expires_after[anchor]` / `expires_after[seconds]` (or the dot form Azure documents), both or neither. */
function parseExpiresAfter(fields: Map<string, string>, range: { min: number; max: number }): number | null {
  const anchor = fields.get('expires_after[anchor]') ?? fields.get('expires_after.anchor')
  const seconds = fields.get('expires_after[seconds]') ?? fields.get('expires_after.seconds')
  if (anchor === undefined && seconds === undefined) return null
  if (anchor === undefined) throw missingParameter('expires_after.anchor')
  if (seconds === undefined) throw missingParameter('expires_after.seconds')
  if (anchor !== 'created_at') throw invalidValue('expires_after.anchor', anchor, ['created_at'])
  if (!/^-?\d+$/.test(seconds)) {
    throw new ApiError(
      400,
      "Invalid type for 'expires_after.seconds': expected an integer, but got a string instead.",
      'invalid_request_error',
      'expires_after.seconds',
      'invalid_type',
    )
  }
  const value = Number(seconds)
  if (value < range.min || value > range.max) {
    throw integerOutOfRange('expires_after.seconds', value, range.min, range.max)
  }
  return value
}

/**
 * OpenAI rejects batch uploads that are empty or whose first line is not JSON; later lines are only checked when
 * a batch validates the file. A first line longer than the probe is given the benefit of the doubt.
 */
async function startsWithJsonLine(path: string, size: number): Promise<boolean> {
  if (size === 0) return false
  const handle = await open(path, 'r')
  try {
    const probe = Buffer.alloc(Math.min(size, FIRST_LINE_PROBE_BYTES))
    const { bytesRead } = await handle.read(probe, 0, probe.length, 0)
    const head = probe.subarray(0, bytesRead)
    const newline = head.indexOf(0x0a)
    if (newline === -1 && size > bytesRead) return true
    const firstLine = head.subarray(0, newline === -1 ? bytesRead : newline).toString('utf8')
    JSON.parse(firstLine)
    return true
  } catch {
    return false
  } finally {
    await handle.close()
  }
}

/** `GET /files`: filter by purpose, `order` by creation (newest first by default), cursor `after`. */
export function listFiles(ctx: FilesContext, query: URLSearchParams, res: ServerResponse): void {
  const purpose = query.get('purpose')
  const order = query.get('order') ?? 'desc'
  if (order !== 'asc' && order !== 'desc') throw invalidValue('order', order, ['asc', 'desc'])
  const limit = integerQuery(query, 'limit', 10_000, 1, 10_000)
  // Map insertion order is creation order, which also breaks ties within the same second.
  let files = [...ctx.files.values()]
  if (purpose !== null) files = files.filter((file) => file.purpose === purpose)
  if (order === 'desc') files.reverse()
  const page = paginate(files, query.get('after') ?? undefined, limit)
  sendJson(res, 200, { ...page, data: page.data.map(toFileObject) })
}

/** `GET /files/{id}`. */
export function retrieveFile(ctx: FilesContext, id: string, res: ServerResponse): void {
  sendJson(res, 200, toFileObject(fileOr404(ctx, id)))
}

/** `DELETE /files/{id}`: forgets the file and removes its bytes. */
export async function deleteFile(ctx: FilesContext, id: string, res: ServerResponse): Promise<void> {
  const file = fileOr404(ctx, id)
  ctx.files.delete(id)
  await rm(file.path, { force: true })
  sendJson(res, 200, { id, object: 'file', deleted: true })
}

/** `GET /files/{id}/content`: the bytes, streamed from disk. */
export async function downloadFile(ctx: FilesContext, id: string, res: ServerResponse): Promise<void> {
  const file = fileOr404(ctx, id)
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes })
  await pipeline(createReadStream(file.path), res)
}
