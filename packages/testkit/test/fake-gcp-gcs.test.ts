import { createHash, randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeGcp, startFakeGcp } from '../src/index.js'

let fake: FakeGcp

beforeEach(async () => {
  fake = await startFakeGcp()
})

afterEach(async () => {
  await fake.close()
})

const auth = () => ({ authorization: `Bearer ${fake.token}` })
const enc = encodeURIComponent

function gcs(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${fake.gcsBaseURL}${path}`, {
    ...init,
    headers: { ...auth(), ...(init.headers as Record<string, string>) },
  })
}

async function startResumable(bucket: string, name: string, headers: Record<string, string> = {}, body?: string) {
  const res = await gcs(`/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${enc(name)}`, {
    method: 'POST',
    headers: { 'x-upload-content-type': 'application/jsonl', ...headers },
    body,
  })
  expect(res.status).toBe(200)
  const location = res.headers.get('location')
  expect(location).toBeTruthy()
  return location!
}

/** A session PUT; session URIs need no Authorization, like GCS's. */
function put(location: string, body: Buffer | string, contentRange?: string): Promise<Response> {
  return fetch(location, {
    method: 'PUT',
    body,
    headers: contentRange === undefined ? {} : { 'content-range': contentRange },
  })
}

type GcsObjectResource = Record<string, string> & { metadata?: Record<string, string> }

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64')

async function upload(bucket: string, name: string, content: string | Buffer): Promise<GcsObjectResource> {
  const res = await gcs(`/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${enc(name)}`, {
    method: 'POST',
    body: content,
    headers: { 'content-type': 'application/jsonl' },
  })
  expect(res.status).toBe(200)
  return (await res.json()) as GcsObjectResource
}

describe('authentication', () => {
  it('answers a missing or wrong token with 401 in GCS’s error shape', async () => {
    const missing = await fetch(`${fake.gcsBaseURL}/storage/v1/b/b/o`)
    expect(missing.status).toBe(401)
    expect(await missing.json()).toEqual({
      error: {
        code: 401,
        message: expect.stringMatching(/^Request is missing required authentication credential/),
        errors: [{ message: expect.any(String), domain: 'global', reason: 'required' }],
      },
    })
    const wrong = await fetch(`${fake.gcsBaseURL}/storage/v1/b/b/o`, { headers: { authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(401)
    expect(((await wrong.json()) as { error: { errors: Array<{ reason: string }> } }).error.errors[0]?.reason).toBe(
      'authError',
    )
  })

  it('honours a custom token and binds loopback only', async () => {
    const custom = await startFakeGcp({ token: 'ya29.custom' })
    try {
      const res = await fetch(`${custom.gcsBaseURL}/storage/v1/b/b/o`, {
        headers: { authorization: 'Bearer ya29.custom' },
      })
      expect(res.status).toBe(200)
    } finally {
      await custom.close()
    }
    await expect(startFakeGcp({ host: '0.0.0.0' })).rejects.toThrow(/loopback/)
  })
})

describe('resumable upload', () => {
  const name = 'batchkit/in/Äpfel & 梨/file.jsonl'

  it('takes several chunks, persisting non-final ones to 256 KiB multiples, and answers the object', async () => {
    const content = randomBytes(700_000)
    const location = await startResumable('bkt', name, { 'x-upload-content-length': String(content.length) })
    expect(location).toBe(
      `${fake.gcsBaseURL}/upload/storage/v1/b/bkt/o?uploadType=resumable&name=${enc(name)}&upload_id=${new URL(location).searchParams.get('upload_id')}`,
    )

    // An aligned chunk, total unknown yet.
    let res = await put(location, content.subarray(0, 262_144), 'bytes 0-262143/*')
    expect(res.status).toBe(308)
    expect(res.headers.get('range')).toBe('bytes=0-262143')

    // A chunk that is not a multiple of 256 KiB: only the aligned part is persisted.
    res = await put(location, content.subarray(262_144, 600_000), `bytes 262144-599999/*`)
    expect(res.status).toBe(308)
    expect(res.headers.get('range')).toBe('bytes=0-524287')

    // A client that ignores Range and continues where it stopped is refused.
    res = await put(location, content.subarray(600_000), `bytes 600000-699999/700000`)
    expect(res.status).toBe(400)

    // A status query says how far the upload got.
    res = await put(location, '', 'bytes */*')
    expect(res.status).toBe(308)
    expect(res.headers.get('range')).toBe('bytes=0-524287')

    // Resuming from the persisted offset finishes it.
    res = await put(location, content.subarray(524_288), `bytes 524288-699999/700000`)
    expect(res.status).toBe(200)
    const object = (await res.json()) as GcsObjectResource
    expect(object).toMatchObject({
      kind: 'storage#object',
      bucket: 'bkt',
      name,
      size: '700000',
      contentType: 'application/jsonl',
      md5Hash: md5(content),
      storageClass: 'STANDARD',
    })
    expect(object.id).toBe(`bkt/${name}/${object.generation}`)
    expect(object.generation).toMatch(/^\d{16}$/)
    expect(object.timeCreated).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)

    const download = await gcs(`/storage/v1/b/bkt/o/${enc(name)}?alt=media`)
    expect(download.status).toBe(200)
    expect(download.headers.get('content-length')).toBe('700000')
    expect(download.headers.get('x-goog-hash')).toBe(`crc32c=${object.crc32c},md5=${object.md5Hash}`)
    expect(Buffer.from(await download.arrayBuffer()).equals(content)).toBe(true)

    // Once complete, the session answers the object again.
    res = await put(location, '', 'bytes */700000')
    expect(res.status).toBe(200)
    expect(((await res.json()) as GcsObjectResource).generation).toBe(object.generation)
  })

  it('ends an upload of unknown length with an empty final request', async () => {
    const location = await startResumable('bkt', 'a.jsonl')
    const content = Buffer.alloc(262_144, 'x')
    expect((await put(location, content, 'bytes 0-262143/*')).status).toBe(308)
    const res = await put(location, '', 'bytes */262144')
    expect(res.status).toBe(200)
    expect(((await res.json()) as GcsObjectResource).size).toBe('262144')
  })

  it('takes the whole body in one PUT without Content-Range, and metadata from the initiation body', async () => {
    const location = await startResumable(
      'bkt',
      'b.jsonl',
      { 'content-type': 'application/json; charset=UTF-8' },
      JSON.stringify({ metadata: { purpose: 'batch', filename: 'réquêtes.jsonl' } }),
    )
    const res = await put(location, '{"a":"é"}\n')
    expect(res.status).toBe(200)
    const object = (await res.json()) as GcsObjectResource
    expect(object.size).toBe(String(Buffer.byteLength('{"a":"é"}\n')))
    expect(object.metadata).toEqual({ purpose: 'batch', filename: 'réquêtes.jsonl' })
    expect((await fake.readObject('bkt', 'b.jsonl')).toString()).toBe('{"a":"é"}\n')
  })

  it('refuses a chunk whose length disagrees with Content-Range, or that overflows the total', async () => {
    const location = await startResumable('bkt', 'c.jsonl')
    expect((await put(location, 'abc', 'bytes 0-9/*')).status).toBe(400)
    expect((await put(location, 'abcdef', 'bytes 0-5/4')).status).toBe(400)
    expect((await put(location, 'abc', 'bytes=0-2/3')).status).toBe(400)
    // Nothing was persisted by the failures.
    const res = await put(location, 'abcd', 'bytes 0-3/4')
    expect(res.status).toBe(200)
    expect((await fake.readObject('bkt', 'c.jsonl')).toString()).toBe('abcd')
  })

  it('cancels a session with 499, and 404s an unknown one', async () => {
    const location = await startResumable('bkt', 'd.jsonl')
    const res = await fetch(location, { method: 'DELETE' })
    expect(res.status).toBe(499)
    expect((await put(location, 'x', 'bytes 0-0/1')).status).toBe(404)
    expect(fake.objects.has('bkt/d.jsonl')).toBe(false)
  })

  it('needs a name and a known uploadType', async () => {
    const noName = await gcs('/upload/storage/v1/b/bkt/o?uploadType=resumable', { method: 'POST' })
    expect(noName.status).toBe(400)
    const multipart = await gcs('/upload/storage/v1/b/bkt/o?uploadType=multipart&name=x', { method: 'POST', body: 'x' })
    expect(multipart.status).toBe(400)
  })

  it('honours a custom chunk granularity', async () => {
    const small = await startFakeGcp({ resumableChunkBytes: 4 })
    try {
      const init = await fetch(`${small.gcsBaseURL}/upload/storage/v1/b/b/o?uploadType=resumable&name=x`, {
        method: 'POST',
        headers: { authorization: `Bearer ${small.token}` },
      })
      const location = init.headers.get('location')!
      const res = await put(location, 'abcdefg', 'bytes 0-6/*')
      expect(res.status).toBe(308)
      expect(res.headers.get('range')).toBe('bytes=0-3')
    } finally {
      await small.close()
    }
  })
})

