/**
 * The state of one partition of a queue: the one place where an event becomes a change.
 *
 * The engine and every reader hold one per partition. Applying an event steps the job machine
 * once (`advanceView`) and returns, per job it moved, the view before and after and the
 * intents of the state entered: the engine carries out the intents, readers announce the
 * changes. This state is what a snapshot holds.
 *
 * Invariants:
 * - Only the pure reducers of `job-view.ts` and `stats.ts` decide what changes; this class
 *   keeps their results in its maps and indexes (the counts through `moveCount`, in a tally
 *   it owns and never hands out: `stats()` is a frozen copy).
 * - Memory follows live jobs, not history: every job that is waiting, delayed, active or
 *   paused is held; finished ones only within `retention` (see `retention.ts`). `stats()`
 *   stays exact: a job leaving memory leaves the counts as they are.
 * - `byState[s]` holds exactly the ids of the held views in state `s`, in the order they
 *   entered it (for completed jobs only when their retention is bounded: with nothing to
 *   trim, a full replay skips that index, a third of its CPU).
 * - Pause and resume touch only the waiting resp. paused jobs. A job in another state keeps
 *   its pause flag stale until it is read or has an event; it is synced then (`synced`),
 *   which equals having applied the queue event at once, because in those states a queue
 *   event only sets the flag.
 * - Idempotent: a job event with `seq <= view.seq`, or a queue event with `seq <= queueSeq`,
 *   changes nothing.
 * - It holds the partition's schedules too (a schedule belongs to the partition of its id):
 *   what each one is, how many jobs it added and its last tick, so an engine taking over
 *   the partition goes on from there.
 * - Deterministic: the same events under the same retention give the same state, and
 *   `fromSnapshot(s.toSnapshot())` fed the rest of the events equals `s` fed them all.
 */
import {
  isJobEvent,
  isScheduleBody,
  type EventEnvelope,
  type JobStateName,
  type QueueEventBody,
  type ScheduleEventBody,
  type ScheduleSpec
} from "../machines/schema.ts"
import type { JobIntent } from "../machines/job-machine.ts"
import { advanceView, advanceViewByQueueEvent, isFinished, isQueueBody, normalizeView, syncQueueFlag, type JobView } from "./job-view.ts"
import { boundFor, DEFAULT_RETENTION, stays, type Retention } from "./retention.ts"
import { emptyStats, moveCount, type QueueStats, type StatsTally } from "./stats.ts"

/** Bump when a reducer changes meaning: snapshots of another version are not restored (the log is replayed). */
// 3: one state per partition with retention (the queue projection of version 2 kept every job).
export const PARTITION_STATE_VERSION = 3

/** One job moved by an event: the view before (`undefined` for a new job), after, and the intents of the state entered. */
export interface Transition {
  readonly before: JobView | undefined
  readonly after: JobView
  readonly intents: ReadonlyArray<JobIntent>
}

/** The outcome of one event: the jobs it moved (none for a duplicate), or the machine's refusal. */
export type Applied = { readonly ok: true; readonly transitions: ReadonlyArray<Transition> } | { readonly ok: false; readonly reason: string }

/**
 * A schedule as its partition holds it. A removed one stays as a tombstone (`live: false`):
 * its seq and last tick go on if it is defined again, so its job ids stay unique.
 */
export interface ScheduleState {
  readonly spec: ScheduleSpec
  /** When its ticks count from (ScheduleUpserted's anchor). */
  readonly anchor: number
  /** The seq of its last event. */
  readonly seq: number
  /** Jobs added in its current life. */
  readonly count: number
  /** Its last tick, if any (in any life). */
  readonly lastTick?: number
  readonly live: boolean
}

/** The plain-JSON form of a partition's state. */
export interface PartitionSnapshot {
  readonly version: number
  readonly queuePaused: boolean
  readonly queueSeq: number
  readonly counts: QueueStats
  /** Every held view, in the order the jobs were first held. */
  readonly jobs: ReadonlyArray<JobView>
  /** The ids of each indexed state, in the order they entered it. */
  readonly order: { readonly [S in HeldState]?: ReadonlyArray<string> }
  /** Every schedule of the partition, tombstones included. */
  readonly schedules?: ReadonlyArray<ScheduleState>
}

