/** The Map operations a {@link BreakableMap} can fail. */
export type MapOperation = 'get' | 'set' | 'delete'

/**
 * A Map whose entries under keys matching `failing.key` throw on the named operation, for a Keyv
 * store (through `keyvOverAdapter`) that fails exactly where a test wants it to.
 */
export class BreakableMap extends Map<string, unknown> {
  failing: { op: MapOperation; key: RegExp } | undefined
  override get(key: string) {
    this.check('get', key)
    return super.get(key)
  }
  override set(key: string, value: unknown) {
    this.check('set', key)
    return super.set(key, value)
  }
  override delete(key: string) {
    this.check('delete', key)
    return super.delete(key)
  }
  private check(op: MapOperation, key: string) {
    if (this.failing?.op === op && this.failing.key.test(key)) throw new Error(`store down (${op} ${key})`)
  }
}
