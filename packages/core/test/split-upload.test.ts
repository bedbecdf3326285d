import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/errors.js'
import { partIdsOf } from '../src/providers/split/part-ids.js'
import { SplittingProvider } from '../src/providers/split/splitting-provider.js'
import type { Provider, ProviderFile, ProviderUpload } from '../src/providers/types.js'
import type { UploadPurpose } from '../src/types.js'

/**
 * The upload side of big jobs, against a provider that keeps what it is sent: a file above the
 * provider's limits goes up in parts of whole lines, streamed, and comes back whole.
 */

interface Stored {
  tag: string
  bytes: Buffer
}

/** A provider that stores uploads in memory, reading each body at `bytesPerTick` (unlimited when undefined). */
function keepingProvider(options: { refuseTag?: string; onRead?: (bytes: number) => void } = {}) {
  const files = new Map<string, Stored>()
  let next = 0
  const provider: Provider = {
    kind: 'keeping',
    async uploadFile(upload: ProviderUpload): Promise<ProviderFile> {
      const chunks: Buffer[] = []
      for await (const chunk of upload.body as AsyncIterable<Buffer>) {
        options.onRead?.(chunk.length)
        chunks.push(chunk)
      }
      await upload.purpose
      if (upload.tag === options.refuseTag) throw new ApiError(400, 'refused', { code: 'invalid_file' })
      const id = `f${next++}`
      files.set(id, { tag: upload.tag, bytes: Buffer.concat(chunks) })
      return { id, bytes: files.get(id)?.bytes.length ?? 0, createdAt: 1, expiresAt: null, filename: upload.filename }
    },
    async retrieveFile(id) {
      const file = files.get(id)
      if (!file) throw new ApiError(404, 'gone', { code: 'upstream_not_found' })
      return { id, bytes: file.bytes.length, createdAt: 1, expiresAt: null, filename: 'x' }
    },
    async downloadFile(id) {
      const file = files.get(id)
      if (!file) throw new ApiError(404, 'gone', { code: 'upstream_not_found' })
      return { body: Readable.from([file.bytes]), bytes: file.bytes.length }
    },
    async deleteFile(id) {
      files.delete(id)
    },
    createBatch: () => Promise.reject(new Error('not used')),
    retrieveBatch: () => Promise.reject(new Error('not used')),
    cancelBatch: () => Promise.reject(new Error('not used')),
    findFile: async (tag) => {
      for (const [id, file] of files) if (file.tag === tag) return provider.retrieveFile(id)
      return undefined
    },
    findBatch: async () => undefined,
  }
  return { provider, files }
}

function upload(body: Readable, purpose: UploadPurpose | Promise<UploadPurpose> = 'batch'): ProviderUpload {
  return {
    body,
    filename: 'in.jsonl',
    tag: 'file-abc',
    purpose: Promise.resolve(purpose),
    expiresAfter: Promise.resolve(null),
    signal: new AbortController().signal,
  }
}

const lines = (count: number, width = 20) =>
  Array.from({ length: count }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(width)}"}\n`).join('')

async function text(download: { body: Readable }): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of download.body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

describe('uploading a file above the provider’s limits', () => {
  it('keeps a file within the limits in one part, under the provider’s own id', async () => {
    const { provider, files } = keepingProvider()
    const splitting = new SplittingProvider(provider, { maxRequests: 10, maxBytes: 1_000_000 })
    const file = await splitting.uploadFile(upload(Readable.from([lines(10)])))
    expect(file.id).toBe('f0')
    expect([...files.values()].map((f) => f.tag)).toEqual(['file-abc'])
  })

  it('cuts between lines at the request limit, keeping every byte, a last line without newline too', async () => {
    const { provider, files } = keepingProvider()
    const splitting = new SplittingProvider(provider, { maxRequests: 10, maxBytes: 1_000_000 })
    const original = `${lines(25)}{"n":25,"last":"no newline"}`
    // Chunks that end mid-line and mid-character.
    const bytes = Buffer.from(original)
    const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7))
    const file = await splitting.uploadFile(upload(Readable.from(chunks)))
    const parts = partIdsOf(file.id)
    expect(parts).toHaveLength(3)
    expect([...files.values()].map((f) => f.tag)).toEqual(['file-abc', 'file-abc_p1', 'file-abc_p2'])
    expect([...files.values()].map((f) => f.bytes.toString().split('\n').filter(Boolean).length)).toEqual([10, 10, 6])
    expect(file.bytes).toBe(bytes.length)
    expect(await text(await splitting.downloadFile(file.id))).toBe(original)
  })

  it('cuts at the byte limit, never splitting a line', async () => {
    const { provider, files } = keepingProvider()
    const splitting = new SplittingProvider(provider, { maxRequests: 1_000, maxBytes: 100 })
    const original = lines(9, 10) // 9 lines of 27 bytes: three fit in 100 bytes
    const file = await splitting.uploadFile(upload(Readable.from([original])))
    expect([...files.values()].map((f) => f.bytes.length)).toEqual([81, 81, 81])
    expect(await text(await splitting.downloadFile(file.id))).toBe(original)
  })

  it('does not cut a file it knows is not a batch input', async () => {
    const { provider, files } = keepingProvider()
    const splitting = new SplittingProvider(provider, { maxRequests: 2, maxBytes: 1_000_000 })
    await splitting.uploadFile(upload(Readable.from([lines(5)]), 'user_data'))
    expect(files.size).toBe(1)
  })

  it('holds no more than about a line and a write in flight, whatever the file’s size', async () => {
    let produced = 0
    let consumed = 0
    let inFlight = 0
    const { provider } = keepingProvider({
      onRead: (bytes) => {
        consumed += bytes
      },
    })
    const splitting = new SplittingProvider(provider, { maxRequests: 20_000, maxBytes: 10_000_000 })
    const line = Buffer.from(`${'{"q":"'.padEnd(1000, 'y')}"}\n`)
    function* source(): Generator<Buffer> {
      for (let i = 0; i < 100_000; i++) {
        inFlight = Math.max(inFlight, produced - consumed)
        produced += line.length
        yield line
      }
    }
    const file = await splitting.uploadFile(upload(Readable.from(source(), { objectMode: false })))
    expect(file.bytes).toBe(100_000 * line.length) // 100 MB in 11 parts
    expect(partIdsOf(file.id)).toHaveLength(11)
    // The keeping provider holds what it reads: what matters is the splitter's own buffering between them.
    expect(inFlight).toBeLessThan(1_000_000)
  })

  it('deletes the parts already stored when the provider refuses a later one, and says why', async () => {
    const { provider, files } = keepingProvider({ refuseTag: 'file-abc_p2' })
    const splitting = new SplittingProvider(provider, { maxRequests: 10, maxBytes: 1_000_000 })
    await expect(splitting.uploadFile(upload(Readable.from([lines(25)])))).rejects.toMatchObject({
      code: 'invalid_file',
    })
    expect(files.size).toBe(0)
  })

  it('deletes the parts already stored when the file turns out bad, and says why', async () => {
    const { provider, files } = keepingProvider()
    const splitting = new SplittingProvider(provider, { maxRequests: 10, maxBytes: 1_000_000 })
    const body = Readable.from(
      (async function* () {
        yield Buffer.from(lines(25))
        throw new ApiError(400, 'Line 26 is not valid JSON.', { code: 'invalid_json_line' })
      })(),
    )
    await expect(splitting.uploadFile(upload(body))).rejects.toMatchObject({ code: 'invalid_json_line' })
    expect(files.size).toBe(0)
  })
})
