// Writes @batchkit/core's version into packages/core/src/version.ts, for its versioned tracer and meter:
// a constant builds the same into the ESM and CommonJS bundles and needs no JSON import at run time.
// Run by `version-packages` after `changeset version`; a test fails when the two disagree.
import { readFileSync, writeFileSync } from 'node:fs'

const root = new URL('../packages/core/', import.meta.url)
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
writeFileSync(
  new URL('src/version.ts', root),
  `/** This package's version, as its package.json states it; \`scripts/sync-version.mjs\` writes it. */\nexport const VERSION = '${version}'\n`,
)
