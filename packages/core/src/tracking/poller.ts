/**
 * Runs `work` every `intervalMs`, never two runs at once, on timers that do not keep the process
 * alive. `poke()` asks for a run soon; `stop()` waits for a run under way.
 */
export class Poller {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = true
  private poked = false

  constructor(
    private readonly work: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule(0)
  }

  /** Runs again as soon as the current run (if any) ends. */
  poke(): void {
    if (this.stopped) return
    if (this.running) this.poked = true
    else this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.run(), delayMs)
    this.timer.unref()
  }

  private run(): void {
    if (this.stopped || this.running) return
    this.running = this.work()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined
        if (this.stopped) return
        const again = this.poked
        this.poked = false
        this.schedule(again ? 0 : this.intervalMs)
      })
  }
}
