/**
 * The read model of one queue: every job's view, the counts by state, the pause flag.
 *
 * Invariants:
 * - Only the pure reducers (`evolveJobView`, `applyQueueEventToView`, `evolveStats`) decide
 *   what changes; this class only keeps their results in its own maps and indexes.
 * - `byState[s]` holds exactly the ids of the views in state `s` for every state but
 *   `completed`, and `stats` counts every state: every stored change goes through `store`,
 *   which maintains both. Completed jobs are the bulk of a queue and nothing hot lists them,
 *   so they are not indexed (a third less replay CPU); `list("completed")` scans the views.
 * - Pause and resume touch only the waiting resp. paused jobs (through `byState`). A job in
 *   another state keeps its pause flag stale until it is read or has an event; it is synced
 *   then (`syncQueueFlag`), which equals having applied the queue event at once, because in
 *   those states a queue event only sets the flag.
 * - Idempotent: a job event with `seq <= view.seq`, or a queue event with
 *   `seq <= queueSeq`, changes nothing and returns no change.
 * - Fed several partitions, the queue events of each carry their own seqs (every owner
 *   appends its own pause/resume, all from the same broadcast commands, so the same seq
 *   means the same fact): the projection follows the furthest partition.
 */
import { isJobEvent, type EventEnvelope, type JobStateName, type QueueEventBody } from "../machines/schema.ts"
import { applyQueueEventToView, evolveJobView, isQueueBody, normalizeView, syncQueueFlag, type JobView } from "./job-view.ts"
import { countStats, emptyStats, evolveStats, type QueueStats } from "./stats.ts"

/** Bump when a reducer changes meaning: checkpoints of another version are rebuilt. */
// 2: job views carry the per-job `timeout` (checkpoints of version 1 lack it).
export const PROJECTION_VERSION = 2

/** One job view changed by an event. */
export interface ViewChange {
  readonly before: JobView | undefined
  readonly after: JobView
}

/** The plain-JSON form of a projection, for checkpoints. */
export interface QueueProjectionSnapshot {
  readonly version: number
  readonly queuePaused: boolean
  readonly queueSeq: number
  readonly jobs: ReadonlyArray<JobView>
}

const NO_CHANGE: ReadonlyArray<ViewChange> = Object.freeze([])
type IndexedState = Exclude<JobStateName, "completed">
const indexed = (s: JobStateName): s is IndexedState => s !== "completed"

/** The read model of one queue, fed event by event in log order. */
export class QueueProjection {
  private readonly jobs = new Map<string, JobView>()
  private readonly byState: Record<IndexedState, Set<string>> = {
    waiting: new Set(),
    delayed: new Set(),
    active: new Set(),
    failed: new Set(),
    paused: new Set()
  }
  private counts: QueueStats = emptyStats
  private paused = false
  private lastQueueSeq = -1

  /** True while the queue is paused (as of the last queue event applied). */
  get queuePaused(): boolean {
    return this.paused
  }
  /** The seq of the last queue event applied (-1 before any). */
  get queueSeq(): number {
    return this.lastQueueSeq
  }
  /** How many jobs the queue has. */
  get size(): number {
    return this.jobs.size
  }

  /** Applies one event; returns the views it changed (none for a duplicate or refused event). */
  apply(e: EventEnvelope): ReadonlyArray<ViewChange> {
    const body = e.body
    if (isQueueBody(body)) return e.jobId === null ? this.applyQueueEvent(e.seq, e.time, body) : NO_CHANGE
    if (!isJobEvent(e)) return NO_CHANGE // a job event without a job: malformed, ignored
    const stored = this.jobs.get(e.jobId)
    const before = stored === undefined ? undefined : this.synced(stored)
    const after = evolveJobView(before, e)
    if (after === undefined || after === before) return NO_CHANGE
    this.store(before, after)
    return [{ before, after }]
  }

  /** The view of a job, or `undefined` if the queue has no such job. */
  get(id: string): JobView | undefined {
    const stored = this.jobs.get(id)
    return stored === undefined ? undefined : this.synced(stored)
  }

  /**
   * The views in `state` (all views without it), in the order they entered that state
   * (`completed`: in order of creation, by a scan of all views).
   */
  list(state?: JobStateName): ReadonlyArray<JobView> {
    const out: Array<JobView> = []
    if (state === undefined || !indexed(state)) {
      for (const v of this.jobs.values()) if (state === undefined || v.state === state) out.push(this.synced(v))
    } else
      for (const id of this.byState[state]) {
        const v = this.synced(this.jobs.get(id)!)
        if (v.state === state) out.push(v) // a sync may move a job whose JobAdded disagreed with the queue
      }
    return out
  }

  /** The number of jobs in each state. */
  stats(): QueueStats {
    return this.counts
  }

  /** The plain-JSON form (views with a stale pause flag are synced first). */
  toSnapshot(): QueueProjectionSnapshot {
    return { version: PROJECTION_VERSION, queuePaused: this.paused, queueSeq: this.lastQueueSeq, jobs: this.list() }
  }

  /** A projection from a snapshot; `undefined` when its version is not ours (rebuild from the log). */
  static fromSnapshot(snapshot: QueueProjectionSnapshot): QueueProjection | undefined {
    if (snapshot.version !== PROJECTION_VERSION) return undefined
    const p = new QueueProjection()
    p.paused = snapshot.queuePaused
    p.lastQueueSeq = snapshot.queueSeq
    for (const v of snapshot.jobs) {
      const view = normalizeView(v)
      p.jobs.set(view.id, view)
      if (indexed(view.state)) p.byState[view.state].add(view.id)
    }
    p.counts = countStats(snapshot.jobs.map((v) => v.state))
    return p
  }

  private applyQueueEvent(seq: number, time: number, body: QueueEventBody): ReadonlyArray<ViewChange> {
    if (seq <= this.lastQueueSeq) return NO_CHANGE
    this.lastQueueSeq = seq
    const pausing = body._tag === "QueuePaused"
    if (pausing === this.paused) return NO_CHANGE
    this.paused = pausing
    // only waiting (on pause) or paused (on resume) jobs change state; see the invariants
    const moving = [...this.byState[pausing ? "waiting" : "paused"]]
    const changes: Array<ViewChange> = []
    for (const id of moving) {
      const before = this.jobs.get(id)!
      const after = applyQueueEventToView(before, body, time)
      if (after === before) continue
      this.store(before, after)
      changes.push({ before, after })
    }
    return changes
  }

  /** The view with the queue's pause flag; stored back so it is synced once. */
  private synced(view: JobView): JobView {
    if (view.queuePaused === this.paused) return view
    const next = syncQueueFlag(view, this.paused)
    this.store(view, next)
    return next
  }

  private store(before: JobView | undefined, after: JobView): void {
    this.jobs.set(after.id, after)
    if (before?.state === after.state) return
    if (before !== undefined && indexed(before.state)) this.byState[before.state].delete(after.id)
    if (indexed(after.state)) this.byState[after.state].add(after.id)
    this.counts = evolveStats(this.counts, before?.state, after.state)
  }
}
