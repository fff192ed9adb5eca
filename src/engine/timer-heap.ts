/**
 * Delayed jobs of one partition: a min-heap on `runAt` with a single armed timer.
 *
 * Invariant: at most one Node timer is armed, for the earliest `runAt`; `onDue` receives
 * every id whose time has come, in `runAt` order. Stale entries (a job rescheduled or no
 * longer delayed) are filtered by the owner.
 */
interface Entry {
  readonly id: string
  readonly runAt: number
}

export class TimerHeap {
  private readonly heap: Array<Entry> = []
  private timer: NodeJS.Timeout | undefined
  private armedFor = Infinity
  private stopped = false

  constructor(
    private readonly onDue: (ids: ReadonlyArray<string>) => void,
    private readonly now: () => number = Date.now
  ) {}

  get size(): number {
    return this.heap.length
  }

  schedule(id: string, runAt: number): void {
    const heap = this.heap
    heap.push({ id, runAt })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.runAt <= heap[i]!.runAt) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
    this.arm()
  }

  /** Stops the timer for good (partition revoked or engine closed). */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private popMin(): Entry | undefined {
    const heap = this.heap
    const top = heap[0]
    if (top === undefined) return undefined
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let best = i
        if (l < heap.length && heap[l]!.runAt < heap[best]!.runAt) best = l
        if (r < heap.length && heap[r]!.runAt < heap[best]!.runAt) best = r
        if (best === i) break
        ;[heap[i], heap[best]] = [heap[best]!, heap[i]!]
        i = best
      }
    }
    return top
  }

  private arm(): void {
    const next = this.heap[0]
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
    while (this.heap.length > 0 && this.heap[0]!.runAt <= now) due.push(this.popMin()!.id)
    if (due.length > 0) this.onDue(due)
    this.arm()
  }
}
