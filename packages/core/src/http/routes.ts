/** The operations of the API, one per method and path. */
export type Operation =
  | { name: 'files.create' }
  | { name: 'files.list' }
  | { name: 'files.retrieve'; id: string }
  | { name: 'files.delete'; id: string }
  | { name: 'files.content'; id: string }
  | { name: 'batches.create' }
  | { name: 'batches.list' }
  | { name: 'batches.retrieve'; id: string }
  | { name: 'batches.cancel'; id: string }

/**
 * The operation for a method and a path relative to the mount point (`/files/file-abc`), or
 * undefined when the path is not the API's, so the host can handle it.
 */
export function matchRoute(method: string, path: string): Operation | undefined {
  const parts = path.split('/')
  if (parts[0] !== '' || parts.length < 2 || parts.length > 4) return undefined
  const [, collection, rawId, action] = parts
  if (rawId === '') return undefined
  let id: string | undefined
  try {
    id = rawId === undefined ? undefined : decodeURIComponent(rawId)
  } catch {
    return undefined
  }
  if (collection === 'files') {
    if (id === undefined)
      return method === 'POST' ? { name: 'files.create' } : method === 'GET' ? { name: 'files.list' } : undefined
    if (action === undefined) {
      return method === 'GET'
        ? { name: 'files.retrieve', id }
        : method === 'DELETE'
          ? { name: 'files.delete', id }
          : undefined
    }
    return action === 'content' && method === 'GET' ? { name: 'files.content', id } : undefined
  }
  if (collection === 'batches') {
    if (id === undefined)
      return method === 'POST' ? { name: 'batches.create' } : method === 'GET' ? { name: 'batches.list' } : undefined
    if (action === undefined) return method === 'GET' ? { name: 'batches.retrieve', id } : undefined
    return action === 'cancel' && method === 'POST' ? { name: 'batches.cancel', id } : undefined
  }
  return undefined
}

/** The path of `url` relative to `basePath`, or undefined when the URL is outside the mount. */
export function relativePath(url: string, basePath: string): string | undefined {
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  const base = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath
  if (!path.startsWith(base)) return undefined
  const rest = path.slice(base.length)
  return rest.startsWith('/') ? rest : undefined
}
