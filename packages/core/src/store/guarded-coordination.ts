import type { BudgetLedger, LedgerTotals, Reservation } from '../budgets/ledger.js'
import { MemoryLedger } from '../budgets/ledger.js'
import type { Coordination } from './create-index.js'
import { type StoreGuard, storable } from './guard.js'
import type { LeaseStore } from './leases.js'
import type { OrderedIndex } from './ordered-index.js'

/**
 * The lists and leases of `coordination`, each call bounded and classified by `guard`, and list
 * names or keys that no store could hold (NUL) answered without asking the store: such a list is
 * empty, since nothing is ever added to it.
 */
export function guardCoordination(coordination: Coordination, guard: StoreGuard): Required<Coordination> {
  return {
    index: new GuardedIndex(coordination.index, guard),
    leases: new GuardedLeases(coordination.leases, guard),
    ledger: new GuardedLedger(coordination.ledger ?? new MemoryLedger(), guard),
  }
}

class GuardedIndex implements OrderedIndex {
  constructor(
    private readonly inner: OrderedIndex,
    private readonly guard: StoreGuard,
  ) {}

  get shared(): boolean {
    return this.inner.shared
  }

  add(list: string, key: string): Promise<void> {
    if (!storable(list) || !storable(key)) return Promise.reject(new Error(`Unstorable list entry in ${list}`))
    return this.guard.run('adding to a list', () => this.inner.add(list, key))
  }

  async remove(list: string, key: string): Promise<void> {
    if (!storable(list) || !storable(key)) return
    return this.guard.run('removing from a list', () => this.inner.remove(list, key))
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    if (!storable(list) || (options.after !== undefined && !storable(options.after))) return []
    return this.guard.run('reading a list', () => this.inner.range(list, options))
  }
}

class GuardedLedger implements BudgetLedger {
  constructor(
    private readonly inner: BudgetLedger,
    private readonly guard: StoreGuard,
  ) {}

  get shared(): boolean {
    return this.inner.shared
  }

  reserve(ledger: string, holdId: string, micros: number, limitMicros: number | null): Promise<Reservation> {
    return this.guard.run('holding budget', () => this.inner.reserve(ledger, holdId, micros, limitMicros))
  }

  settle(ledger: string, holdId: string, spentMicros: number): Promise<void> {
    return this.guard.run('settling budget', () => this.inner.settle(ledger, holdId, spentMicros))
  }

  read(ledger: string): Promise<LedgerTotals> {
    return this.guard.run('reading budget', () => this.inner.read(ledger))
  }
}

class GuardedLeases implements LeaseStore {
  constructor(
    private readonly inner: LeaseStore,
    private readonly guard: StoreGuard,
  ) {}

  get shared(): boolean {
    return this.inner.shared
  }

  acquire(key: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.guard.run('taking a lease', () => this.inner.acquire(key, holder, ttlMs))
  }

  release(key: string, holder: string): Promise<void> {
    return this.guard.run('releasing a lease', () => this.inner.release(key, holder))
  }
}
