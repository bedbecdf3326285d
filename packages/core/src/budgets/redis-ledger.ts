import type { RedisLikeClient } from '../store/redis-index.js'
import type { BudgetLedger, LedgerTotals, Reservation } from './ledger.js'

// One hash per ledger: `spent`, `reserved`, and `hold:<id>` per unsettled hold. Amounts are integer
// strings; they go back to Redis as the strings they came as (Lua would print a large number as 1e+15).
const RESERVE = `
local spent = redis.call('HGET', KEYS[1], 'spent') or '0'
local reserved = redis.call('HGET', KEYS[1], 'reserved') or '0'
if redis.call('HEXISTS', KEYS[1], 'hold:' .. ARGV[1]) == 1 then return {1, spent, reserved} end
if ARGV[3] ~= '' and tonumber(spent) + tonumber(reserved) + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return {0, spent, reserved}
end
redis.call('HSET', KEYS[1], 'hold:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[2])
return {1, spent, redis.call('HGET', KEYS[1], 'reserved')}`
const SETTLE = `
local held = redis.call('HGET', KEYS[1], 'hold:' .. ARGV[1])
if not held then return 0 end
redis.call('HDEL', KEYS[1], 'hold:' .. ARGV[1])
redis.call('HINCRBY', KEYS[1], 'reserved', '-' .. held)
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
return 1`

/** A ledger as Redis hashes, changed only by scripts, which Redis runs atomically. */
export class RedisLedger implements BudgetLedger {
  readonly shared = true

  constructor(
    private readonly client: () => Promise<RedisLikeClient>,
    private readonly prefix: string,
  ) {}

  async reserve(ledger: string, holdId: string, micros: number, limitMicros: number | null): Promise<Reservation> {
    const args = [holdId, String(micros), limitMicros === null ? '' : String(limitMicros)]
    const [held, spent, reserved] = (await (
      await this.client()
    ).sendCommand(['EVAL', RESERVE, '1', this.prefix + ledger, ...args])) as [unknown, unknown, unknown]
    return { held: Number(held) === 1, spentMicros: Number(spent), reservedMicros: Number(reserved) }
  }

  async settle(ledger: string, holdId: string, spentMicros: number): Promise<void> {
    await (await this.client()).sendCommand(['EVAL', SETTLE, '1', this.prefix + ledger, holdId, String(spentMicros)])
  }

  async read(ledger: string): Promise<LedgerTotals> {
    const [spent, reserved] = (await (
      await this.client()
    ).sendCommand(['HMGET', this.prefix + ledger, 'spent', 'reserved'])) as [unknown, unknown]
    return { spentMicros: Number(spent ?? 0), reservedMicros: Number(reserved ?? 0) }
  }
}
