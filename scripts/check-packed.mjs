#!/usr/bin/env node
// The published packages as a user gets them: pack the four with pnpm, check each tarball's manifest
// and files, install the tarballs with npm into a fresh app outside the workspace, run the README's
// Express snippet as ESM and as CommonJS (one unauthenticated and one authenticated GET /v1/files),
// and type-check it under moduleResolution node16 (ESM and CJS) and bundler.
//
//   node scripts/check-packed.mjs             build first, then check
//   node scripts/check-packed.mjs --no-build  use the packages' dist as it is (CI, after its build)
//   KEEP=1 node scripts/check-packed.mjs      keep the temp dir and print its path
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PACKAGES = ['core', 'express', 'koa', 'nestjs']
const started = Date.now()
const failures = []
const fail = (message) => {
  failures.push(message)
  console.error(`  FAIL ${message}`)
}
const run = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts })
const pnpm = (args, opts) => run('npx', ['-y', 'pnpm@12.4.2', ...args], opts)

const work = mkdtempSync(join(tmpdir(), 'batchkit-packed-'))
const packs = join(work, 'tarballs')
const app = join(work, 'app')
mkdirSync(packs)
mkdirSync(app)

try {
  if (!process.argv.includes('--no-build')) {
    console.log('build')
    pnpm(['build'], { cwd: root })
  }

  // 1. Pack, and check what is in each tarball.
  const tarballs = {}
  for (const name of PACKAGES) {
    const dir = join(root, 'packages', name)
    if (!existsSync(join(dir, 'dist', 'index.js'))) throw new Error(`packages/${name}/dist is missing: build first`)
    const before = new Set(readdirSync(packs))
    pnpm(['pack', '--pack-destination', packs], { cwd: dir })
    const tgz = readdirSync(packs).find((f) => !before.has(f))
    tarballs[name] = join(packs, tgz)
    console.log(`pack @batchkit/${name} -> ${tgz}`)
    const files = run('tar', ['-tzf', tarballs[name]]).trim().split('\n')
    const read = (path) => run('tar', ['-xzOf', tarballs[name], `package/${path}`])
    const text = read('package.json')
    const manifest = JSON.parse(text)
    if (text.includes('workspace:')) fail(`${name}: a workspace: range in the packed package.json`)
    if (text.includes('@batchkit/source')) fail(`${name}: the @batchkit/source condition in the packed package.json`)
    if (manifest.publishConfig?.exports) fail(`${name}: publishConfig.exports left in the packed package.json`)
    for (const field of ['license', 'repository', 'homepage', 'bugs', 'keywords']) {
      if (!manifest[field]) fail(`${name}: no ${field}`)
    }
    if (manifest.publishConfig?.access !== 'public') fail(`${name}: publishConfig.access is not public`)
    for (const file of ['package/LICENSE', 'package/README.md']) {
      if (!files.includes(file)) fail(`${name}: ${file} not in the tarball`)
    }
    if (files.some((f) => f.startsWith('package/src/'))) fail(`${name}: src/ shipped in the tarball`)
    // every path the manifest points at is in the tarball
    const targets = [manifest.main, manifest.module, manifest.types]
    const collect = (v) => (typeof v === 'string' ? targets.push(v) : Object.values(v ?? {}).forEach(collect))
    collect(manifest.exports)
    for (const target of targets.filter(Boolean)) {
      if (!files.includes(`package/${target.replace(/^\.\//, '')}`)) fail(`${name}: ${target} is not in the tarball`)
    }
    for (const map of files.filter((f) => f.endsWith('.map'))) {
      if ('sourcesContent' in JSON.parse(read(map.slice('package/'.length))))
        fail(`${name}: ${map} embeds sourcesContent`)
    }
  }

  // 2. A fresh app outside the workspace, installed from the tarballs with npm.
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Use it in your app'))
  const snippet = section.match(/```ts\n([\s\S]*?)```/)?.[1]
  if (!snippet?.includes('createExpressRouter'))
    throw new Error("README: no Express snippet under '## Use it in your app'")
  const imports = [...snippet.matchAll(/^import .* from '([^']+)'$/gm)].map((m) => m[1])
  const thirdParty = imports.filter((m) => !m.startsWith('@batchkit/'))
  const tsVersion = JSON.parse(readFileSync(join(root, 'node_modules/typescript/package.json'), 'utf8')).version
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'packed-app', private: true }, null, 2)}\n`)
  const deps = [
    ...PACKAGES.map((p) => tarballs[p]),
    ...thirdParty,
    '@types/express',
    '@types/node@20',
    `typescript@${tsVersion}`,
  ]
  console.log(`npm install ${[...PACKAGES.map((p) => `@batchkit/${p}.tgz`), ...deps.slice(PACKAGES.length)].join(' ')}`)
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...deps], { cwd: app })

  // 3. Run it as ESM and as CommonJS. Redis when it answers, else the store's default (memory).
  const redisUp = await new Promise((done) => {
    const socket = createConnection(6379, '127.0.0.1')
    socket.once('connect', () => done(socket.end() && true))
    socket.once('error', () => done(false))
  })
  let body = snippet.replace(/(process\.env\.\w+)!/g, '$1')
  if (!redisUp) {
    console.log('  (no Redis on 127.0.0.1:6379: the snippet runs on the in-memory store)')
    body = body.replace(/^\s*store: .*\n/m, '')
  }
  if (!/^app\.listen\(4000\)$/m.test(body)) throw new Error('README snippet: no app.listen(4000) line')
  body = body.replace(
    /^app\.listen\(4000\)$/m,
    `const server = app.listen(0, '127.0.0.1', async () => {
  const url = \`http://127.0.0.1:\${server.address().port}/v1/files\`
  const anonymous = await fetch(url)
  const alice = await fetch(url, { headers: { authorization: 'Bearer sk-alice' } })
  const list = await alice.json()
  const ok = anonymous.status === 401 && alice.status === 200 && list.object === 'list' && Array.isArray(list.data)
  console.log(\`GET /v1/files: \${anonymous.status} without a key, \${alice.status} \${JSON.stringify(list).slice(0, 80)} with one\`)
  server.close()
  await kit.close()
  process.exit(ok ? 0 : 1)
})`,
  )
  const esm = body
  const cjs = body.replace(/^import (.+) from '([^']+)'$/gm, (_m, what, from) =>
    what.startsWith('{')
      ? `const ${what.replace(/ as /g, ': ')} = require('${from}')`
      : `const ${what} = (m => m.default ?? m)(require('${from}'))`,
  )
  writeFileSync(join(app, 'snippet.mjs'), esm)
  writeFileSync(join(app, 'snippet.cjs'), cjs)
  const env = { ...process.env, OPENAI_API_KEY: 'sk-packed-check' }
  for (const file of ['snippet.mjs', 'snippet.cjs']) {
    try {
      const out = run('node', [file], { cwd: app, env, timeout: 30_000 })
      console.log(`run ${file}: ${out.trim().split('\n').pop()}`)
    } catch (error) {
      fail(`run ${file}: ${error.stdout ?? ''}${error.stderr ?? error.message}`)
    }
  }

  // 4. Type-check the snippet as written: node16 as ESM (.mts) and CommonJS (.cts), and bundler.
  writeFileSync(join(app, 'snippet.mts'), snippet)
  writeFileSync(join(app, 'snippet.cts'), snippet)
  writeFileSync(join(app, 'snippet.ts'), snippet)
  const base = { strict: true, noEmit: true, target: 'es2022', types: ['node'], skipLibCheck: false }
  const configs = {
    'tsconfig.node16.json': {
      compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' },
      files: ['snippet.mts', 'snippet.cts'],
    },
    'tsconfig.bundler.json': {
      compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler' },
      files: ['snippet.ts'],
    },
  }
  for (const [file, config] of Object.entries(configs)) {
    writeFileSync(join(app, file), JSON.stringify(config, null, 2))
    try {
      run(join(app, 'node_modules/.bin/tsc'), ['-p', file], { cwd: app })
      console.log(`tsc -p ${file}: ok (${config.files.join(', ')})`)
    } catch (error) {
      fail(`tsc -p ${file}:\n${error.stdout}${error.stderr}`)
    }
  }
} catch (error) {
  fail(error.stack ?? String(error))
} finally {
  if (process.env.KEEP) console.log(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}

const seconds = ((Date.now() - started) / 1000).toFixed(1)
if (failures.length > 0) {
  console.error(`check-packed: ${failures.length} failure(s) in ${seconds}s`)
  process.exit(1)
}
console.log(`check-packed: ok in ${seconds}s`)
