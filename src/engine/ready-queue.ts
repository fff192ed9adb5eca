/**
 * The ready queue of one partition: higher priority first, FIFO among equal priorities.
 *
 * A binary heap ordered by (priority desc, arrival asc). An id is held at most once; the
 * actor re-checks a popped job's state, so a job that left `waiting` while queued (paused,
 * say) is skipped rather than searched for and removed.
 */
interface Entry {
  readonly id: string
  readonly priority: number
  readonly arrival: number
}

const before = (a: Entry, b: Entry) => a.priority > b.priority || (a.priority === b.priority && a.arrival < b.arrival)

export class ReadyQueue {
  private readonly heap: Array<Entry> = []
  private readonly members = new Set<string>()
  private arrivals = 0

  get size(): number {
    return this.heap.length
  }

  /** Adds `id` unless it is already queued. */
  push(id: string, priority: number): void {
    if (this.members.has(id)) return
    this.members.add(id)
    const heap = this.heap
    heap.push({ id, priority, arrival: this.arrivals++ })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  /** The id that should run next, left in place. */
  peek(): string | undefined {
    return this.heap[0]?.id
  }

  /** Removes and returns the id that should run next. */
  pop(): string | undefined {
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
        if (l < heap.length && before(heap[l]!, heap[best]!)) best = l
        if (r < heap.length && before(heap[r]!, heap[best]!)) best = r
        if (best === i) break
        ;[heap[i], heap[best]] = [heap[best]!, heap[i]!]
        i = best
      }
    }
    this.members.delete(top.id)
    return top.id
  }
}
