import type { OrderedIndex } from './ordered-index.js'
import { tableOnce } from './postgres-table.js'

/** Runs one parameterised statement and returns its rows; `@keyv/postgres` exposes one as `query`. */
export type SqlQuery = (sql: string, values?: unknown[]) => Promise<Record<string, unknown>[]>

/**
 * An index in a PostgreSQL table beside Keyv's own, where inserts are atomic and idempotent
 * (`ON CONFLICT DO NOTHING`), so any number of instances can share it.
 */
export class PostgresIndex implements OrderedIndex {
  readonly shared = true
  private readonly init: () => Promise<void>

  /**
   * @param prefix Put before every list name, so Keyv namespaces sharing a database stay apart.
   * @param table The table's name. @default 'batchkit_index'
   */
  constructor(
    private readonly query: SqlQuery,
    private readonly prefix: string,
    private readonly table = 'batchkit_index',
  ) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new Error(`Invalid index table name: ${table}`)
    this.init = tableOnce(
      query,
      `CREATE TABLE IF NOT EXISTS ${table} (list TEXT NOT NULL, sort_key TEXT COLLATE "C" NOT NULL, PRIMARY KEY (list, sort_key))`,
    )
  }

  async add(list: string, key: string): Promise<void> {
    await this.init()
    await this.query(`INSERT INTO ${this.table} (list, sort_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
      this.prefix + list,
      key,
    ])
  }

  async remove(list: string, key: string): Promise<void> {
    await this.init()
    await this.query(`DELETE FROM ${this.table} WHERE list = $1 AND sort_key = $2`, [this.prefix + list, key])
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    await this.init()
    const { after, limit, order } = options
    const [cmp, dir] = order === 'asc' ? ['>', 'ASC'] : ['<', 'DESC']
    const rows =
      after === undefined
        ? await this.query(`SELECT sort_key FROM ${this.table} WHERE list = $1 ORDER BY sort_key ${dir} LIMIT $2`, [
            this.prefix + list,
            limit + 1,
          ])
        : await this.query(
            `SELECT sort_key FROM ${this.table} WHERE list = $1 AND sort_key ${cmp} $2 ORDER BY sort_key ${dir} LIMIT $3`,
            [this.prefix + list, after, limit + 1],
          )
    return rows.map((row) => String(row.sort_key))
  }
}
