import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serveNodeRequest } from '@batchkit/core'
import type { HostHarness } from './harness.js'

/** The baseline host: bare `node:http` and the core's Node bridge, nothing else. */
export const nodeHttpHarness: HostHarness = {
  name: 'node:http',
  async start({ kit, mountPath, jsonBodyParser }) {
    const server = createServer(async (req, res) => {
      const url = req.url ?? '/'
      if (req.method === 'GET' && url === '/host-route') return void res.end('host')
      if (!kit.http.matches(req.method ?? 'GET', url, mountPath)) {
        res.statusCode = 404
        return void res.end('not found')
      }
      let parsedBody: unknown
      let parseError: unknown
      if (jsonBodyParser && /json/.test(req.headers['content-type'] ?? '')) {
        let text = ''
        for await (const chunk of req) text += chunk
        try {
          parsedBody = JSON.parse(text)
        } catch (error) {
          parseError = error
        }
      }
      await serveNodeRequest(kit.http, req, res, { basePath: mountPath, parsedBody, parseError })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return {
      origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: async () => {
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
      },
    }
  },
}
