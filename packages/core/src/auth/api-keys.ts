import { hash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Principal } from '../types.js'

/** What an {@link Authenticate} hook sees of a request. */
export interface AuthRequest {
  method: string
  /** The path relative to the mount point, such as `/files`. */
  path: string
  headers: IncomingHttpHeaders
}

/**
 * Decides who is calling: return the caller's principal, or null to answer 401. Throw an
 * {@link ApiError} to answer something else.
 */
export type Authenticate = (
  request: AuthRequest,
) => Principal | null | undefined | Promise<Principal | null | undefined>

/** The credential a client sent: `Authorization: Bearer <key>`, or Azure's `api-key` header. */
export function credentialOf(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match) return match[1]
  }
  const apiKey = headers['api-key']
  return typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined
}

/**
 * An {@link Authenticate} hook for static API keys, each mapped to its owner. Every key is compared,
 * in constant time, whatever matches, so timing tells nothing about which keys exist.
 *
 * @param keys `{ key: owner }`, or a list of keys (each its own owner, named from a hash of the key).
 */
export function apiKeyAuth(keys: Record<string, string> | readonly string[]): Authenticate {
  const entries = (Array.isArray(keys) ? keys.map((k) => [k, ownerForKey(k)]) : Object.entries(keys)) as [
    string,
    string,
  ][]
  if (entries.length === 0) throw new TypeError('apiKeyAuth(): give at least one key')
  const digests = entries.map(([key, owner]) => ({ digest: sha256(key), owner }))
  return (request) => {
    const credential = credentialOf(request.headers)
    if (credential === undefined) return null
    const presented = sha256(credential)
    let owner: string | undefined
    for (const entry of digests) {
      // Keys are distinct, so at most one digest matches.
      if (timingSafeEqual(entry.digest, presented)) owner = entry.owner
    }
    return owner === undefined ? null : { owner }
  }
}

/**
 * Reads a key list such as `BATCHKIT_API_KEYS`: comma-separated `key` or `key:owner` entries.
 * A bare key's owner is named from a hash of the key, never the key itself.
 */
export function parseApiKeys(text: string): Record<string, string> {
  const keys: Record<string, string> = {}
  for (const entry of text.split(',')) {
    const trimmed = entry.trim()
    if (trimmed === '') continue
    const colon = trimmed.indexOf(':')
    const key = colon === -1 ? trimmed : trimmed.slice(0, colon).trim()
    const owner = colon === -1 ? ownerForKey(key) : trimmed.slice(colon + 1).trim()
    // Only a `key:owner` entry can have an empty side; the key itself is never echoed.
    if (key === '' || owner === '') throw new TypeError(`Invalid API key entry: '…:${owner}'`)
    keys[key] = owner
  }
  return keys
}

function ownerForKey(key: string): string {
  return `key_${sha256(key).toString('hex').slice(0, 12)}`
}

function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer')
}
