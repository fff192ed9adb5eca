/**
 * The process-wide budget of a queue's engine: concurrency permits shared by every
 * partition this process owns, and the start-rate limiter.
 *
 * Invariant: `running <= concurrency` at all times; a permit is taken before a job's
 * `JobStarted` is decided and given back when its outcome is decided. When a permit or a
 * rate-limit slot frees up, every partition is asked to pump, so work never waits on a
 * partition that happens to be idle.
 */
import { type RateLimit, SlidingWindowLimiter } from "./limiter.ts"

export class WorkerPool {
  private running = 0
  private readonly limiter: SlidingWindowLimiter | undefined
  private readonly pumps = new Set<() => void>()
  private limiterTimer: NodeJS.Timeout | undefined

  constructor(
    readonly concurrency: number,
    limit: RateLimit | undefined
  ) {
    this.limiter = limit === undefined ? undefined : new SlidingWindowLimiter(limit)
  }

  get active(): number {
    return this.running
  }

  /** Registers a partition's pump; returns its deregistration. */
  register(pump: () => void): () => void {
    this.pumps.add(pump)
    return () => this.pumps.delete(pump)
  }

  /**
   * Takes a permit if one is free and the rate limit allows a start now. When only the
   * rate limit stands in the way, arms one timer to pump again when it allows.
   */
  tryAcquire(now: number): boolean {
    if (this.running >= this.concurrency) return false
    if (this.limiter !== undefined) {
      const wait = this.limiter.waitMs(now)
      if (wait > 0) {
        if (this.limiterTimer === undefined)
          this.limiterTimer = setTimeout(() => {
            this.limiterTimer = undefined
            this.pumpAll()
          }, wait)
        return false
      }
      this.limiter.record(now)
    }
    this.running++
    return true
  }

  release(): void {
    this.running--
    this.pumpAll()
  }

  pumpAll(): void {
    for (const pump of this.pumps) pump()
  }

  stop(): void {
    clearTimeout(this.limiterTimer)
    this.limiterTimer = undefined
  }
}
