import { configFromEnv } from '@batchkit/example-support'
import { exampleSmokeSuite } from '@batchkit/example-support/smoke-suite'
import { expect, it } from 'vitest'
import { startExample } from '../src/server.js'

exampleSmokeSuite('Koa', startExample)

it("leaves the parse errors of the app's own routes to Koa", async () => {
  const example = await startExample(configFromEnv({ PORT: '0' }), () => undefined, {})
  try {
    const response = await fetch(new URL('/health', example.baseURL), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"broken": ',
    })
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(response.headers.get('x-request-id')).toBeNull()
  } finally {
    await example.close()
  }
})
