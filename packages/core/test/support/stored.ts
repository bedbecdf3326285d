import type { Keyv } from 'keyv'

/** A value batchkit stored under `key`, parsed from the JSON text it keeps in Keyv. */
export async function readStored<T>(keyv: Keyv, key: string): Promise<T | undefined> {
  const text = await keyv.get<string>(key)
  return text === undefined ? undefined : (JSON.parse(text) as T)
}

/** Stores `value` under `key` as batchkit would: as JSON text. */
export async function writeStored(keyv: Keyv, key: string, value: unknown): Promise<void> {
  await keyv.set(key, JSON.stringify(value))
}
