import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['@batchkit/source'] },
  ssr: { resolve: { conditions: ['@batchkit/source'], externalConditions: ['@batchkit/source'] } },
  test: { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
})
