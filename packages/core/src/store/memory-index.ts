import type { OrderedIndex } from './ordered-index.js'
import { SortedList } from './sorted-list.js'

/** An index in this process's memory, for the default in-memory Keyv store. */
export class MemoryIndex implements OrderedIndex {
  readonly shared = false
  private readonly lists = new Map<string, SortedList>()

  async add(list: string, key: string): Promise<void> {
    let sorted = this.lists.get(list)
    if (!sorted) {
      sorted = new SortedList()
      this.lists.set(list, sorted)
    }
    sorted.add(key)
  }

  async remove(list: string, key: string): Promise<void> {
    this.lists.get(list)?.remove(key)
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    return this.lists.get(list)?.range(options) ?? []
  }
}
