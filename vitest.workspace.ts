import { defineConfig } from 'vitest/config'

/** Root test config: one project per package, all resolving workspace packages to their TypeScript source. */
export default defineConfig({
  resolve: { conditions: ['@batchkit/source'] },
  ssr: { resolve: { conditions: ['@batchkit/source'], externalConditions: ['@batchkit/source'] } },
  test: {
    projects: ['packages/*', 'examples/*'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
