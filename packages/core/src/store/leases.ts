import type { SqlQuery } from './postgres-index.js'
import { tableOnce } from './postgres-table.js'
import type { RedisLikeClient } from './redis-index.js'

/**
 * Short exclusive claims ("this instance works on batch X for the next minute"), so that several
 * server instances sharing a store never work on the same thing at once. A lease that is not
 * renewed expires, so a dead instance's work is picked up by another.
 */
export interface LeaseStore {
  /** Takes `key` for `holder` for `ttlMs`, or renews it if `holder` has it; false if another holder has it. */
  acquire(key: string, holder: string, ttlMs: number): Promise<boolean>
  /** Gives `key` up if `holder` has it. */
  release(key: string, holder: string): Promise<void>
  /** Whether several server instances may share these leases. */
  readonly shared: boolean
}

let holds = 0

/**
 * A token of its own for one hold of a lease. A lease store lets a holder take its own lease again
 * (that is how it renews), so each hold that must exclude the others, in this process as in any
 * other, takes the lease under `<holder>#<n>`: the holder names this kit (host, pid and a random
 * part), the count this hold.
 */
export function holdToken(holder: string): string {
  holds += 1
  return `${holder}#${holds}`
}

/** How many takes pass between two sweeps of expired leases that nobody gave up. */
const SWEEP_EVERY = 1000

/** Leases in this process's memory: enough when the store itself is this process's memory. */
export class MemoryLeases implements LeaseStore {
  readonly shared = false
  private readonly held = new Map<string, { holder: string; expiresAt: number }>()
  private takes = 0

  async acquire(key: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    // Some leases are left to expire (a read's refresh claim): forget them now and then.
    if (++this.takes % SWEEP_EVERY === 0) {
      for (const [held, lease] of this.held) if (lease.expiresAt <= now) this.held.delete(held)
    }
    const current = this.held.get(key)
    if (current && current.holder !== holder && current.expiresAt > now) return false
    this.held.set(key, { holder, expiresAt: now + ttlMs })
    return true
  }

  async release(key: string, holder: string): Promise<void> {
    if (this.held.get(key)?.holder === holder) this.held.delete(key)
  }
}

// Renew when ours, else take only if free; atomic inside Redis.
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** Leases as Redis keys with an expiry, taken and given up by scripts that run atomically. */
export class RedisLeases implements LeaseStore {
  readonly shared = true

  constructor(
    private readonly client: () => Promise<RedisLikeClient>,
    private readonly prefix: string,
  ) {}

  async acquire(key: string, holder: string, ttlMs: number): Promise<boolean> {
    const result = await (await this.client()).sendCommand([
      'EVAL',
      ACQUIRE,
      '1',
      this.prefix + key,
      holder,
      String(Math.max(1, Math.round(ttlMs))),
    ])
    return Number(result) === 1
  }

  async release(key: string, holder: string): Promise<void> {
    await (await this.client()).sendCommand(['EVAL', RELEASE, '1', this.prefix + key, holder])
  }
}

/** Leases as rows of a PostgreSQL table, taken by one conditional upsert. */
export class PostgresLeases implements LeaseStore {
  readonly shared = true
  private readonly init: () => Promise<void>

  constructor(
    private readonly query: SqlQuery,
    private readonly prefix: string,
  ) {
    this.init = tableOnce(
      query,
      'CREATE TABLE IF NOT EXISTS batchkit_leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)',
    )
  }

  private takes = 0

  async acquire(key: string, holder: string, ttlMs: number): Promise<boolean> {
    await this.init()
    const now = Date.now()
    // Some leases are left to expire (a read's refresh claim): delete expired rows now and then.
    if (++this.takes % SWEEP_EVERY === 0) {
      await this.query('DELETE FROM batchkit_leases WHERE key LIKE $1 AND expires_at <= $2', [
        `${likePrefix(this.prefix)}%`,
        now,
      ])
    }
    const rows = await this.query(
      `INSERT INTO batchkit_leases (key, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
       WHERE batchkit_leases.holder = EXCLUDED.holder OR batchkit_leases.expires_at <= $4
       RETURNING holder`,
      [this.prefix + key, holder, now + ttlMs, now],
    )
    return rows.length === 1
  }

  async release(key: string, holder: string): Promise<void> {
    await this.init()
    await this.query('DELETE FROM batchkit_leases WHERE key = $1 AND holder = $2', [this.prefix + key, holder])
  }
}

/** A prefix as a LIKE pattern that matches it literally. */
function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`)
}
