import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import type { UploadPurpose } from '../../types.js'
import type { Provider, ProviderFile, ProviderUpload } from '../types.js'
import { partTag } from './part-ids.js'

/** The most one part of a batch input file may hold: a provider's limits for one batch. */
export interface PartLimits {
  /** Lines (requests) in one part. */
  maxRequests: number
  /** Bytes in one part, as sent to the provider. */
  maxBytes: number
}

/**
 * A create that failed after some of its parts were made upstream, and whose clean-up failed too: the
 * parts are still there, so the create's intent must stay for the reconciler to settle them. `cause`
 * is why the create failed.
 */
export class PartsLeftUpstream extends Error {
  constructor(override readonly cause: unknown) {
    super('A create failed, and some of its parts could not be undone upstream.')
    this.name = 'PartsLeftUpstream'
  }
}

const NEWLINE = 0x0a
/** Bytes gathered before they are written to a part, so lines are not written one by one. */
const WRITE_BATCH_BYTES = 64 * 1024

/**
 * Streams an upload to `provider` in parts, each within `limits` and tagged with {@link partTag}. Parts are
 * cut between lines and keep every byte; a file within the limits, or one known by then not to be a batch
 * input, goes up in one part exactly as it would without cutting. Only the line being read is held.
 *
 * A part's body ends before the next one starts, but its answer is not waited for: the provider may
 * need the upload's purpose to finish a part, and a multipart client may send it after the whole file.
 * `upload.beforePart` is awaited before each part after the first, so the caller can write down how many
 * parts there may be. When anything fails, every part stored is deleted again.
 */
export async function uploadInParts(
  provider: Provider,
  upload: ProviderUpload,
  limits: PartLimits,
): Promise<ProviderFile[]> {
  const parts = [startPart(provider, upload, 0)]
  let part = parts[0] as PartUpload
  // The uploader aborts when it finds the file bad, which may be before the body can say so.
  const stop = () => upload.body.destroy(upload.signal.reason)
  if (upload.signal.aborted) stop()
  upload.signal.addEventListener('abort', stop, { once: true })
  let purpose: UploadPurpose | undefined
  upload.purpose.then(
    (known) => {
      purpose = known
    },
    () => undefined,
  )
  try {
    let pending: Buffer[] = []
    let pendingBytes = 0
    let held: Buffer[] = []
    let heldBytes = 0

    const flush = async () => {
      if (pendingBytes === 0) return
      const bytes = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes)
      pending = []
      pendingBytes = 0
      await part.write(bytes)
    }
    /** Adds one whole line to the current part, first starting the next part when it would not fit. */
    const add = async (line: Buffer) => {
      const full = part.lines + 1 > limits.maxRequests || part.bytes + line.length > limits.maxBytes
      // A file of a purpose still unknown is cut too: its readers never see it (its bytes come back whole).
      if (full && part.lines > 0 && (purpose === undefined || purpose === 'batch')) {
        await flush()
        part.end()
        await upload.beforePart?.(parts.length)
        part = startPart(provider, upload, parts.length)
        parts.push(part)
      }
      pending.push(line)
      pendingBytes += line.length
      part.lines++
      part.bytes += line.length
      if (pendingBytes >= WRITE_BATCH_BYTES) await flush()
    }

    for await (const raw of upload.body as AsyncIterable<Buffer | string>) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw
      let start = 0
      for (;;) {
        const newline = chunk.indexOf(NEWLINE, start)
        if (newline === -1) break
        const piece = chunk.subarray(start, newline + 1)
        await add(heldBytes > 0 ? Buffer.concat([...held, piece], heldBytes + piece.length) : piece)
        held = []
        heldBytes = 0
        start = newline + 1
      }
      if (start < chunk.length) {
        // Copied: the chunk's memory may be reused once this loop moves on.
        held.push(Buffer.from(chunk.subarray(start)))
        heldBytes += chunk.length - start
      }
    }
    if (heldBytes > 0) await add(Buffer.concat(held, heldBytes))
    await flush()
    part.end()
  } catch (error) {
    part.abort(error)
    throw await undo(provider, parts, error)
  } finally {
    upload.signal.removeEventListener('abort', stop)
  }
  const answers = await Promise.allSettled(parts.map((p) => p.answer))
  const refused = answers.find((answer) => answer.status === 'rejected')
  if (refused) throw await undo(provider, parts, refused.reason)
  return answers.map((answer) => (answer as PromiseFulfilledResult<ProviderFile>).value)
}

/** Deletes every part the provider stored; resolves with what to throw: `error`, or that parts were left. */
async function undo(provider: Provider, parts: readonly PartUpload[], error: unknown): Promise<unknown> {
  const answers = await Promise.allSettled(parts.map((p) => p.answer))
  const deleted = await Promise.all(
    answers.map((answer) =>
      answer.status === 'rejected'
        ? true
        : provider.deleteFile(answer.value.id).then(
            () => true,
            () => false,
          ),
    ),
  )
  return deleted.every(Boolean) ? error : new PartsLeftUpstream(error)
}

/** One part's upload under way: its body, and what the provider answers once the body has ended. */
interface PartUpload {
  lines: number
  bytes: number
  readonly answer: Promise<ProviderFile>
  write(bytes: Buffer): Promise<void>
  end(): void
  abort(error: unknown): void
}

function startPart(provider: Provider, upload: ProviderUpload, index: number): PartUpload {
  const body = new PassThrough()
  // A part cut short is reported by the provider's answer; the body's own error would go unheard.
  body.on('error', () => undefined)
  const answer = provider.uploadFile({ ...upload, body, tag: partTag(upload.tag, index) })
  answer.catch(() => undefined)
  // An answer before the body has ended is a failure: it stops the writer waiting for room.
  const early = answer.then(() => {
    throw new Error('The provider answered before the part was sent whole.')
  })
  early.catch(() => undefined)
  return {
    lines: 0,
    bytes: 0,
    answer,
    async write(bytes) {
      if (!body.write(bytes)) await Promise.race([once(body, 'drain'), early])
    },
    end() {
      body.end()
    },
    abort(error) {
      body.destroy(error instanceof Error ? error : new Error(String(error)))
    },
  }
}