/** The states of the jobs a partition holds (a removed job is held by none). */
type HeldState = Exclude<JobStateName, "removed">
const STATES: ReadonlyArray<HeldState> = ["waiting", "delayed", "active", "paused", "failed", "completed"]
const NONE: Applied = Object.freeze({ ok: true, transitions: Object.freeze([]) })

export class PartitionState {
  private readonly jobs = new Map<string, JobView>()
  private readonly byState: Record<HeldState, Set<string>> = {
    waiting: new Set(),
    delayed: new Set(),
    active: new Set(),
    completed: new Set(),
    failed: new Set(),
    paused: new Set()
  }
  /** Whether completed jobs are indexed: only when their retention trims them. */
  private readonly indexCompleted: boolean
  /** Owned here and changed in place (`moveCount`); never handed out: `stats()` gives a frozen copy. */
  private readonly counts: StatsTally = { ...emptyStats }
  /** The copy `stats()` last gave, while the counts have not changed since. */
  private countsCopy: QueueStats | undefined
  private paused = false
  private lastQueueSeq = -1
  private readonly scheduleMap = new Map<string, ScheduleState>()

  constructor(readonly retention: Retention = DEFAULT_RETENTION) {
    this.indexCompleted = retention.completed.count !== Infinity || retention.completed.age !== Infinity
  }

  /** True while the partition is paused (as of the last queue event applied). */
  get queuePaused(): boolean {
    return this.paused
  }
  /** The seq of the last queue event applied (-1 before any). */
  get queueSeq(): number {
    return this.lastQueueSeq
  }
  /** How many jobs are held (live ones and finished ones within retention). */
  get size(): number {
    return this.jobs.size
  }

  /** Applies one event: the jobs it moved, or why the machine refuses it. */
  /**
   * One event applied. `known`: the transition another PartitionState made of this very
   * envelope (an engine in this process, which decided it). It is taken as it is, without
   * stepping the machine, only when its `before` is this state's own view of the job, the
   * same object (or both none): the reducer is deterministic and views are immutable, so the
   * step would build an equal view. Sharing it keeps one view per job in the process, not one
   * per holder. Anything else (another view, a stale pause flag synced here) steps as usual.
   */
  apply(e: EventEnvelope, known?: Transition): Applied {
    const body = e.body
    if (isQueueBody(body)) return e.jobId === null ? this.applyQueueEvent(e.seq, e.time, body) : NONE
    if (isScheduleBody(body)) return e.jobId === null ? this.applyScheduleEvent(e.seq, body) : NONE
    if (!isJobEvent(e)) return { ok: false, reason: `${body._tag} without a job id` }
    const stored = this.jobs.get(e.jobId)
    if (stored === undefined && body._tag === "JobRemoved") return this.removeUnheld(body.from)
    const before = stored === undefined ? undefined : this.synced(stored)
    const advance =
      known !== undefined && known.before === before && known.after.seq === e.seq && known.after.id === e.jobId
        ? { kind: "changed" as const, before, after: known.after, intents: known.intents }
        : advanceView(before, e, this.paused)
    if (advance.kind === "same") return NONE
    if (advance.kind === "refused") return { ok: false, reason: advance.reason }
    const { after, intents } = advance
    let from = advance.before
    if (from !== undefined && isFinished(from.state) && body._tag === "JobAdded") {
      // a new life of the id: the old one stays counted where it ended, and leaves memory
      this.byState[from.state as HeldState].delete(from.id)
      from = undefined
    }
    this.store(from, after)
    if (isFinished(after.state)) this.trim(after.state as "completed" | "failed", after)
    return { ok: true, transitions: [{ before: from, after, intents }] }
  }

  /** The view of a job, or `undefined` if it is not held (unknown, or left memory by retention). */
  get(id: string): JobView | undefined {
    const stored = this.jobs.get(id)
    return stored === undefined ? undefined : this.synced(stored)
  }

  /** The held views in `state` (all of them without it), in the order they entered it. */
  list(state?: JobStateName): ReadonlyArray<JobView> {
    if (state === "removed") return []
    const out: Array<JobView> = []
    if (state === undefined || (state === "completed" && !this.indexCompleted)) {
      for (const v of this.jobs.values()) if (state === undefined || v.state === state) out.push(this.synced(v))
    } else
      for (const id of this.byState[state]) {
        const v = this.synced(this.jobs.get(id)!)
        if (v.state === state) out.push(v) // a sync may move a job whose JobAdded disagreed with the queue
      }
    return out
  }

