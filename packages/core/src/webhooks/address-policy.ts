import { isIP } from 'node:net'

/**
 * What an IP address is, for deciding whether a webhook may be sent to it: `public` (globally
 * reachable), `loopback`, `private` (RFC 1918, carrier-grade NAT 100.64/10, IPv6 unique local
 * fc00::/7), `link-local` (169.254/16, which holds cloud metadata services, and fe80::/10), or
 * `reserved` (unspecified, multicast, broadcast, documentation, benchmarking and other
 * special-purpose ranges), which a webhook never goes to.
 */
export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved'

/** The non-public kinds of address a user may let webhooks go to. */
export type AllowedAddressKind = 'loopback' | 'private' | 'link-local'

export const ALLOWABLE_ADDRESS_KINDS: readonly AllowedAddressKind[] = ['loopback', 'private', 'link-local']

/** IPv4 special-purpose ranges (IANA's registry), as [first octets, prefix length, kind]. */
const IPV4_RANGES: ReadonlyArray<readonly [number[], number, Exclude<AddressKind, 'public'>]> = [
  [[0], 8, 'reserved'],
  [[10], 8, 'private'],
  [[100, 64], 10, 'private'],
  [[127], 8, 'loopback'],
  [[169, 254], 16, 'link-local'],
  [[172, 16], 12, 'private'],
  [[192, 0, 0], 24, 'reserved'],
  [[192, 0, 2], 24, 'reserved'],
  [[192, 88, 99], 24, 'reserved'],
  [[192, 168], 16, 'private'],
  [[198, 18], 15, 'reserved'],
  [[198, 51, 100], 24, 'reserved'],
  [[203, 0, 113], 24, 'reserved'],
  [[224], 4, 'reserved'],
  [[240], 4, 'reserved'],
]

/** What kind of address `address` (IPv4 or IPv6 text, as DNS or a URL gives it) is; `reserved` if it is not an IP. */
export function classifyAddress(address: string): AddressKind {
  const text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const family = isIP(text)
  if (family === 4) return classifyIPv4(ipv4Bytes(text))
  if (family === 6) return classifyIPv6(ipv6Bytes(text))
  return 'reserved'
}

/** Whether a webhook may go to `address`: public, or of a kind the user allowed. */
export function isAddressAllowed(address: string, allowed: readonly AllowedAddressKind[]): boolean {
  const kind = classifyAddress(address)
  return kind === 'public' || (kind !== 'reserved' && allowed.includes(kind))
}

function classifyIPv4(bytes: number[]): AddressKind {
  for (const [prefix, bits, kind] of IPV4_RANGES) {
    if (inPrefix(bytes, prefix, bits)) return kind
  }
  return 'public'
}

function classifyIPv6(bytes: number[]): AddressKind {
  // Addresses that carry an IPv4 address reach it: IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16.
  if (inPrefix(bytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 96)) return classifyIPv4(bytes.slice(12))
  if (inPrefix(bytes, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96)) return classifyIPv4(bytes.slice(12))
  if (inPrefix(bytes, [0x20, 0x02], 16)) return classifyIPv4(bytes.slice(2, 6))
  if (inPrefix(bytes, [...new Array(15).fill(0), 1], 128)) return 'loopback'
  if (inPrefix(bytes, [0xfe, 0x80], 10)) return 'link-local'
  if (inPrefix(bytes, [0xfc], 7)) return 'private'
  // Only global unicast 2000::/3 is public, less its special-purpose blocks: IETF protocol
  // assignments (Teredo among them) 2001::/23, documentation 2001:db8::/32 and 3fff::/20.
  if (!inPrefix(bytes, [0x20], 3)) return 'reserved'
  if (inPrefix(bytes, [0x20, 0x01, 0x00], 23)) return 'reserved'
  if (inPrefix(bytes, [0x20, 0x01, 0x0d, 0xb8], 32)) return 'reserved'
  if (inPrefix(bytes, [0x3f, 0xff, 0x00], 20)) return 'reserved'
  return 'public'
}

function inPrefix(bytes: number[], prefix: number[], bits: number): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const width = Math.min(8, bits - bit)
    const mask = (0xff << (8 - width)) & 0xff
    if (((bytes[bit / 8] ?? 0) & mask) !== ((prefix[bit / 8] ?? 0) & mask)) return false
  }
  return true
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number)
}

/** The 16 bytes of a valid IPv6 address (zone ids dropped, a trailing dotted IPv4 part expanded). */
function ipv6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, '')
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1]
  if (dotted) {
    const [a, b, c, d] = ipv4Bytes(dotted) as [number, number, number, number]
    text = `${text.slice(0, -dotted.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : [])
  const before = groups(head)
  const after = groups(tail)
  const all =
    tail === undefined ? before : [...before, ...new Array(8 - before.length - after.length).fill(0), ...after]
  return all.flatMap((group) => [group >> 8, group & 0xff])
}
