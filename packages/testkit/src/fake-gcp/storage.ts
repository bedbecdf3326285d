import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Crc32c } from './crc32c.js'
import { GoogleError, noSuchBucket, noSuchObject } from './errors.js'
import type { FakeGcsObject } from './types.js'

/** The hashes an upload's `x-goog-hash` states, checked when it is stored. */
export interface UploadHashes {
  crc32c?: string
  md5?: string
}

/** `crc32c=…,md5=…` as {@link UploadHashes}; undefined without the header. */
export function uploadHashes(header: string | string[] | undefined): UploadHashes | undefined {
  if (header === undefined) return undefined
  const hashes: UploadHashes = {}
  for (const part of [header].flat().flatMap((value) => value.split(','))) {
    const at = part.indexOf('=')
    const name = part.slice(0, at).trim().toLowerCase()
    if (at > 0 && (name === 'crc32c' || name === 'md5')) hashes[name] = part.slice(at + 1).trim()
  }
  return hashes
}

/** The objects of the fake GCS: bytes on disk, metadata in memory. Shared by the GCS routes and the job runner. */
export class GcsStore {
  readonly objects = new Map<string, FakeGcsObject>()
  private lastGeneration = 0n

  constructor(
    readonly dataDir: string,
    private readonly buckets: ReadonlySet<string> | undefined,
    /** The GCS origin, for `selfLink` and `mediaLink`. */
    private readonly origin: () => string,
  ) {}

  async init(): Promise<void> {
    await mkdir(join(this.dataDir, 'objects'), { recursive: true })
    await mkdir(join(this.dataDir, 'tmp'), { recursive: true })
  }

  /** Throws GCS's 404 for a bucket that does not exist. */
  checkBucket(bucket: string): void {
    if (this.buckets && !this.buckets.has(bucket)) throw noSuchBucket()
  }

  /** A fresh path to write bytes to before {@link commit}. */
  tempPath(): string {
    return join(this.dataDir, 'tmp', randomBytes(12).toString('hex'))
  }

  get(bucket: string, name: string): FakeGcsObject | undefined {
    return this.objects.get(key(bucket, name))
  }

  require(bucket: string, name: string): FakeGcsObject {
    this.checkBucket(bucket)
    const object = this.get(bucket, name)
    if (!object) throw noSuchObject(bucket, name)
    return object
  }

  /** Makes the bytes at `tempPath` the object `bucket/name` (a new generation when it exists), hashing them on the way. */
  async commit(
    bucket: string,
    name: string,
    tempPath: string,
    contentType: string,
    metadata?: Record<string, string>,
    expected?: UploadHashes,
  ): Promise<FakeGcsObject> {
    this.checkBucket(bucket)
    if (name === '' || Buffer.byteLength(name) > 1024) throw new GoogleError(400, 'Invalid object name.')
    const md5 = createHash('md5')
    const crc = new Crc32c()
    let size = 0
    for await (const chunk of createReadStream(tempPath)) {
      md5.update(chunk as Buffer)
      crc.update(chunk as Buffer)
      size += (chunk as Buffer).length
    }
    const hashes = { crc32c: crc.base64(), md5: md5.digest('base64') }
    for (const [algorithm, label] of [
      ['crc32c', 'CRC32C'],
      ['md5', 'MD5'],
    ] as const) {
      const provided = expected?.[algorithm]
      if (provided !== undefined && provided !== hashes[algorithm]) {
        await rm(tempPath, { force: true })
        throw new GoogleError(
          400,
          `Provided ${label} "${provided}" doesn't match calculated ${label} "${hashes[algorithm]}".`,
        )
      }
    }
    const generation = this.nextGeneration()
    const path = join(this.dataDir, 'objects', `${generation}-${randomBytes(6).toString('hex')}`)
    await rename(tempPath, path)
    const previous = this.get(bucket, name)
    const now = new Date().toISOString()
    const object: FakeGcsObject = {
      bucket,
      name,
      size,
      contentType,
      generation,
      md5Hash: hashes.md5,
      crc32c: hashes.crc32c,
      timeCreated: now,
      updated: now,
      ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
      path,
    }
    this.objects.set(key(bucket, name), object)
    if (previous) await rm(previous.path, { force: true })
    return object
  }

