import type { OrderedIndex } from './ordered-index.js'

/** Runs one parameterised statement and returns its rows; `@keyv/postgres` exposes one as `query`. */
export type SqlQuery = (sql: string, values?: unknown[]) => Promise<Record<string, unknown>[]>

/**
 * An index in a PostgreSQL table beside Keyv's own, where inserts are atomic and idempotent
 * (`ON CONFLICT DO NOTHING`), so any number of instances can share it.
 */
export class PostgresIndex implements OrderedIndex {
  readonly shared = true
  private ready: Promise<void> | undefined

  constructor(
    private readonly query: SqlQuery,
    private readonly table = 'batchkit_index',
  ) {
    if (!/^[a-z_][a-z0-9_]*$/i.test(table)) throw new Error(`Invalid index table name: ${table}`)
  }

  private init(): Promise<void> {
    this.ready ??= this.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (list TEXT NOT NULL, sort_key TEXT COLLATE "C" NOT NULL, PRIMARY KEY (list, sort_key))`,
    ).then(
      () => undefined,
      (error) => {
        this.ready = undefined
        throw error
      },
    )
    return this.ready
  }

  async add(list: string, key: string): Promise<void> {
    await this.init()
    await this.query(`INSERT INTO ${this.table} (list, sort_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [list, key])
  }

  async remove(list: string, key: string): Promise<void> {
    await this.init()
    await this.query(`DELETE FROM ${this.table} WHERE list = $1 AND sort_key = $2`, [list, key])
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    await this.init()
    const { after, limit, order } = options
    const [cmp, dir] = order === 'asc' ? ['>', 'ASC'] : ['<', 'DESC']
    const rows =
      after === undefined
        ? await this.query(`SELECT sort_key FROM ${this.table} WHERE list = $1 ORDER BY sort_key ${dir} LIMIT $2`, [
            list,
            limit + 1,
          ])
        : await this.query(
            `SELECT sort_key FROM ${this.table} WHERE list = $1 AND sort_key ${cmp} $2 ORDER BY sort_key ${dir} LIMIT $3`,
            [list, after, limit + 1],
          )
    return rows.map((row) => String(row.sort_key))
  }
}
