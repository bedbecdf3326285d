import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

/**
 * The tests `pnpm mutation` runs against each mutant of `@batchkit/core` (stryker.config.mjs): the core's
 * own tests and the Express adapter's HTTP tests (the API as an `openai` client sees it), as one project.
 *
 * Stryker runs them in a sandbox copy of the repository whose `node_modules` are links back to the real
 * one, where `@batchkit/core` would resolve to the unmutated source; the alias points it at the
 * sandbox's own (mutated) copy instead.
 */
const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    conditions: ['@batchkit/source'],
    alias: {
      '@batchkit/core': source('./packages/core/src/index.ts'),
      '@batchkit/testkit': source('./packages/testkit/src/index.ts'),
      '@batchkit/conformance': source('./packages/conformance/src/index.ts'),
    },
  },
  ssr: { resolve: { conditions: ['@batchkit/source'], externalConditions: ['@batchkit/source'] } },
  test: {
    include: ['packages/core/test/**/*.test.ts', 'packages/express/test/**/*.test.ts'],
    exclude: [
      '**/node_modules/**',
      // Child processes: Stryker switches a mutant on in the test's own process, so code run by a child is
      // never mutated; these only cost time (about 55 s, 10 s and 7 s a run).
      'packages/core/test/crash-recovery.test.ts',
      'packages/core/test/vertex-provider-memory.test.ts',
      'packages/express/test/upload-memory.test.ts',
      // Whole-file set-ups that every mutant they cover pays for again, and not in the mutated modules'
      // scope: freshness windows over 100 batches created through a 200 ms proxy (28 s), and store outages
      // against Redis and PostgreSQL servers the files start and kill (27 s).
      'packages/core/test/read-model.test.ts',
      'packages/core/test/store-outage.test.ts',
      'packages/core/test/store-outage-postgres.test.ts',
      // The Vertex provider is not mutated, and one of its timing-bound tests fails now and then on a loaded
      // machine, which stops a whole Stryker run in its first pass.
      'packages/core/test/vertex-provider.test.ts',
      // 120,000 requests through the split provider (not mutated): under coverage instrumentation on a busy
      // machine it passes its 2-minute limit, which stops a whole run in its first pass. The validator and
      // aggregation it passes through are covered by their own and the HTTP tests.
      'packages/core/test/big-jobs.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
