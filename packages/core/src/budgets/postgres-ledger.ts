import type { SqlQuery } from '../store/postgres-index.js'
import { tableOnce } from '../store/postgres-table.js'
import type { BudgetLedger, LedgerTotals, Reservation } from './ledger.js'

/**
 * A ledger as two PostgreSQL tables, changed only by single statements, each atomic: a hold is taken
 * by one conditional `UPDATE … WHERE spent + reserved + $amount <= $limit` (a concurrent taker waits
 * for the row and is judged on its new totals) together with the hold's insert, and settled by one
 * `DELETE … RETURNING` of the hold that moves its amount in the same statement.
 */
export class PostgresLedger implements BudgetLedger {
  readonly shared = true
  private readonly init: () => Promise<void>

  constructor(
    private readonly query: SqlQuery,
    private readonly prefix: string,
  ) {
    const ledgers = tableOnce(
      query,
      'CREATE TABLE IF NOT EXISTS batchkit_budget_ledgers (ledger TEXT PRIMARY KEY, spent BIGINT NOT NULL DEFAULT 0, reserved BIGINT NOT NULL DEFAULT 0)',
    )
    const holds = tableOnce(
      query,
      'CREATE TABLE IF NOT EXISTS batchkit_budget_holds (ledger TEXT NOT NULL, hold_id TEXT NOT NULL, micros BIGINT NOT NULL, PRIMARY KEY (ledger, hold_id))',
    )
    this.init = async () => {
      await ledgers()
      await holds()
    }
  }

  async reserve(ledger: string, holdId: string, micros: number, limitMicros: number | null): Promise<Reservation> {
    await this.init()
    const key = this.prefix + ledger
    await this.query('INSERT INTO batchkit_budget_ledgers (ledger) VALUES ($1) ON CONFLICT DO NOTHING', [key])
    try {
      const rows = await this.query(
        `WITH taken AS (
           UPDATE batchkit_budget_ledgers SET reserved = reserved + $3::bigint
           WHERE ledger = $1 AND ($4::bigint IS NULL OR spent + reserved + $3::bigint <= $4::bigint)
             AND NOT EXISTS (SELECT 1 FROM batchkit_budget_holds WHERE ledger = $1 AND hold_id = $2)
           RETURNING spent, reserved
         ), hold AS (
           INSERT INTO batchkit_budget_holds (ledger, hold_id, micros) SELECT $1, $2, $3::bigint FROM taken
         )
         SELECT spent, reserved FROM taken`,
        [key, holdId, micros, limitMicros],
      )
      if (rows[0]) return { held: true, ...totalsOf(rows[0]) }
    } catch (error) {
      // Another taker of this very hold got there first: it is held.
      if ((error as { code?: unknown }).code !== '23505') throw error
    }
    const [row] = await this.query(
      `SELECT spent, reserved, EXISTS (SELECT 1 FROM batchkit_budget_holds WHERE ledger = $1 AND hold_id = $2) AS held
       FROM batchkit_budget_ledgers WHERE ledger = $1`,
      [key, holdId],
    )
    return { held: row?.held === true, ...totalsOf(row) }
  }

  async settle(ledger: string, holdId: string, spentMicros: number): Promise<void> {
    await this.init()
    await this.query(
      `WITH gone AS (DELETE FROM batchkit_budget_holds WHERE ledger = $1 AND hold_id = $2 RETURNING micros)
       UPDATE batchkit_budget_ledgers AS l SET reserved = l.reserved - gone.micros, spent = l.spent + $3::bigint
       FROM gone WHERE l.ledger = $1`,
      [this.prefix + ledger, holdId, spentMicros],
    )
  }

  async read(ledger: string): Promise<LedgerTotals> {
    await this.init()
    const [row] = await this.query('SELECT spent, reserved FROM batchkit_budget_ledgers WHERE ledger = $1', [
      this.prefix + ledger,
    ])
    return totalsOf(row)
  }
}

/** BIGINT columns arrive as strings. */
function totalsOf(row: Record<string, unknown> | undefined): LedgerTotals {
  return { spentMicros: Number(row?.spent ?? 0), reservedMicros: Number(row?.reserved ?? 0) }
}
