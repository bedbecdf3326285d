import type { OrderedIndex } from './ordered-index.js'

/** The few node-redis (v4/v5) client commands the index needs; taken from `@keyv/redis`'s `client`. */
export interface RedisLikeClient {
  zAdd(key: string, members: { score: number; value: string }[]): Promise<unknown>
  zRem(key: string, member: string): Promise<unknown>
  sendCommand(args: string[]): Promise<unknown>
}

/**
 * An index in Redis sorted sets, where every add and remove is one atomic command, so any number of
 * instances can share it. All scores are 0 and the sort key is the member, so lexicographic ranges
 * give time order with exact cursors.
 */
export class RedisIndex implements OrderedIndex {
  readonly shared = true

  constructor(
    private readonly client: () => Promise<RedisLikeClient>,
    private readonly prefix: string,
  ) {}

  async add(list: string, key: string): Promise<void> {
    await (await this.client()).zAdd(this.prefix + list, [{ score: 0, value: key }])
  }

  async remove(list: string, key: string): Promise<void> {
    await (await this.client()).zRem(this.prefix + list, key)
  }

  async range(list: string, options: { after?: string; limit: number; order: 'asc' | 'desc' }): Promise<string[]> {
    const { after, limit, order } = options
    const args =
      order === 'asc'
        ? ['ZRANGE', this.prefix + list, after === undefined ? '-' : `(${after}`, '+', 'BYLEX']
        : ['ZRANGE', this.prefix + list, after === undefined ? '+' : `(${after}`, '-', 'BYLEX', 'REV']
    const result = await (await this.client()).sendCommand([...args, 'LIMIT', '0', String(limit + 1)])
    return (result as unknown[]).map(String)
  }
}
