import type { FailNextOptions } from './types.js'

interface FaultRule<T extends FailNextOptions> {
  options: T
  remaining: number
  pathPrefix: string | undefined
  method: string | undefined
}

/** Injected failures, consumed in the order they were registered. */
export class Faults<T extends FailNextOptions = FailNextOptions> {
  private readonly rules: FaultRule<T>[] = []

  add(opts: T): void {
    const times = opts.times ?? 1
    if (!Number.isInteger(times) || times < 1)
      throw new RangeError(`failNext: times must be a positive integer, got ${times}`)
    if (typeof opts.status === 'number' && (!Number.isInteger(opts.status) || opts.status < 400 || opts.status > 599)) {
      throw new RangeError(`failNext: status must be an HTTP error status (400..599), got ${opts.status}`)
    }
    this.rules.push({
      options: opts,
      remaining: times,
      pathPrefix: opts.pathPrefix,
      method: opts.method?.toUpperCase(),
    })
  }

  /** The failure this request must suffer, if any; consumes one use of the first matching rule. */
  take(method: string, path: string): FailNextOptions['status'] | undefined {
    return this.takeOptions(method, path)?.status
  }

  /** Like {@link take}, with everything the rule was registered with. */
  takeOptions(method: string, path: string): T | undefined {
    const index = this.rules.findIndex(
      (rule) =>
        (rule.method === undefined || rule.method === method) &&
        (rule.pathPrefix === undefined || path.startsWith(rule.pathPrefix)),
    )
    const rule = this.rules[index]
    if (!rule) return undefined
    rule.remaining--
    if (rule.remaining === 0) this.rules.splice(index, 1)
    return rule.options
  }
}
