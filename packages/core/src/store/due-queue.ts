import { idOfSortKey, type OrderedIndex, sortKey } from './ordered-index.js'

const SIZE_PAGE = 1000

/** An entry of a {@link DueQueue}: what is due, and the key to remove it by. */
export interface DueEntry {
  id: string
  dueAtMs: number
  key: string
}

/**
 * Work scheduled for a time, kept in an ordered index (so it survives restarts and is shared by
 * instances): the tracker's next polls and the outbox's next deliveries. Rescheduling adds the
 * new entry before removing the old, so a crash in between leaves a duplicate, never a loss;
 * consumers drop entries whose key is no longer the current one.
 */
export class DueQueue {
  constructor(
    private readonly index: OrderedIndex,
    private readonly list: string,
  ) {}

  /** Schedules `id` at `dueAtMs`; returns the entry's key. */
  async schedule(id: string, dueAtMs: number): Promise<string> {
    const key = sortKey(dueAtMs, id)
    await this.index.add(this.list, key)
    return key
  }

  async remove(key: string): Promise<void> {
    await this.index.remove(this.list, key)
  }

  /**
   * How many ids are scheduled, each once (a reschedule cut short can leave an id twice). Reads the
   * whole list, a page at a time: for gauges, not for hot paths.
   */
  async size(): Promise<number> {
    const ids = new Set<string>()
    let after: string | undefined
    for (;;) {
      const keys = await this.index.range(this.list, {
        ...(after === undefined ? {} : { after }),
        limit: SIZE_PAGE,
        order: 'asc',
      })
      for (const key of keys.slice(0, SIZE_PAGE)) ids.add(idOfSortKey(key))
      if (keys.length <= SIZE_PAGE) return ids.size
      after = keys[SIZE_PAGE - 1]
    }
  }

  /** Up to `limit` entries due by `nowMs`, earliest first. */
  async due(nowMs: number, limit: number): Promise<DueEntry[]> {
    const keys = await this.index.range(this.list, { limit, order: 'asc' })
    return keys
      .slice(0, limit)
      .map((key) => ({ key, id: idOfSortKey(key), dueAtMs: Number(key.slice(0, key.indexOf(':'))) }))
      .filter((entry) => entry.dueAtMs <= nowMs)
  }
}