describe('objects', () => {
  it('serves metadata, downloads on both hosts’ paths, and deletes', async () => {
    const object = await upload('bkt', 'dir/x.jsonl', '{"x":"日本"}\n')
    const meta = await gcs(`/storage/v1/b/bkt/o/${enc('dir/x.jsonl')}`)
    expect(meta.status).toBe(200)
    expect(await meta.json()).toEqual(object)
    expect(object.selfLink).toBe(`${fake.gcsBaseURL}/storage/v1/b/bkt/o/dir%2Fx.jsonl`)

    const viaMediaLink = await fetch(object.mediaLink!, { headers: auth() })
    expect(await viaMediaLink.text()).toBe('{"x":"日本"}\n')

    const deleted = await gcs(`/storage/v1/b/bkt/o/${enc('dir/x.jsonl')}`, { method: 'DELETE' })
    expect(deleted.status).toBe(204)
    const gone = await gcs(`/storage/v1/b/bkt/o/${enc('dir/x.jsonl')}?alt=media`)
    expect(gone.status).toBe(404)
    expect(await gone.json()).toEqual({
      error: {
        code: 404,
        message: 'No such object: bkt/dir/x.jsonl',
        errors: [{ message: 'No such object: bkt/dir/x.jsonl', domain: 'global', reason: 'notFound' }],
      },
    })
    expect((await gcs(`/storage/v1/b/bkt/o/${enc('dir/x.jsonl')}`, { method: 'DELETE' })).status).toBe(404)
  })

  it('reports CRC-32C and MD5 like GCS', async () => {
    const object = await upload('bkt', 'check', '123456789')
    expect(object.crc32c).toBe(Buffer.from('e3069283', 'hex').toString('base64'))
    expect(object.md5Hash).toBe(md5(Buffer.from('123456789')))
  })

  it("checks an upload's x-goog-hash as GCS does, and damages one upload or download when told", async () => {
    const crc = Buffer.from('e3069283', 'hex').toString('base64')
    const media = (name: string, hash: string) =>
      gcs(`/upload/storage/v1/b/bkt/o?uploadType=media&name=${name}`, {
        method: 'POST',
        body: '123456789',
        headers: { 'x-goog-hash': hash },
      })
    expect((await media('good', `crc32c=${crc},md5=${md5(Buffer.from('123456789'))}`)).status).toBe(200)
    const refused = await media('bad', 'crc32c=AAAAAA==')
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      `Provided CRC32C "AAAAAA==" doesn't match calculated CRC32C "${crc}".`,
    )
    expect(fake.objects.has('bkt/bad')).toBe(false)

    const location = await startResumable('bkt', 'resumable')
    fake.corruptNext('upload')
    const last = await fetch(location, {
      method: 'PUT',
      body: '123456789',
      headers: { 'content-range': 'bytes 0-8/9', 'x-goog-hash': `crc32c=${crc}` },
    })
    expect(last.status).toBe(400)
    expect(fake.objects.has('bkt/resumable')).toBe(false)

    fake.corruptNext('download')
    const damaged = await gcs('/storage/v1/b/bkt/o/good?alt=media')
    expect(damaged.headers.get('x-goog-hash')).toContain(`crc32c=${crc}`)
    expect(await damaged.text()).not.toBe('123456789')
    expect(await (await gcs('/storage/v1/b/bkt/o/good?alt=media')).text()).toBe('123456789')
  })

  it('requires object names to be percent-encoded, slashes included', async () => {
    await upload('bkt', 'dir/x.jsonl', 'x')
    expect((await gcs('/storage/v1/b/bkt/o/dir/x.jsonl')).status).toBe(404)
  })

  it('replaces an object with a new generation', async () => {
    const first = await upload('bkt', 'same', 'one')
    const second = await upload('bkt', 'same', 'two')
    expect(BigInt(second.generation!)).toBeGreaterThan(BigInt(first.generation!))
    expect((await fake.readObject('bkt', 'same')).toString()).toBe('two')
    expect((await gcs(`/storage/v1/b/bkt/o/same?alt=media&generation=${first.generation}`)).status).toBe(404)
  })

  it('lists by prefix and delimiter, in name order, with pages', async () => {
    for (const name of ['p/b.jsonl', 'p/a.jsonl', 'p/sub/c.jsonl', 'p/sub/d.jsonl', 'q/e.jsonl', 'p/c.jsonl']) {
      await upload('bkt', name, name)
    }
    await upload('other', 'p/z.jsonl', 'z')

    const all = (await (await gcs('/storage/v1/b/bkt/o?prefix=p/')).json()) as { items: GcsObjectResource[] }
    expect(all.items.map((item) => item.name)).toEqual([
      'p/a.jsonl',
      'p/b.jsonl',
      'p/c.jsonl',
      'p/sub/c.jsonl',
      'p/sub/d.jsonl',
    ])

    const folders = (await (await gcs('/storage/v1/b/bkt/o?prefix=p/&delimiter=/')).json()) as Record<string, unknown>
    expect(folders).toEqual({
      kind: 'storage#objects',
      prefixes: ['p/sub/'],
      items: [
        expect.objectContaining({ name: 'p/a.jsonl' }),
        expect.objectContaining({ name: 'p/b.jsonl' }),
        expect.objectContaining({ name: 'p/c.jsonl' }),
      ],
    })

    const names: string[] = []
    let token: string | undefined
    let pages = 0
    do {
      const page = (await (
        await gcs(`/storage/v1/b/bkt/o?prefix=p/&maxResults=2${token ? `&pageToken=${token}` : ''}`)
      ).json()) as { items: GcsObjectResource[]; nextPageToken?: string }
      names.push(...page.items.map((item) => item.name!))
      token = page.nextPageToken
      pages++
    } while (token)
    expect(pages).toBe(3)
    expect(names).toEqual(['p/a.jsonl', 'p/b.jsonl', 'p/c.jsonl', 'p/sub/c.jsonl', 'p/sub/d.jsonl'])

    expect(await (await gcs('/storage/v1/b/bkt/o?prefix=nothing/')).json()).toEqual({ kind: 'storage#objects' })
  })

  it('knows only the configured buckets when told', async () => {
    const strict = await startFakeGcp({ buckets: ['mine'] })
    try {
      const res = await fetch(`${strict.gcsBaseURL}/storage/v1/b/theirs/o`, {
        headers: { authorization: `Bearer ${strict.token}` },
      })
      expect(res.status).toBe(404)
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        'The specified bucket does not exist.',
      )
      const ok = await fetch(`${strict.gcsBaseURL}/storage/v1/b/mine/o`, {
        headers: { authorization: `Bearer ${strict.token}` },
      })
      expect(ok.status).toBe(200)
    } finally {
      await strict.close()
    }
  })

  it('serves GCS paths only on the GCS port', async () => {
    const res = await fetch(`${fake.vertexBaseURL}/storage/v1/b/bkt/o`, { headers: auth() })
    expect(res.status).toBe(404)
    expect(fake.gcsBaseURL).not.toBe(fake.vertexBaseURL)
  })

  it('logs requests and injects failures in Google’s shape', async () => {
    fake.failNext({ status: 503, pathPrefix: '/storage/v1/b/bkt/o' })
    const failed = await gcs('/storage/v1/b/bkt/o?prefix=a')
    expect(failed.status).toBe(503)
    expect(((await failed.json()) as { error: { code: number } }).error.code).toBe(503)
    expect((await gcs('/storage/v1/b/bkt/o?prefix=a')).status).toBe(200)
    expect(fake.requests.slice(-2)).toEqual([
      { service: 'gcs', method: 'GET', path: '/storage/v1/b/bkt/o', query: 'prefix=a' },
      { service: 'gcs', method: 'GET', path: '/storage/v1/b/bkt/o', query: 'prefix=a' },
    ])
  })
})