  /** The number of jobs in each state, held or not. */
  stats(): QueueStats {
    return (this.countsCopy ??= Object.freeze({ ...this.counts }))
  }

  /**
   * Counts the finished jobs whose events an operator pruned from the log (see
   * `PrunedHistory`): call once, before applying a pruned partition's events from offset 0,
   * so `stats()` equals what a snapshot of the unpruned log would say.
   */
  countPruned(pruned: { readonly completed: number; readonly failed: number }): void {
    this.counts.completed += pruned.completed
    this.counts.failed += pruned.failed
    this.countsCopy = undefined
  }

  /** A schedule of this partition, a removed one included (`live: false`). */
  schedule(id: string): ScheduleState | undefined {
    return this.scheduleMap.get(id)
  }

  /** The partition's live schedules, in the order they were first defined. */
  schedules(): ReadonlyArray<ScheduleState> {
    return [...this.scheduleMap.values()].filter((s) => s.live)
  }

  /** Every schedule of the partition, removed ones (tombstones) included. */
  scheduleStates(): ReadonlyArray<ScheduleState> {
    return [...this.scheduleMap.values()]
  }

  /** The plain-JSON form (views with a stale pause flag are synced first). */
  toSnapshot(): PartitionSnapshot {
    const jobs = this.list()
    const order: Partial<Record<HeldState, ReadonlyArray<string>>> = {}
    for (const s of STATES) if (s !== "completed" || this.indexCompleted) order[s] = [...this.byState[s]]
    return {
      version: PARTITION_STATE_VERSION,
      queuePaused: this.paused,
      queueSeq: this.lastQueueSeq,
      counts: this.stats(),
      jobs,
      order,
      schedules: [...this.scheduleMap.values()]
    }
  }

  /**
   * The state a snapshot describes, under `retention`; `undefined` when the snapshot is of
   * another version or not well formed (the caller replays the log instead: a snapshot is
   * only a shortcut).
   */
  static fromSnapshot(snapshot: unknown, retention: Retention = DEFAULT_RETENTION): PartitionState | undefined {
    if (!wellFormed(snapshot)) return undefined
    const p = new PartitionState(retention)
    p.paused = snapshot.queuePaused
    p.lastQueueSeq = snapshot.queueSeq
    Object.assign(p.counts, emptyStats, snapshot.counts)
    for (const schedule of snapshot.schedules ?? []) p.scheduleMap.set(schedule.spec.id, schedule)
    for (const v of snapshot.jobs) {
      const view = normalizeView(v)
      p.jobs.set(view.id, view)
    }
    for (const s of STATES) {
      if (s === "completed" && !p.indexCompleted) continue
      // the writer's order where it kept one, else the jobs' order (a writer that kept every completed job)
      const ids = snapshot.order[s] ?? snapshot.jobs.filter((v) => v.state === s).map((v) => v.id)
      for (const id of ids) if (p.jobs.get(id)?.state === s) p.byState[s].add(id)
    }
    for (const v of p.jobs.values()) if ((v.state !== "completed" || p.indexCompleted) && !p.byState[v.state as HeldState].has(v.id)) return undefined
    // a reader whose retention is tighter than the writer's trims at once
    for (const s of ["completed", "failed"] as const) {
      const newest = [...p.byState[s]].at(-1)
      if (newest !== undefined) p.trim(s, p.jobs.get(newest)!)
    }
    return p
  }

  private applyScheduleEvent(seq: number, body: ScheduleEventBody): Applied {
    const id = body._tag === "ScheduleUpserted" ? body.schedule.id : body.id
    const known = this.scheduleMap.get(id)
    if (known !== undefined && seq <= known.seq) return NONE
    switch (body._tag) {
      case "ScheduleUpserted": {
        // its count goes on across updates, and starts again only when it is defined anew
        const count = known?.live === true ? known.count : 0
        const next: ScheduleState = { spec: body.schedule, anchor: body.anchor, seq, count, live: true }
        this.scheduleMap.set(id, known?.lastTick === undefined ? next : { ...next, lastTick: known.lastTick })
        return NONE
      }
      case "ScheduleRemoved":
        if (known === undefined || !known.live) return { ok: false, reason: `ScheduleRemoved of unknown schedule '${id}'` }
        this.scheduleMap.set(id, { ...known, seq, live: false })
        return NONE
      case "ScheduleTicked":
        if (known === undefined || !known.live) return { ok: false, reason: `ScheduleTicked of unknown schedule '${id}'` }
        this.scheduleMap.set(id, { ...known, seq, count: body.count, lastTick: body.tick })
        return NONE
    }
  }

