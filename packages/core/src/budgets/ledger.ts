/** Micro-dollars spent and held in one owner's ledger for one period. */
export interface LedgerTotals {
  /** What settled batches cost, in whole micro-dollars. */
  spentMicros: number
  /** What unfinished batches may still cost at most, in whole micro-dollars. */
  reservedMicros: number
}

/**
 * Money held and spent per ledger (one owner, one period), in whole micro-dollars, changed only by
 * operations that are atomic in the store, so several server instances can share it: a hold is
 * taken only while spent + reserved + it stays within the limit, and settling a hold moves it to
 * spent exactly once however often it runs.
 */
export interface BudgetLedger {
  /**
   * Holds `micros` under `holdId` if spent + reserved + `micros` ≤ `limitMicros` (always, with no
   * limit). A hold that is already there counts as taken. Returns whether it is held, and the
   * totals it was judged against.
   */
  reserve(ledger: string, holdId: string, micros: number, limitMicros: number | null): Promise<Reservation>
  /**
   * Ends a hold: its amount leaves `reserved` and `spentMicros` joins `spent`, in one step. A hold
   * that is not there (settled already, or never taken) changes nothing, so settling twice is harmless.
   */
  settle(ledger: string, holdId: string, spentMicros: number): Promise<void>
  /** The ledger's totals now. */
  read(ledger: string): Promise<LedgerTotals>
  /** Whether several server instances may share this ledger. */
  readonly shared: boolean
}

/** The answer of {@link BudgetLedger.reserve}. */
export interface Reservation extends LedgerTotals {
  held: boolean
}

/** A ledger in this process's memory, for the in-process store (one instance). */
export class MemoryLedger implements BudgetLedger {
  readonly shared = false
  private readonly ledgers = new Map<string, LedgerTotals & { holds: Map<string, number> }>()

  async reserve(ledger: string, holdId: string, micros: number, limitMicros: number | null): Promise<Reservation> {
    const entry = this.entry(ledger)
    const totals = { spentMicros: entry.spentMicros, reservedMicros: entry.reservedMicros }
    if (entry.holds.has(holdId)) return { held: true, ...totals }
    if (limitMicros !== null && entry.spentMicros + entry.reservedMicros + micros > limitMicros) {
      return { held: false, ...totals }
    }
    entry.holds.set(holdId, micros)
    entry.reservedMicros += micros
    return { held: true, spentMicros: entry.spentMicros, reservedMicros: entry.reservedMicros }
  }

  async settle(ledger: string, holdId: string, spentMicros: number): Promise<void> {
    const entry = this.ledgers.get(ledger)
    const held = entry?.holds.get(holdId)
    if (!entry || held === undefined) return
    entry.holds.delete(holdId)
    entry.reservedMicros -= held
    entry.spentMicros += spentMicros
  }

  async read(ledger: string): Promise<LedgerTotals> {
    const entry = this.ledgers.get(ledger)
    return { spentMicros: entry?.spentMicros ?? 0, reservedMicros: entry?.reservedMicros ?? 0 }
  }

  private entry(ledger: string) {
    let entry = this.ledgers.get(ledger)
    if (!entry) {
      entry = { spentMicros: 0, reservedMicros: 0, holds: new Map() }
      this.ledgers.set(ledger, entry)
    }
    return entry
  }
}
