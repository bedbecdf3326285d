import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'

/** One request a receiver got, as it arrived. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders
  body: string
  /** The status the receiver answered it with. */
  status: number
}

/** A webhook receiver on loopback that keeps every request and answers as told. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks`. */
  url: string
  port: number
  received: ReceivedWebhook[]
  /** Decides each answer's status from the number of requests before it. @default 200 always */
  respond: (index: number) => number
  close(): Promise<void>
}

/** A new Standard Webhooks secret, as OpenAI's dashboard gives one. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/** Verifies a received webhook the way a receiver would: OpenAI's client, with the secret. */
export function unwrap(received: ReceivedWebhook, secret: string): Promise<OpenAI.Webhooks.UnwrapWebhookEvent> {
  const client = new OpenAI({ apiKey: 'unused' })
  return client.webhooks.unwrap(received.body, headersOf(received), secret)
}

/** Node's headers as the `openai` client takes them: strings only. */
function headersOf(received: ReceivedWebhook): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(received.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return headers
}

/** Starts a receiver on a free loopback port. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = {
    url: '',
    port: 0,
    received: [],
    respond: () => 200,
    close: async () => undefined,
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const status = receiver.respond(receiver.received.length)
      receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status })
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'not now')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  receiver.port = (server.address() as AddressInfo).port
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks`
  receiver.close = async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  return receiver
}
