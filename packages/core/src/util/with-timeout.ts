/**
 * Runs user code (a callback, a hook) and settles with it, or rejects with `message` after
 * `timeoutMs`, whichever comes first; a synchronous throw is a rejection. The timer never keeps
 * the process alive. The work itself is not stopped: it may still finish after the timeout.
 */
export function withTimeout<T>(work: () => T | Promise<T>, timeoutMs: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), timeoutMs)
    timer.unref()
    Promise.resolve()
      .then(work)
      .then(resolve, reject)
      .finally(() => clearTimeout(timer))
  })
}
