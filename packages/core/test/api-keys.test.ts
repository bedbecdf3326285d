import type { IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import { type AuthRequest, apiKeyAuth, credentialOf, parseApiKeys } from '../src/auth/api-keys.js'

function requestWith(headers: IncomingHttpHeaders): AuthRequest {
  return { method: 'GET', path: '/files', headers }
}

const bearer = (key: string) => requestWith({ authorization: `Bearer ${key}` })
const azure = (key: string) => requestWith({ 'api-key': key })

describe('credentialOf', () => {
  it('reads a Bearer token', () => {
    expect(credentialOf({ authorization: 'Bearer sk-abc' })).toBe('sk-abc')
  })

  it('accepts any case of "Bearer" and surrounding whitespace', () => {
    expect(credentialOf({ authorization: 'bearer sk-abc' })).toBe('sk-abc')
    expect(credentialOf({ authorization: 'BEARER   sk-abc  ' })).toBe('sk-abc')
    expect(credentialOf({ authorization: 'Bearer\tsk-abc' })).toBe('sk-abc')
  })

  it('reads the api-key header (Azure style)', () => {
    expect(credentialOf({ 'api-key': 'sk-azure' })).toBe('sk-azure')
  })

  it('prefers a Bearer token over an api-key header', () => {
    expect(credentialOf({ authorization: 'Bearer sk-bearer', 'api-key': 'sk-azure' })).toBe('sk-bearer')
  })

  it('falls back to api-key when authorization is not a Bearer token', () => {
    expect(credentialOf({ authorization: 'Basic dXNlcjpwYXNz', 'api-key': 'sk-azure' })).toBe('sk-azure')
  })

  it('finds nothing in other schemes, malformed Bearer values or an empty api-key', () => {
    expect(credentialOf({})).toBeUndefined()
    expect(credentialOf({ authorization: 'Basic dXNlcjpwYXNz' })).toBeUndefined()
    expect(credentialOf({ authorization: 'Bearer' })).toBeUndefined()
    expect(credentialOf({ authorization: 'Bearer ' })).toBeUndefined()
    expect(credentialOf({ authorization: 'Bearer two words' })).toBeUndefined()
    expect(credentialOf({ authorization: 'sk-abc' })).toBeUndefined()
    expect(credentialOf({ authorization: 'Basic Bearer sk-abc' })).toBeUndefined()
    expect(credentialOf({ authorization: 'NotBearer sk-abc' })).toBeUndefined()
    expect(credentialOf({ 'api-key': '' })).toBeUndefined()
  })
})

describe('apiKeyAuth with a { key: owner } map', () => {
  const auth = apiKeyAuth({ 'sk-alice': 'alice', 'sk-bob': 'bob', 'sk-team': 'team-a' })

  it('maps a Bearer key to its owner', async () => {
    expect(await auth(bearer('sk-alice'))).toEqual({ owner: 'alice' })
    expect(await auth(bearer('sk-bob'))).toEqual({ owner: 'bob' })
    expect(await auth(bearer('sk-team'))).toEqual({ owner: 'team-a' })
  })

  it('maps an api-key header to its owner', async () => {
    expect(await auth(azure('sk-bob'))).toEqual({ owner: 'bob' })
  })

  it('answers null for a wrong key', async () => {
    expect(await auth(bearer('sk-mallory'))).toBeNull()
    expect(await auth(azure('sk-mallory'))).toBeNull()
  })

  it('answers null for near misses: another case, a prefix, an extension', async () => {
    expect(await auth(bearer('SK-ALICE'))).toBeNull()
    expect(await auth(bearer('sk-alic'))).toBeNull()
    expect(await auth(bearer('sk-alice2'))).toBeNull()
  })

  it('answers null without a credential', async () => {
    expect(await auth(requestWith({}))).toBeNull()
    expect(await auth(requestWith({ authorization: 'Basic c2stYWxpY2U6' }))).toBeNull()
  })

  it('does not look at the method or path', async () => {
    expect(
      await auth({ method: 'DELETE', path: '/batches/x/cancel', headers: { authorization: 'Bearer sk-bob' } }),
    ).toEqual({ owner: 'bob' })
  })

  it('lets several keys share one owner', async () => {
    const shared = apiKeyAuth({ 'sk-1': 'team', 'sk-2': 'team' })
    expect(await shared(bearer('sk-1'))).toEqual({ owner: 'team' })
    expect(await shared(bearer('sk-2'))).toEqual({ owner: 'team' })
  })

  it('refuses an empty map', () => {
    expect(() => apiKeyAuth({})).toThrow(TypeError)
    expect(() => apiKeyAuth({})).toThrow('apiKeyAuth(): give at least one key')
  })
})

describe('apiKeyAuth with a list of keys', () => {
  const keys = ['sk-one', 'sk-two']
  const auth = apiKeyAuth(keys)

  it('accepts each listed key, and answers null for others', async () => {
    expect(await auth(bearer('sk-one'))).not.toBeNull()
    expect(await auth(azure('sk-two'))).not.toBeNull()
    expect(await auth(bearer('sk-three'))).toBeNull()
  })

  it('names each key’s owner from a hash: never the key, nor a part of it', async () => {
    for (const key of keys) {
      const principal = await auth(bearer(key))
      expect(principal?.owner).toMatch(/^key_[0-9a-f]{12}$/)
      expect(principal?.owner).not.toBe(key)
      expect(principal?.owner).not.toContain(key)
      expect(principal?.owner).not.toContain(key.slice(3))
    }
  })

  it('gives each key its own owner, the same on every request and in every instance', async () => {
    const one = await auth(bearer('sk-one'))
    const two = await auth(bearer('sk-two'))
    expect(one?.owner).not.toBe(two?.owner)
    expect(await auth(azure('sk-one'))).toEqual(one)
    expect(await apiKeyAuth(['sk-other', 'sk-one'])(bearer('sk-one'))).toEqual(one)
  })

  it('refuses an empty list', () => {
    expect(() => apiKeyAuth([])).toThrow(TypeError)
  })
})

describe('parseApiKeys', () => {
  it("reads 'k1,k2:team-a, k3:team-b'", () => {
    const keys = parseApiKeys('k1,k2:team-a, k3:team-b')
    expect(Object.keys(keys)).toEqual(['k1', 'k2', 'k3'])
    expect(keys.k2).toBe('team-a')
    expect(keys.k3).toBe('team-b')
    expect(keys.k1).toMatch(/^key_[0-9a-f]{12}$/)
  })

  it('names a bare key’s owner exactly as apiKeyAuth does for a list, never the key itself', async () => {
    const keys = parseApiKeys('k1')
    expect(keys.k1).not.toBe('k1')
    expect(keys.k1).not.toContain('k1')
    expect(await apiKeyAuth(['k1'])(bearer('k1'))).toEqual({ owner: keys.k1 })
  })

  it('trims whitespace around entries', () => {
    expect(parseApiKeys('  k1  ,\tk2:team-a\n, k3:team-b ')).toEqual(parseApiKeys('k1,k2:team-a,k3:team-b'))
  })

  it('trims whitespace around the colon too, so every key stays usable', async () => {
    // A key with a trailing space could never be sent: a Bearer token is \S+ and HTTP trims header values.
    const keys = parseApiKeys('k2 : team-a')
    expect(keys).toEqual({ k2: 'team-a' })
    expect(await apiKeyAuth(keys)(bearer('k2'))).toEqual({ owner: 'team-a' })
  })

  it('skips empty entries', () => {
    expect(parseApiKeys('k1,,k2:team-a, ,')).toEqual(parseApiKeys('k1,k2:team-a'))
    expect(parseApiKeys(',k1,')).toEqual(parseApiKeys('k1'))
  })

  it('reads an empty or blank text as no keys', () => {
    expect(parseApiKeys('')).toEqual({})
    expect(parseApiKeys(' , ,, ')).toEqual({})
  })

  it('splits at the first colon: the owner may contain colons', () => {
    expect(parseApiKeys('k1:org:team')).toEqual({ k1: 'org:team' })
  })

  it('rejects an entry with an empty key, without echoing the key', () => {
    expect(() => parseApiKeys('k1,:team-a')).toThrow(TypeError)
    expect(() => parseApiKeys(':team-a')).toThrow("Invalid API key entry: '…:team-a'")
  })

  it('rejects an entry with an empty owner, without echoing the key', () => {
    expect(() => parseApiKeys('sk-secret:')).toThrow(TypeError)
    let message = ''
    try {
      parseApiKeys('k1, sk-secret:')
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toBe("Invalid API key entry: '…:'")
    expect(message).not.toContain('sk-secret')
  })

  it('feeds apiKeyAuth', async () => {
    const auth = apiKeyAuth(parseApiKeys('k1,k2:team-a, k3:team-b'))
    expect(await auth(bearer('k2'))).toEqual({ owner: 'team-a' })
    expect(await auth(azure('k3'))).toEqual({ owner: 'team-b' })
    expect((await auth(bearer('k1')))?.owner).toMatch(/^key_/)
    expect(await auth(bearer('k4'))).toBeNull()
    expect(await auth(bearer('team-a'))).toBeNull()
  })
})
