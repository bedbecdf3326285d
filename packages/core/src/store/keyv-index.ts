import type { Keyv } from 'keyv'
import { CheckedKeyv } from './checked-keyv.js'
import { insertSorted, type OrderedIndex, rangeOfSorted, removeSorted } from './ordered-index.js'

/**
 * An index kept as one sorted array per list in any Keyv store. Updates are read-modify-write under
 * a lock in this process, so it is safe for one server instance only; Redis and PostgreSQL get
 * their own shared indexes.
 */
export class KeyvIndex implements OrderedIndex {
  readonly shared = false
  private readonly locks = new Map<string, Promise<unknown>>()
  // A failed read must not pass for an empty list: the update would then overwrite the list.
  private readonly keyv: CheckedKeyv

  constructor(
    keyv: Keyv,
    private readonly prefix: string,
  ) {
    this.keyv = new CheckedKeyv(keyv)
  }

  add(list: string, key: string): Promise<void> {
    return this.update(list, (sorted) => insertSorted(sorted, key))
  }

  remove(list: string, key: string): Promise<void> {
    return this.update(list, (sorted) => removeSorted(sorted, key))
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    return rangeOfSorted((await this.keyv.get<string[]>(this.prefix + list)) ?? [], options)
  }

  private update(list: string, change: (sorted: string[]) => boolean): Promise<void> {
    const previous = this.locks.get(list) ?? Promise.resolve()
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const sorted = (await this.keyv.get<string[]>(this.prefix + list)) ?? []
        if (change(sorted)) await this.keyv.set(this.prefix + list, sorted)
      })
    this.locks.set(list, next)
    const release = () => {
      if (this.locks.get(list) === next) this.locks.delete(list)
    }
    next.then(release, release)
    return next
  }
}