  private applyQueueEvent(seq: number, time: number, body: QueueEventBody): Applied {
    if (seq <= this.lastQueueSeq) return NONE
    this.lastQueueSeq = seq
    const pausing = body._tag === "QueuePaused"
    if (pausing === this.paused) return NONE
    this.paused = pausing
    // only waiting (on pause) or paused (on resume) jobs change state; see the invariants
    const moving = [...this.byState[pausing ? "waiting" : "paused"]]
    const transitions: Array<Transition> = []
    for (const id of moving) {
      const before = this.jobs.get(id)!
      const step = advanceViewByQueueEvent(before, body, time)
      if (step === undefined) continue
      this.store(before, step.after)
      transitions.push({ before, after: step.after, intents: step.intents })
    }
    return { ok: true, transitions }
  }

  /** The view with the queue's pause flag; stored back so it is synced once. */
  private synced(view: JobView): JobView {
    if (view.queuePaused === this.paused) return view
    const next = syncQueueFlag(view, this.paused)
    this.store(view, next)
    return next
  }

  private store(before: JobView | undefined, after: JobView): void {
    if (before?.state === after.state) {
      this.jobs.set(after.id, after)
      return
    }
    if (before !== undefined && before.state !== "removed") this.byState[before.state].delete(after.id)
    if (after.state === "removed") this.jobs.delete(after.id) // out of the queue: its history stays in the log
    else {
      this.jobs.set(after.id, after)
      if (after.state !== "completed" || this.indexCompleted) this.byState[after.state].add(after.id)
    }
    this.count(before?.state, after.state)
  }

  private count(from: JobStateName | undefined, to: JobStateName | undefined): void {
    if (from === to) return
    moveCount(this.counts, from, to)
    this.countsCopy = undefined
  }

  /** A finished job this state let go of (retention) was removed: it leaves the counts too. */
  private removeUnheld(from: JobStateName): Applied {
    if (from !== "completed" && from !== "failed") return { ok: false, reason: `JobRemoved of a ${from} job this partition does not hold` }
    this.count(from, undefined)
    return NONE
  }

  /** Lets the oldest finished jobs of `state` go, by the rule of `finished`, the one that just ended there. */
  private trim(state: "completed" | "failed", finished: JobView): void {
    if (state === "completed" && !this.indexCompleted) return
    const bound = boundFor(this.retention, state, finished.keep)
    const held = this.byState[state]
    for (const oldestId of held) {
      const oldest = this.jobs.get(oldestId)!
      if (stays(bound, held.size - 1, oldest.updatedAt, finished.updatedAt)) return
      held.delete(oldestId)
      this.jobs.delete(oldestId)
    }
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The shape `fromSnapshot` relies on (the views themselves are our own writer's JSON). */
const wellFormed = (u: unknown): u is PartitionSnapshot => {
  if (!isRecord(u) || u.version !== PARTITION_STATE_VERSION || typeof u.queuePaused !== "boolean" || typeof u.queueSeq !== "number") return false
  if (!isRecord(u.counts) || !Array.isArray(u.jobs) || !isRecord(u.order)) return false
  if (u.schedules !== undefined && !(Array.isArray(u.schedules) && u.schedules.every((x) => isRecord(x) && isRecord(x.spec) && typeof x.spec.id === "string" && typeof x.seq === "number")))
    return false
  const counts = u.counts
  const order = u.order
  return (
    STATES.every((s) => Number.isInteger(counts[s]) && (order[s] === undefined || (Array.isArray(order[s]) && (order[s] as ReadonlyArray<unknown>).every((id) => typeof id === "string")))) &&
    u.jobs.every((v) => isRecord(v) && typeof v.id === "string" && STATES.includes(v.state as HeldState) && typeof v.seq === "number")
  )
}
