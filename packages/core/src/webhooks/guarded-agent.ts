import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { Agent, buildConnector } from 'undici'
import { type AllowedAddressKind, classifyAddress, isAddressAllowed } from './address-policy.js'

/** Resolves a host name to all its addresses, as `dns.lookup` with `all: true` does. */
export type LookupAll = (hostname: string) => Promise<LookupAddress[]>

/** A webhook endpoint whose host is, or resolves only to, addresses webhooks may not go to. */
export class WebhookAddressRefusedError extends Error {
  readonly code = 'BATCHKIT_WEBHOOK_ADDRESS_REFUSED'

  constructor(host: string, addresses: readonly string[]) {
    const kinds = [...new Set(addresses.map(classifyAddress))].join(', ')
    super(
      `webhook host ${host} resolves to ${addresses.join(', ') || 'no address'} (${kinds || 'none'}), ` +
        'which webhooks may not reach; allow it with webhooks.allowAddresses',
    )
    this.name = 'WebhookAddressRefusedError'
  }
}

const systemLookup: LookupAll = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    )
  })

/**
 * An undici Agent that checks where it connects, at connect time: it resolves the host itself,
 * keeps only addresses webhooks may reach (public ones, and the kinds the user allowed), and
 * connects to the first of those by address, with TLS still verifying the host's name. Checking the
 * address it actually connects to, rather than the URL, closes DNS rebinding (a name that resolves
 * to a public address when checked and a private one when used).
 */
export function createGuardedAgent(options: {
  allowed: readonly AllowedAddressKind[]
  connectTimeoutMs: number
  lookup?: LookupAll
}): Agent {
  const lookup = options.lookup ?? systemLookup
  const connect = buildConnector({ timeout: options.connectTimeoutMs })
  return new Agent({
    connect(connectOptions, callback) {
      const host = connectOptions.hostname.replace(/^\[(.*)\]$/, '$1')
      const resolved = isIP(host) ? Promise.resolve([host]) : lookup(host).then((all) => all.map((a) => a.address))
      resolved.then(
        (addresses) => {
          const address = addresses.find((a) => isAddressAllowed(a, options.allowed))
          if (address === undefined) callback(new WebhookAddressRefusedError(host, addresses), null)
          // `host` (name and port) stays as it was, so TLS sends and verifies the name, not the address.
          else connect({ ...connectOptions, hostname: address }, callback)
        },
        (error: Error) => callback(error, null),
      )
    },
  })
}
