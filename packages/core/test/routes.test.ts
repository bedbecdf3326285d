import { describe, expect, it } from 'vitest'
import { matchRoute, type Operation, relativePath } from '../src/http/routes.js'

const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS']

describe('matchRoute', () => {
  const routes: [method: string, path: string, operation: Operation][] = [
    ['POST', '/files', { name: 'files.create' }],
    ['GET', '/files', { name: 'files.list' }],
    ['GET', '/files/file-abc', { name: 'files.retrieve', id: 'file-abc' }],
    ['DELETE', '/files/file-abc', { name: 'files.delete', id: 'file-abc' }],
    ['GET', '/files/file-abc/content', { name: 'files.content', id: 'file-abc' }],
    ['POST', '/batches', { name: 'batches.create' }],
    ['GET', '/batches', { name: 'batches.list' }],
    ['GET', '/batches/batch_123', { name: 'batches.retrieve', id: 'batch_123' }],
    ['POST', '/batches/batch_123/cancel', { name: 'batches.cancel', id: 'batch_123' }],
  ]

  it.each(routes)('%s %s', (method, path, operation) => {
    expect(matchRoute(method, path)).toEqual(operation)
  })

  // Every path above, with every method it does not serve.
  const wrongMethods = routes.flatMap(([, path]) =>
    METHODS.filter((method) => !routes.some(([m, p]) => m === method && p === path)).map(
      (method) => [method, path] as const,
    ),
  )

  it.each(wrongMethods)('%s %s is not a route', (method, path) => {
    expect(matchRoute(method, path)).toBeUndefined()
  })

  it('matches methods exactly as Node spells them (upper case)', () => {
    expect(matchRoute('get', '/files')).toBeUndefined()
    expect(matchRoute('post', '/batches')).toBeUndefined()
  })

  it.each([
    '',
    '/',
    'files',
    '/file',
    '/Files',
    '/models',
    '/chat/completions',
    '/files/',
    '/files//content',
    '//files',
    '/files/file-abc/',
    '/files/file-abc/content/',
    '/files/file-abc/content/more',
    '/files/file-abc/download',
    '/files/file-abc/cancel',
    '/batches/',
    '/batches/batch_123/content',
    '/batches/batch_123/cancel/',
    '/batches/batch_123/cancel/now',
  ])('%j is not a route, whatever the method', (path) => {
    for (const method of METHODS) expect(matchRoute(method, path)).toBeUndefined()
  })

  it('decodes percent-encoded ids', () => {
    expect(matchRoute('GET', '/files/file%2Dabc')).toEqual({ name: 'files.retrieve', id: 'file-abc' })
    expect(matchRoute('DELETE', '/files/a%20b')).toEqual({ name: 'files.delete', id: 'a b' })
    expect(matchRoute('GET', '/files/a%2Fb/content')).toEqual({ name: 'files.content', id: 'a/b' })
    expect(matchRoute('GET', '/batches/%E6%97%A5%E6%9C%AC')).toEqual({ name: 'batches.retrieve', id: '日本' })
    expect(matchRoute('POST', '/batches/b%3F1/cancel')).toEqual({ name: 'batches.cancel', id: 'b?1' })
  })

  it('leaves ids without escapes as they are', () => {
    expect(matchRoute('GET', '/files/file-AbC_123.jsonl')).toEqual({ name: 'files.retrieve', id: 'file-AbC_123.jsonl' })
    expect(matchRoute('GET', '/files/a+b')).toEqual({ name: 'files.retrieve', id: 'a+b' })
  })

  it('is not a route when an id cannot be decoded', () => {
    expect(matchRoute('GET', '/files/%E0%A4%A')).toBeUndefined()
    expect(matchRoute('GET', '/files/%zz/content')).toBeUndefined()
    expect(matchRoute('POST', '/batches/%/cancel')).toBeUndefined()
  })

  it('does not decode the collection or action', () => {
    expect(matchRoute('GET', '/%66iles')).toBeUndefined()
    expect(matchRoute('GET', '/files/f1/%63ontent')).toBeUndefined()
  })
})

describe('relativePath', () => {
  it("with basePath '' keeps the whole path", () => {
    expect(relativePath('/files', '')).toBe('/files')
    expect(relativePath('/files/file-abc/content', '')).toBe('/files/file-abc/content')
    expect(relativePath('/', '')).toBe('/')
  })

  it("with basePath '/' keeps the whole path", () => {
    expect(relativePath('/files', '/')).toBe('/files')
  })

  it.each(['/v1', '/v1/'])('with basePath %j strips the mount', (basePath) => {
    expect(relativePath('/v1/files', basePath)).toBe('/files')
    expect(relativePath('/v1/files/file-abc', basePath)).toBe('/files/file-abc')
    expect(relativePath('/v1/batches/b1/cancel', basePath)).toBe('/batches/b1/cancel')
    expect(relativePath('/v1/', basePath)).toBe('/')
  })

  it('strips the query string', () => {
    expect(relativePath('/v1/files?purpose=batch&limit=2', '/v1')).toBe('/files')
    expect(relativePath('/v1/files?', '/v1')).toBe('/files')
    expect(relativePath('/files?after=file-1', '')).toBe('/files')
    expect(relativePath('/v1/files/f%3F1?x=1', '/v1')).toBe('/files/f%3F1')
  })

  it('does not decode the path (ids are decoded by matchRoute)', () => {
    expect(relativePath('/v1/files/a%2Fb', '/v1')).toBe('/files/a%2Fb')
  })

  it('supports nested mounts', () => {
    expect(relativePath('/api/openai/v1/files', '/api/openai/v1')).toBe('/files')
    expect(relativePath('/api/other/v1/files', '/api/openai/v1')).toBeUndefined()
  })

  it('is undefined for paths outside the mount', () => {
    expect(relativePath('/files', '/v1')).toBeUndefined()
    expect(relativePath('/v2/files', '/v1')).toBeUndefined()
    expect(relativePath('/v10/files', '/v1')).toBeUndefined()
    expect(relativePath('/v1files', '/v1')).toBeUndefined()
    expect(relativePath('/V1/files', '/v1')).toBeUndefined()
    expect(relativePath('/health', '/v1')).toBeUndefined()
    expect(relativePath('/other?next=/v1/files', '/v1')).toBeUndefined()
  })

  it('is undefined for the mount point itself, which has no API path', () => {
    expect(relativePath('/v1', '/v1')).toBeUndefined()
    expect(relativePath('/v1?x=1', '/v1')).toBeUndefined()
    expect(relativePath('', '')).toBeUndefined()
  })

  it('composes with matchRoute', () => {
    const route = (method: string, url: string) => {
      const path = relativePath(url, '/v1')
      return path === undefined ? undefined : matchRoute(method, path)
    }
    expect(route('GET', '/v1/files?purpose=batch')).toEqual({ name: 'files.list' })
    expect(route('GET', '/v1/files/file%2Dx/content?download=1')).toEqual({ name: 'files.content', id: 'file-x' })
    expect(route('POST', '/v1/batches/b1/cancel')).toEqual({ name: 'batches.cancel', id: 'b1' })
    expect(route('GET', '/files')).toBeUndefined()
    expect(route('GET', '/v1/models')).toBeUndefined()
  })
})
