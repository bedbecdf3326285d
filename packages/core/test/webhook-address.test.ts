import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { classifyAddress, isAddressAllowed } from '../src/webhooks/address-policy.js'
import { createGuardedAgent, type LookupAll } from '../src/webhooks/guarded-agent.js'
import { webhookMessageOf } from '../src/webhooks/payload.js'
import { sendWebhook, WebhookDeliveryError } from '../src/webhooks/send.js'
import { newWebhookSecret, startWebhookReceiver, unwrap, type WebhookReceiver } from './support/webhook-receiver.js'

describe('which addresses a webhook may go to', () => {
  it.each([
    // IPv4
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.128.0.1', 'public'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'reserved'],
    ['224.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'reserved'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fd00::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    // IPv4 inside IPv6: mapped (both spellings), NAT64 and 6to4 reach the IPv4 address they carry.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:0808:0808::1', 'public'],
    // Not an address at all.
    ['example.com', 'reserved'],
  ] as const)('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind)
  })

  it('allows non-public kinds only when asked, and reserved ones never', () => {
    expect(isAddressAllowed('8.8.8.8', [])).toBe(true)
    expect(isAddressAllowed('127.0.0.1', [])).toBe(false)
    expect(isAddressAllowed('127.0.0.1', ['loopback'])).toBe(true)
    expect(isAddressAllowed('::ffff:127.0.0.1', ['private'])).toBe(false)
    expect(isAddressAllowed('10.0.0.1', ['loopback', 'private'])).toBe(true)
    expect(isAddressAllowed('169.254.169.254', ['loopback', 'private'])).toBe(false)
    expect(isAddressAllowed('0.0.0.0', ['loopback', 'private', 'link-local'])).toBe(false)
  })
})

describe('the address is checked where the connection is made', () => {
  let receiver: WebhookReceiver
  beforeAll(async () => {
    receiver = await startWebhookReceiver()
  })
  afterAll(() => receiver.close())

  const message = webhookMessageOf({
    id: 'evt_test',
    type: 'batch_success',
    createdAt: 1_700_000_100,
    batchId: 'batch_test',
    owner: 'alice',
    provider: 'openai',
    model: 'gpt-4o-mini',
    endpoint: '/v1/chat/completions',
    metadata: null,
    status: 'completed',
    requestCounts: { total: 1, completed: 1, failed: 0 },
    usage: {
      requests: { succeeded: 1, failed: 0 },
      inputTokens: 1,
      cachedTokens: 0,
      outputTokens: 1,
      reasoningTokens: 0,
      totalTokens: 2,
    },
    responseCost: 0,
    byModel: {},
    unpricedModels: [],
    timings: {
      createdAt: 1_700_000_000,
      inProgressAt: null,
      finalizingAt: null,
      endedAt: 1_700_000_050,
      durationSeconds: 50,
    },
  })
  if (!message) throw new Error('a batch end has a webhook')

  /** A DNS that answers what the test says, as an attacker's name server would. */
  const dns =
    (answers: Record<string, string[]>): LookupAll =>
    async (hostname) =>
      (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))

  it('refuses a public-looking name that resolves to a private address (DNS rebinding)', async () => {
    const agent = createGuardedAgent({
      allowed: ['loopback'],
      connectTimeoutMs: 2000,
      lookup: dns({ 'hooks.example.com': ['10.0.0.7', '169.254.169.254'] }),
    })
    try {
      const sent = sendWebhook(
        agent,
        { url: 'http://hooks.example.com/in', secrets: [newWebhookSecret()] },
        message,
        2000,
      )
      await expect(sent).rejects.toBeInstanceOf(WebhookDeliveryError)
      await expect(sent).rejects.toMatchObject({
        permanent: true,
        message: expect.stringMatching(/hooks\.example\.com resolves to 10\.0\.0\.7, 169\.254\.169\.254/),
      })
    } finally {
      await agent.destroy()
    }
  })

  it('connects to the resolved address it checked, with the name kept in the Host header', async () => {
    const secret = newWebhookSecret()
    const agent = createGuardedAgent({
      allowed: ['loopback'],
      connectTimeoutMs: 2000,
      lookup: dns({ 'hooks.example.com': ['10.0.0.7', '127.0.0.1'] }),
    })
    try {
      await sendWebhook(
        agent,
        { url: `http://hooks.example.com:${receiver.port}/in`, secrets: [secret] },
        message,
        2000,
      )
      const [received] = receiver.received
      expect(received?.headers.host).toBe(`hooks.example.com:${receiver.port}`)
      expect(await unwrap(received as NonNullable<typeof received>, secret)).toEqual({
        id: 'evt_test',
        object: 'event',
        created_at: 1_700_000_050,
        type: 'batch.completed',
        data: { id: 'batch_test' },
      })
    } finally {
      await agent.destroy()
    }
  })

  it('refuses URLs that are not http(s) or that carry credentials, as permanent failures', async () => {
    const agent = createGuardedAgent({ allowed: ['loopback'], connectTimeoutMs: 2000 })
    try {
      for (const url of ['ftp://127.0.0.1/in', `http://user:pw@127.0.0.1:${receiver.port}/in`, 'not a url']) {
        await expect(sendWebhook(agent, { url, secrets: [newWebhookSecret()] }, message, 2000)).rejects.toMatchObject({
          permanent: true,
        })
      }
    } finally {
      await agent.destroy()
    }
  })
})
