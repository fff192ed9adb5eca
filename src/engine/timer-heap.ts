/**
 * Delayed jobs of one partition: a min-heap on `runAt` with a single armed timer.
 *
 * Invariant: at most one Node timer is armed, for the earliest `runAt`; `onDue` receives
 * every id whose time has come, in `runAt` order. Stale entries (a job rescheduled or no
 * longer delayed) are filtered by the owner.
 */
import { BinaryHeap } from "./binary-heap.ts"

interface Entry {
  readonly id: string
  readonly runAt: number
}

export class TimerHeap {
  private readonly heap = new BinaryHeap<Entry>((a, b) => a.runAt < b.runAt)
  private timer: NodeJS.Timeout | undefined
  private armedFor = Infinity
  private stopped = false

  constructor(
    private readonly onDue: (ids: ReadonlyArray<string>) => void,
    private readonly now: () => number = Date.now
  ) {}

  get size(): number {
    return this.heap.size
  }

  schedule(id: string, runAt: number): void {
    this.heap.push({ id, runAt })
    this.arm()
  }

  /** Stops the timer for good (partition revoked or engine closed). */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm(): void {
    const next = this.heap.peek()
    if (this.stopped || next === undefined || next.runAt >= this.armedFor) return
    clearTimeout(this.timer)
    this.armedFor = next.runAt
    // Node clamps delays above 2^31-1 ms; re-arming on fire handles far-future jobs.
    const wait = Math.min(Math.max(0, next.runAt - this.now()), 2_147_483_647)
    this.timer = setTimeout(() => this.fire(), wait)
  }

  private fire(): void {
    this.timer = undefined
    this.armedFor = Infinity
    const now = this.now()
    const due: Array<string> = []
    for (let next = this.heap.peek(); next !== undefined && next.runAt <= now; next = this.heap.peek()) {
      this.heap.pop()
      due.push(next.id)
    }
    if (due.length > 0) this.onDue(due)
    this.arm()
  }
}
