import { PassThrough, type Readable, type Writable } from 'node:stream'
import { DEFAULT_UPLOAD_LIMITS } from '../../files/upload-limits.js'
import type { UploadPurpose } from '../../types.js'
import { decodeUtf8, LineSplitter, toBytes } from '../../util/lines.js'
import type { ProviderFile, ProviderUpload } from '../types.js'
import type { GcsClient, GcsObject } from './gcs.js'
import { rfc3339ToSeconds } from './job-state.js'
import type { Layout } from './layout.js'
import { VertexRequestTransform } from './request-transform.js'

/** Custom metadata of the converted object: the model of its requests, for the job (Vertex names it per job). */
export const MODEL_METADATA_KEY = 'batchkit_model'

/** Custom metadata of the original object: the file name it was uploaded with. */
export const FILENAME_METADATA_KEY = 'batchkit_filename'

/** Custom metadata of both objects of an upload: its tag (batchkit's file id), checked by `findFile`. */
export const TAG_METADATA_KEY = 'batchkit_tag'

/** The longest model name carried in metadata (GCS allows 8 KiB of custom metadata in all). */
const MAX_MODEL_CHARS = 1024

const noop = (): void => undefined

/**
 * Stores an upload as two objects fed from the one incoming stream at once: the bytes as uploaded
 * (`original`, always) and their conversion to Gemini batch lines (`vertex.jsonl`), each through its own
 * resumable upload. Each chunk is written to both and the next one is read only when both have taken it,
 * so memory holds at most a chunk per upload and the file is never buffered.
 *
 * The purpose may only be known at the end of the stream, so the conversion runs until the file is known
 * not to be a batch file (then it stops and its object is dropped). A line it cannot convert fails the upload
 * as soon as the purpose is known to be `batch` (naming the line); for other purposes it only ends the
 * conversion. Any other failure (the client's stream, the core's validator, GCS, an abort) fails both uploads,
 * cancels their sessions and deletes whatever was already stored.
 */
