/**
 * The ready queue of one partition: higher priority first; among equal priorities, the job
 * that came due first (its `runAt`: the add's time plus its delay, or a retry's due time),
 * then the one this process queued first.
 *
 * Both keys are comparable across partitions (`runAt` comes from the log, arrival numbers
 * from the engine's pool), so comparing the heads of two partitions' queues with
 * `runsBefore` picks the job the whole engine should start next, however the partitions'
 * records happened to interleave when they were read. An id is held at most once; the
 * actor re-checks a popped job's state, so a job that left `waiting` while queued is
 * skipped rather than searched for and removed.
 */
import { BinaryHeap } from "./binary-heap.ts"

/** What the queue needs of a job. */
export interface ReadyJob {
  readonly id: string
  readonly priority: number
  readonly runAt: number
}

export interface ReadyEntry extends ReadyJob {
  readonly arrival: number
}

/** Higher priority first; among equal priorities, the earlier due time, then arrival. */
export const runsBefore = (a: ReadyEntry, b: ReadyEntry): boolean =>
  a.priority > b.priority ||
  (a.priority === b.priority && (a.runAt < b.runAt || (a.runAt === b.runAt && a.arrival < b.arrival)))

export class ReadyQueue {
  private readonly heap = new BinaryHeap<ReadyEntry>(runsBefore)
  private readonly members = new Set<string>()

  constructor(private readonly nextArrival: () => number) {}

  get size(): number {
    return this.heap.size
  }

  /** Adds the job unless it is already queued. */
  push(job: ReadyJob): void {
    if (this.members.has(job.id)) return
    this.members.add(job.id)
    this.heap.push({ id: job.id, priority: job.priority, runAt: job.runAt, arrival: this.nextArrival() })
  }

  /** The entry that should run next, left in place. */
  peek(): ReadyEntry | undefined {
    return this.heap.peek()
  }

  /** Removes and returns the id that should run next. */
  pop(): string | undefined {
    const top = this.heap.pop()
    if (top === undefined) return undefined
    this.members.delete(top.id)
    return top.id
  }
}