  async delete(bucket: string, name: string): Promise<void> {
    const object = this.require(bucket, name)
    this.objects.delete(key(bucket, name))
    await rm(object.path, { force: true })
  }

  /** `objects.list`: names in lexicographic order, with `prefix`, `delimiter` and paging. */
  list(
    bucket: string,
    options: { prefix: string; delimiter: string | undefined; maxResults: number; pageToken: string | undefined },
  ): { items: FakeGcsObject[]; prefixes: string[]; nextPageToken: string | undefined } {
    this.checkBucket(bucket)
    const entries: Array<{ sortKey: string; object?: FakeGcsObject; prefix?: string }> = []
    const seenPrefixes = new Set<string>()
    for (const object of this.objects.values()) {
      if (object.bucket !== bucket || !object.name.startsWith(options.prefix)) continue
      const rest = object.name.slice(options.prefix.length)
      const cut = options.delimiter ? rest.indexOf(options.delimiter) : -1
      if (options.delimiter && cut !== -1) {
        const prefix = options.prefix + rest.slice(0, cut + options.delimiter.length)
        if (!seenPrefixes.has(prefix)) {
          seenPrefixes.add(prefix)
          entries.push({ sortKey: prefix, prefix })
        }
      } else {
        entries.push({ sortKey: object.name, object })
      }
    }
    entries.sort((a, b) => Buffer.compare(Buffer.from(a.sortKey), Buffer.from(b.sortKey)))
    let start = 0
    if (options.pageToken !== undefined) {
      const after = Buffer.from(options.pageToken, 'base64url').toString('utf8')
      start = entries.findIndex((entry) => Buffer.compare(Buffer.from(entry.sortKey), Buffer.from(after)) > 0)
      if (start === -1) start = entries.length
    }
    const page = entries.slice(start, start + options.maxResults)
    const more = start + options.maxResults < entries.length
    return {
      items: page.flatMap((entry) => (entry.object ? [entry.object] : [])),
      prefixes: page.flatMap((entry) => (entry.prefix ? [entry.prefix] : [])),
      nextPageToken: more ? Buffer.from(page.at(-1)!.sortKey).toString('base64url') : undefined,
    }
  }

  /** The Object resource GCS answers. */
  resource(object: FakeGcsObject): Record<string, unknown> {
    const path = `/b/${encodeURIComponent(object.bucket)}/o/${encodeURIComponent(object.name)}`
    return {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      selfLink: `${this.origin()}/storage/v1${path}`,
      mediaLink: `${this.origin()}/download/storage/v1${path}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket: object.bucket,
      generation: object.generation,
      metageneration: '1',
      contentType: object.contentType,
      storageClass: 'STANDARD',
      size: String(object.size),
      md5Hash: object.md5Hash,
      crc32c: object.crc32c,
      etag: Buffer.from(object.generation).toString('base64'),
      timeCreated: object.timeCreated,
      updated: object.updated,
      timeStorageClassUpdated: object.timeCreated,
      ...(object.metadata ? { metadata: object.metadata } : {}),
    }
  }

  /** GCS generations are microsecond timestamps, strictly increasing here. */
  private nextGeneration(): string {
    const now = BigInt(Date.now()) * 1000n
    this.lastGeneration = now > this.lastGeneration ? now : this.lastGeneration + 1n
    return String(this.lastGeneration)
  }
}

/** `gs://bucket/name` → its parts; undefined for anything else. */
export function parseGsUri(uri: string): { bucket: string; name: string } | undefined {
  const match = /^gs:\/\/([^/]+)\/(.*)$/.exec(uri)
  if (!match) return undefined
  return { bucket: match[1]!, name: match[2]! }
}

function key(bucket: string, name: string): string {
  return `${bucket}/${name}`
}

/** `gs://bucket` or `gs://bucket/prefix` → its parts; undefined for anything else. */
export function parseGsPrefix(uri: string): { bucket: string; prefix: string } | undefined {
  const match = /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(uri)
  if (!match) return undefined
  return { bucket: match[1]!, prefix: match[2] ?? '' }
}
