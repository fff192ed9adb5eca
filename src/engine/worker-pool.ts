/**
 * The process-wide scheduler of a queue's engine: concurrency permits and the start-rate
 * limiter shared by every partition this process owns, and the choice of which job starts
 * next among all of them.
 *
 * Invariants:
 * - `running <= concurrency` at all times; a permit is taken before a job's `JobStarted`
 *   is decided and given back when its outcome is decided.
 * - The rate limit holds for the queue, across engines: this engine starts within the share
 *   of the partitions it owns (`setShare`, see QueueShareLimiter).
 * - Each start goes to the best head among the partitions' ready queues (`runsBefore`:
 *   priority, then arrival in this process), so priority order holds across partitions,
 *   not only within one.
 * - Starting is batched: `schedule()` asks for one pass on the next macrotask, so a batch of
 *   commands or a burst of completions is decided before the choice is made.
 * - While a hold is in force (a queue-wide resume still travelling through the partitions),
 *   nothing starts; a hold expires by itself after its `maxMs`.
 */
import { QueueShareLimiter, type RateLimit } from "./limiter.ts"
import { type ReadyEntry, runsBefore } from "./ready-queue.ts"

/** A partition's side of scheduling: its next startable job, and starting it. */
export interface ReadySource {
  /** The job this partition would start next, or undefined (none ready, paused, stopped). */
  readonly head: () => ReadyEntry | undefined
  /**
   * Starts the job `head()` returned; the pool has taken its permit. `now` is the time the
   * rate limiter counted the start at: the JobStarted event carries it, so the log's start
   * times keep the limit exactly (a later clock reading could crowd two windows into one).
   */
  readonly startHead: (now: number) => void
}

export class WorkerPool {
  private running = 0
  private arrivals = 0
  private readonly limiter: QueueShareLimiter | undefined
  private readonly sources = new Set<ReadySource>()
  private limiterTimer: NodeJS.Timeout | undefined
  private passQueued = false
  private hold: { readonly stillHolding: () => boolean; readonly until: number } | undefined
  private holdTimer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(
    readonly concurrency: number,
    limit: RateLimit | undefined
  ) {
    this.limiter = limit === undefined ? undefined : new QueueShareLimiter(limit)
  }

  get active(): number {
    return this.running
  }

  /** Arrival stamps shared by every partition's ready queue (FIFO across partitions). */
  readonly nextArrival = (): number => this.arrivals++

  /** Registers a partition; returns its deregistration. */
  register(source: ReadySource): () => void {
    this.sources.add(source)
    return () => this.sources.delete(source)
  }

  /** Asks for a scheduling pass soon (coalesced: one pass per macrotask). */
  schedule(): void {
    if (this.passQueued || this.stopped) return
    this.passQueued = true
    setImmediate(this.pass)
  }

  /**
   * The partitions this engine owns now, of `total`: the rate limit's share follows them
   * (see QueueShareLimiter). A pass follows, as the share may have grown.
   */
  setShare(owned: ReadonlyArray<number>, total: number): void {
    if (this.limiter === undefined) return
    this.limiter.setShare(owned, total)
    clearTimeout(this.limiterTimer)
    this.limiterTimer = undefined
    this.schedule()
  }

  /** Gives back a permit; the freed slot is offered on the next pass. */
  release(): void {
    this.running--
    this.schedule()
  }

  /**
   * Holds every start while `stillHolding()` is true, for at most `maxMs`; a later hold
   * replaces an earlier one. Callers schedule a pass when the condition may have changed.
   */
  holdWhile(stillHolding: () => boolean, maxMs: number): void {
    this.hold = { stillHolding, until: Date.now() + maxMs }
    clearTimeout(this.holdTimer)
    this.holdTimer = setTimeout(() => this.schedule(), maxMs)
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.limiterTimer)
    clearTimeout(this.holdTimer)
    this.limiterTimer = undefined
  }

  private readonly pass = (): void => {
    this.passQueued = false
    if (this.stopped || this.holding()) return
    for (;;) {
      let best: ReadySource | undefined
      let bestHead: ReadyEntry | undefined
      for (const source of this.sources) {
        const head = source.head()
        if (head !== undefined && (bestHead === undefined || runsBefore(head, bestHead))) {
          best = source
          bestHead = head
        }
      }
      const now = Date.now()
      if (best === undefined || !this.tryAcquire(now)) return
      best.startHead(now)
    }
  }

  private holding(): boolean {
    if (this.hold === undefined) return false
    if (Date.now() < this.hold.until && this.hold.stillHolding()) return true
    this.hold = undefined
    clearTimeout(this.holdTimer)
    return false
  }

  /**
   * Takes a permit if one is free and the rate limit allows a start now. When only the
   * rate limit stands in the way, arms one timer for the moment it allows.
   */
  private tryAcquire(now: number): boolean {
    if (this.running >= this.concurrency) return false
    if (this.limiter !== undefined) {
      const wait = this.limiter.waitMs(now)
      if (wait > 0) {
        if (this.limiterTimer === undefined)
          this.limiterTimer = setTimeout(() => {
            this.limiterTimer = undefined
            this.schedule()
          }, wait)
        return false
      }
      this.limiter.record(now)
    }
    this.running++
    return true
  }
}
