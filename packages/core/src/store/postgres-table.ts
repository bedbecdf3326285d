import type { SqlQuery } from './postgres-index.js'

/**
 * Creates a table once per process, the first time it is needed. Instances creating it at the same
 * moment make PostgreSQL fail all but one (duplicate type or relation), which here counts as done.
 */
export function tableOnce(query: SqlQuery, createSql: string): () => Promise<void> {
  let ready: Promise<void> | undefined
  return () => {
    ready ??= query(createSql).then(
      () => undefined,
      (error) => {
        const code = (error as { code?: unknown } | null)?.code
        if (code === '23505' || code === '42P07') return
        ready = undefined
        throw error
      },
    )
    return ready
  }
}
