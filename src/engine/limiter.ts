/**
 * The rate limit of job starts as a value: in any interval of `duration` ms at most `max`
 * jobs start. A sliding window over the last `max` start times — never a burst of 2×max at
 * a window edge, unlike fixed windows.
 */
export interface RateLimit {
  readonly max: number
  readonly duration: number
}

export class SlidingWindowLimiter {
  /** Ring of the last `max` start times; `starts[next]` is the oldest once full. */
  private readonly starts: Array<number>
  private next = 0
  private filled = 0

  constructor(private readonly limit: RateLimit) {
    this.starts = new Array<number>(limit.max).fill(0)
  }

  /** 0 when a job may start now, else the ms to wait. */
  waitMs(now: number): number {
    if (this.filled < this.limit.max) return 0
    const oldest = this.starts[this.next]!
    return Math.max(0, oldest + this.limit.duration - now)
  }

  /** Records a start; call only when `waitMs(now) === 0`. */
  record(now: number): void {
    this.starts[this.next] = now
    this.next = (this.next + 1) % this.limit.max
    if (this.filled < this.limit.max) this.filled++
  }
}
