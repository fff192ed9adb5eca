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

/**
 * The queue's rate limit held across every engine of the queue: each engine starts jobs
 * within a share of `max` fixed by the partitions it owns, so the sum over engines never
 * passes `max` in any window of `duration` ms — without the engines talking to each other.
 *
 * - Partition p's share is ⌊max / total⌋, plus one for the first `max mod total` partitions:
 *   the shares add up to `max`. An engine's share is the sum over the partitions it owns.
 * - When `max` is smaller than the partition count some partitions' share is 0, and an engine
 *   owning only those would never start a job. Then (unless this engine owns every
 *   partition, and is alone) the shares rotate: time is cut into epochs of 2×duration; in
 *   epoch k the `max` tokens belong to partitions (k·max + j) mod total, j < max, and are
 *   usable in the epoch's first `duration` ms only — so no window of `duration` ms sees two
 *   epochs' tokens. This halves the rate, the price of never passing `max`.
 * - Under-use: an engine with no waiting jobs leaves its share unused (the others do not
 *   borrow it); with uneven load the queue starts fewer than `max` per window.
 * - Assumes the engines' clocks agree (NTP): the rotation's epochs are wall-clock times.
 * - During a rebalance a partition's share moves with it; the starts its old owner made in
 *   the last window are not known to the new owner, so one window can see that share twice.
 */
export class QueueShareLimiter {
  /** Start times, oldest first, of the last `max` starts of this engine. */
  private readonly recent: Array<number> = []
  private owned: ReadonlySet<number> = new Set()
  private total = 1
  private epoch = -1
  private usedInEpoch = 0

  constructor(private readonly limit: RateLimit) {}

  /** The partitions this engine owns now, of `total`. */
  setShare(owned: ReadonlyArray<number>, total: number): void {
    this.owned = new Set(owned)
    this.total = Math.max(1, total)
  }

  /** This engine's starts allowed per window (rotation aside). */
  get share(): number {
    const { max } = this.limit
    let share = 0
    for (const p of this.owned) share += Math.floor(max / this.total) + (p < max % this.total ? 1 : 0)
    return share
  }

  private rotating(): boolean {
    return this.limit.max < this.total && this.owned.size < this.total
  }

  /** 0 when a job may start now, else the ms to wait. */
  waitMs(now: number): number {
    const { duration } = this.limit
    if (this.rotating()) {
      const length = 2 * duration
      const k = Math.floor(now / length)
      const next = (k + 1) * length - now
      if (now - k * length >= duration) return next
      if (k !== this.epoch) {
        this.epoch = k
        this.usedInEpoch = 0
      }
      return this.usedInEpoch < this.tokens(k) ? 0 : next
    }
    const share = this.share
    if (share === 0) return duration
    const inWindow = this.recent.filter((t) => t > now - duration)
    if (inWindow.length < share) return 0
    // wait until enough of the window's starts have aged out
    return Math.max(1, inWindow[inWindow.length - share]! + duration - now)
  }

  /** Records a start; call only when `waitMs(now) === 0`. */
  record(now: number): void {
    this.recent.push(now)
    if (this.recent.length > this.limit.max) this.recent.shift()
    if (this.rotating()) this.usedInEpoch++
  }

  /** The tokens of epoch `k` that fall on partitions this engine owns. */
  private tokens(k: number): number {
    let n = 0
    for (let j = 0; j < this.limit.max; j++) if (this.owned.has((k * this.limit.max + j) % this.total)) n++
    return n
  }
}