export async function uploadInput(
  gcs: GcsClient,
  layout: Layout,
  fileId: string,
  upload: ProviderUpload,
): Promise<ProviderFile> {
  const names = { original: layout.original(fileId), converted: layout.converted(fileId) }
  const abort = new AbortController()
  let failure: unknown
  let failed = false
  const fail = (error: unknown): void => {
    if (failed) return
    failed = true
    failure = error
    abort.abort(error)
  }
  const onCallerAbort = (): void => fail(upload.signal.reason)

  let purpose: UploadPurpose | undefined
  upload.purpose.then((value) => {
    purpose = value
  }, noop)

  const original = new PassThrough()
  const transform = new VertexRequestTransform()
  const sniffer = new ModelSniffer()
  /** Chunks still go to the conversion. */
  let converting = true
  /** The conversion was stopped because the file is not a batch file. */
  let dropped = false
  /** The first line the conversion could not handle. */
  let conversionError: unknown

  original.on('error', noop)
  transform.on('error', (error) => {
    if (failed || dropped || conversionError !== undefined) return
    converting = false
    conversionError = error
    upload.purpose.then((value) => {
      if (value === 'batch') fail(error)
    }, noop)
  })
  const aborted = new Promise<void>((resolve) => {
    abort.signal.addEventListener(
      'abort',
      () => {
        // Like an HTTP client whose request is aborted, stop reading the body.
        upload.body.destroy()
        original.destroy()
        transform.destroy()
        resolve()
      },
      { once: true },
    )
  })
  if (upload.signal.aborted) onCallerAbort()
  else upload.signal.addEventListener('abort', onCallerAbort, { once: true })

  const drop = (): void => {
    if (dropped) return
    dropped = true
    converting = false
    transform.destroy()
  }

  const originalUpload = gcs.upload(layout.bucket, names.original, original, {
    contentType: 'application/octet-stream',
    metadata: () => ({ [FILENAME_METADATA_KEY]: upload.filename, [TAG_METADATA_KEY]: upload.tag }),
    signal: abort.signal,
  })
  const convertedUpload = gcs.upload(layout.bucket, names.converted, transform as Readable, {
    contentType: 'application/jsonl',
    lazy: true,
    // Asked when the first converted line is ready, so the first request line has been read.
    metadata: (): Record<string, string> => ({
      [TAG_METADATA_KEY]: upload.tag,
      ...(sniffer.model ? { [MODEL_METADATA_KEY]: sniffer.model } : {}),
    }),
    signal: abort.signal,
  })
  originalUpload.catch(fail)
  convertedUpload.catch((error) => {
    if (conversionError === undefined && !dropped) fail(error)
  })

  const tee = async (): Promise<void> => {
    for await (const chunk of upload.body as AsyncIterable<Buffer | string>) {
      if (failed) break
      const bytes = toBytes(chunk)
      sniffer.push(bytes)
      if (purpose !== undefined && purpose !== 'batch') drop()
      const waits: Promise<void>[] = []
      if (!original.write(bytes)) waits.push(drained(original))
      if (converting && !transform.write(bytes)) waits.push(drained(transform))
      if (waits.length > 0) await Promise.all(waits)
    }
    if (failed) throw failure
    sniffer.end()
    original.end()
    if (converting) transform.end()
  }

  try {
    const teed = tee()
    teed.catch(noop)
    // A body that stops sending must not hold up an aborted upload.
    await Promise.race([teed, aborted])
    if (failed) throw failure
    const stored = await originalUpload
    if (!stored) throw failure
    if ((await upload.purpose) === 'batch') {
      if (conversionError !== undefined) throw conversionError
      await convertedUpload
    } else {
      drop()
      const converted = await convertedUpload.catch(() => null)
      if (converted) await gcs.delete(layout.bucket, names.converted).catch(noop)
    }
    if (failed) throw failure
    return {
      id: fileId,
      bytes: stored.size,
      createdAt: rfc3339ToSeconds(stored.timeCreated) ?? Math.floor(Date.now() / 1000),
      expiresAt: null,
      filename: upload.filename,
    }
  } catch (error) {
    fail(error)
    const settled = await Promise.allSettled([originalUpload, convertedUpload])
    await Promise.all(
      settled.map((result) =>
        result.status === 'fulfilled' && result.value ? removeQuietly(gcs, result.value) : undefined,
      ),
    )
    throw failure
  } finally {
    upload.signal.removeEventListener('abort', onCallerAbort)
  }
}

async function removeQuietly(gcs: GcsClient, object: GcsObject): Promise<void> {
  // Best effort: the upload's own failure is what the caller needs to hear.
  await gcs.delete(object.bucket, object.name).catch(noop)
}

/** Resolves when `stream` wants more, or is finished one way or another (its fate is handled elsewhere). */
function drained(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done)
      stream.off('close', done)
      stream.off('error', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
    stream.on('error', done)
  })
}

/**
 * Reads `body.model` of the first request line as the bytes go by, holding at most that line; gives up
 * quietly on anything unexpected (the validator and the conversion report problems, not this).
 */
export class ModelSniffer {
  model: string | undefined
  private done = false
  private readonly splitter = new LineSplitter(DEFAULT_UPLOAD_LIMITS.maxLineBytes, () => new Error('line too long'))

  push(chunk: Uint8Array): void {
    if (this.done) return
    try {
      this.splitter.push(chunk, this.onLine)
    } catch {
      this.done = true
    }
  }

  end(): void {
    if (this.done) return
    try {
      this.splitter.end(this.onLine)
    } catch {
      // Nothing to learn.
    }
    this.done = true
  }

  private readonly onLine = (line: Buffer): void => {
    if (this.done) return
    const text = decodeUtf8(line)
    if (text === undefined || text.trim() === '') return
    this.done = true
    try {
      const model = (JSON.parse(text) as { body?: { model?: unknown } } | null)?.body?.model
      if (typeof model === 'string' && model !== '' && model.length <= MAX_MODEL_CHARS) this.model = model
    } catch {
      // Not JSON: no model.
    }
  }
}
