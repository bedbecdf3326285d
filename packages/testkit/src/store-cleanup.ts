/** What the clean-up needs of a node-redis client, such as the one `@keyv/redis` holds. */
export interface RedisCommandClient {
  sendCommand(args: string[]): Promise<unknown>
}

/** Runs one parameterised SQL statement, as `@keyv/postgres` exposes `query`. */
export type SqlRunner = (sql: string, values?: unknown[]) => Promise<unknown>

/**
 * Removes from a shared Redis what one test run wrote under `namespace`: every key whose name holds
 * one of `marks` (the run's ids and owner), and every sorted-set member that does. Other runs'
 * data, even in the same namespace, is left alone, so it is safe on a server others use.
 */
export async function removeRedisTestData(
  client: RedisCommandClient,
  namespace: string,
  marks: readonly string[],
): Promise<void> {
  const named = (text: string) => marks.some((mark) => text.includes(mark))
  let cursor = '0'
  do {
    const [next, keys] = (await client.sendCommand([
      'SCAN',
      cursor,
      'MATCH',
      `${namespace.replace(/[*?[\]\\]/g, '\\$&')}*`,
      'COUNT',
      '1000',
    ])) as [string, string[]]
    cursor = String(next)
    for (const key of keys) {
      if (named(key)) {
        await client.sendCommand(['UNLINK', key])
      } else if ((await client.sendCommand(['TYPE', key])) === 'zset') {
        const members = ((await client.sendCommand(['ZRANGE', key, '0', '-1'])) as string[]).filter(named)
        if (members.length > 0) await client.sendCommand(['ZREM', key, ...members])
      }
    }
  } while (cursor !== '0')
}

/**
 * Removes from a shared PostgreSQL database what one test run wrote under `namespace`: Keyv rows
 * in `keyvTable`, and batchkit's index entries and leases, whose key, list or entry holds one of
 * `marks`. Other runs' rows are left alone.
 */
export async function removePostgresTestData(
  query: SqlRunner,
  options: { keyvTable: string; namespace: string; marks: readonly string[] },
): Promise<void> {
  const { keyvTable, namespace, marks } = options
  if (!/^[a-z_][a-z0-9_]*$/.test(keyvTable)) throw new Error(`Unexpected table name: ${keyvTable}`)
  const mine = (column: string) =>
    `left(${column}, length($1)) = $1 AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS m WHERE strpos(${column}, m) > 0)`
  const statements = [
    `DELETE FROM ${keyvTable} WHERE ${mine('key')}`,
    `DELETE FROM batchkit_index WHERE left(list, length($1)) = $1 AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS m WHERE strpos(list, m) > 0 OR strpos(sort_key, m) > 0)`,
    `DELETE FROM batchkit_leases WHERE ${mine('key')}`,
  ]
  for (const sql of statements) {
    await query(sql, [`${namespace}:`, marks]).catch((error: { code?: string }) => {
      // A table the run never needed was never created.
      if (error.code !== '42P01') throw error
    })
  }
}
