import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { configFromEnv, runDemo } from '@batchkit/example-support'
import { exampleSmokeSuite } from '@batchkit/example-support/smoke-suite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReportsService } from '../src/reports.js'
import { type RunningNestExample, startExample } from '../src/server.js'

exampleSmokeSuite('NestJS', startExample)

describe('the NestJS example, beyond the shared smoke suite', () => {
  let example: RunningNestExample
  beforeAll(async () => {
    const config = configFromEnv({ PORT: '0', BATCHKIT_API_KEYS: 'sk-team:team,sk-other:other' })
    example = await startExample(config, () => undefined, { fakeStepMs: 20 })
  })
  afterAll(() => example?.close())

  it("serves the app's own report from the injected kit, behind its own guard on the same keys", async () => {
    await runDemo(example.baseURL, 'sk-team', () => undefined, 20)
    const report = (key?: string) =>
      fetch(`${example.origin}/reports/usage`, { headers: key ? { authorization: `Bearer ${key}` } : {} })
    const team = await report('sk-team')
    expect(team.status).toBe(200)
    expect(await team.json()).toEqual({
      owner: 'team',
      batches: 1,
      byStatus: { completed: 1 },
      requests: { total: 5, completed: 5, failed: 0 },
    })
    expect(await (await report('sk-other')).json()).toMatchObject({ owner: 'other', batches: 0 })
    expect((await report()).status).toBe(401)
    expect((await report('sk-nope')).status).toBe(401)
    // The same service, called in-process.
    expect((await example.app.get(ReportsService).usage({ owner: 'team' })).batches).toBe(1)
  })
})

it('starts with `tsx` as the start script does, serves, and shuts down on SIGTERM', async () => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const child = spawn('node_modules/.bin/tsx', ['--conditions=@batchkit/source', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', BATCHKIT_API_KEYS: 'sk-start', OPENAI_API_KEY: '', BATCHKIT_STORE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const exited = once(child, 'exit')
  try {
    const baseURL = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        output += chunk
        const match = /listening on (http:\S+)/.exec(output)
        if (match) resolve(match[1] as string)
      })
      void exited.then(() => reject(new Error(`the app exited before listening:\n${output}`)))
    })
    const response = await fetch(`${baseURL}/batches`, { headers: { authorization: 'Bearer sk-start' } })
    expect(response.status).toBe(200)
    child.kill('SIGTERM')
    const [code, signal] = await exited
    expect(code === 0 || signal === 'SIGTERM' || code === 143, `exit ${code} ${signal}:\n${output}`).toBe(true)
  } finally {
    child.kill('SIGKILL')
  }
})
