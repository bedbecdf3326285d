import KeyvPostgres from '@keyv/postgres'
import KeyvRedis from '@keyv/redis'
import KeyvSqlite from '@keyv/sqlite'
import { Keyv } from 'keyv'

/**
 * A Keyv store from a connection URI: Redis, PostgreSQL, a SQLite file (`sqlite:///abs/path` or
 * `sqlite://relative/path`), or memory when there is none. SQLite is for one instance only.
 */
export function storeFromUri(uri: string | undefined): Keyv {
  if (uri === undefined) return new Keyv()
  const scheme = parse(uri).protocol
  if (scheme === 'redis:' || scheme === 'rediss:') return new Keyv(new KeyvRedis(uri), { namespace: 'batchkit' })
  if (scheme === 'postgres:' || scheme === 'postgresql:') {
    return new Keyv(new KeyvPostgres({ uri }), { namespace: 'batchkit' })
  }
  if (scheme === 'sqlite:') return new Keyv(new KeyvSqlite({ uri }), { namespace: 'batchkit' })
  throw new Error(
    `BATCHKIT_STORE: unsupported store '${scheme}'; use redis://, rediss://, postgres://, postgresql:// or sqlite://`,
  )
}

/** A store URI with any password hidden, for logs. */
export function describeStore(uri: string | undefined): string {
  if (uri === undefined) return 'in memory (lost on restart)'
  const url = parse(uri)
  if (url.password) url.password = '***'
  return url.toString()
}

/** Parses a URI without letting Node's error repeat it, password and all. */
function parse(uri: string): URL {
  try {
    return new URL(uri)
  } catch {
    throw new Error('BATCHKIT_STORE is not a valid URI (its value is not shown: it may hold a password)')
  }
}
