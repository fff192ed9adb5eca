/**
 * One batch of a partition's events folded over the stored rows it touches: pure, no SQL.
 *
 * The store runs this inside one SQL transaction: it loads the rows of the batch's jobs,
 * folds, then carries out the returned operations in order (upserts of changed rows, and
 * the SQL form of a queue event), the counts' deltas and the new position.
 *
 * Invariants (the same as `PartitionState` with `KEEP_ALL` retention, which the property
 * test holds it equal to):
 * - Transitions are decided only by the reducers of `projections/job-view.ts`
 *   (`advanceView`, `advanceViewByQueueEvent`, `syncQueueFlag`): nothing here decides one.
 * - A queue event (pause/resume) moves every waiting (resp. paused) job of the partition,
 *   not only the rows loaded: it becomes one SQL UPDATE per moving state, derived once
 *   from the reducer itself (`QUEUE_MOVES`). Rows in other states keep a stale pause flag
 *   until their next event or read, which sync it first (as `PartitionState.synced` does).
 * - Rows changed before a queue event are written before its UPDATE runs, and the loaded
 *   rows it moves are moved here too: the working set stays equal to the table.
 * - Idempotent: a job event with `seq <= row.seq` or a queue event with `seq <= queueSeq`
 *   changes nothing (and the store never refolds an offset below its stored position).
 * - Counts move exactly as `PartitionState`'s: a job moving from one state to another moves
 *   one unit; a new life of a finished id adds one to its new state (the old life stays
 *   counted where it ended); a removed job leaves the counts and its row is deleted.
 * - Schedule events change no job row: they are skipped.
 */
import { isScheduleBody, type EventEnvelope, type JobStateName, type QueueEventBody } from "../../../machines/schema.ts"
import { advanceView, advanceViewByQueueEvent, hasEnded, isQueueBody, syncQueueFlag, type JobView } from "../../../projections/job-view.ts"

/** A stored job row: its view, the offset of the event that last changed it, and its life number. */
export interface Held {
  readonly view: JobView
  /** Offset (in its partition) of the last event that changed the row: updates never go below it. */
  readonly pos: number
  /** 0 for an id's first life, +1 for each new life (a JobAdded of a finished id). */
  readonly life: number
  /**
   * True when this batch (re)created the row: its immutable fields (data, metadata, …) are
   * written. Rows loaded from the table carry only what a transition needs, and their
   * immutable fields are never rewritten.
   */
  readonly born: boolean
}

/** Where a partition's fold stands: the next offset to apply and the queue's pause state. */
export interface PartitionPosition {
  readonly next: number
  readonly paused: boolean
  readonly queueSeq: number
}

/** A queue event moves jobs between held states only (never to or from `removed`). */
export interface QueueMove {
  readonly from: keyof Counts
  readonly to: keyof Counts
}

export type FoldOp =
  /** Write these rows (each only over a stored row with a lower `pos`). */
  | { readonly kind: "upsert"; readonly rows: ReadonlyArray<Held> }
  /** A queue event: every row of the partition in `from` goes to `to`, with the flag and `updatedAt = time`. */
  | { readonly kind: "queue"; readonly offset: number; readonly time: number; readonly paused: boolean; readonly moves: ReadonlyArray<QueueMove> }

/** Count changes by state (a removed job counts nowhere). */
export type Counts = Record<Exclude<JobStateName, "removed">, number>

export interface FoldResult {
  /** In order; the last one is always an upsert (possibly empty). */
  readonly ops: ReadonlyArray<FoldOp>
  readonly position: PartitionPosition
  /** Count changes of the job events (the queue moves' counts come from their UPDATEs). */
  readonly delta: Counts
  /** Events the machine refused (an illegal transition, a job never added), as the read model ignores them. */
  readonly refused: ReadonlyArray<{ readonly offset: number; readonly reason: string }>
}

export interface OffsetEvent {
  readonly offset: number
  readonly envelope: EventEnvelope
}

const STATES: ReadonlyArray<keyof Counts> = ["waiting", "delayed", "active", "paused", "failed", "completed"]
export const zeroCounts = (): Counts => ({ waiting: 0, delayed: 0, active: 0, paused: 0, failed: 0, completed: 0 })

const probe = (state: JobStateName, queuePaused: boolean): JobView => ({
  id: "probe",
  queue: "probe",
  name: "probe",
  data: null,
  result: undefined,
  error: undefined,
  metadata: undefined,
  timeout: undefined,
  keep: undefined,
  progress: undefined,
  schedule: undefined,
  trace: undefined,
  state,
  attemptsMade: 0,
  maxAttempts: 1,
  stalledCount: 0,
  queuePaused,
  runAt: 0,
  priority: 0,
  createdAt: 0,
  updatedAt: 0,
  seq: 0
})

/**
 * Which states a queue event moves, as the reducer says: a job of each state with the
 * opposite flag is stepped once. The SQL UPDATE can only say "state, flag and updatedAt
 * change"; a reducer that changed anything else on a queue event would need more SQL, so
 * that is refused here at load time rather than mirrored wrongly.
 */
const movesOf = (body: QueueEventBody): ReadonlyArray<QueueMove> => {
  const moves: Array<QueueMove> = []
  for (const from of STATES) {
    const before = probe(from, body._tag !== "QueuePaused")
    const step = advanceViewByQueueEvent(before, body, 1)
    if (step === undefined || step.after.state === from) continue
    const { state: _s, queuePaused: _q, updatedAt: _u, ...rest } = step.after
    const { state: _s0, queuePaused: _q0, updatedAt: _u0, ...restBefore } = before
    if (JSON.stringify(rest) !== JSON.stringify(restBefore))
      throw new Error(`the reducer changes more than state, pause flag and updatedAt on ${body._tag} of a ${from} job; the Postgres store's SQL form of queue events must follow`)
    moves.push({ from, to: step.after.state as keyof Counts })
  }
  return moves
}

/** The SQL form of each queue event: which states move where. */
export const QUEUE_MOVES: Readonly<Record<QueueEventBody["_tag"], ReadonlyArray<QueueMove>>> = {
  QueuePaused: movesOf({ _tag: "QueuePaused" }),
  QueueResumed: movesOf({ _tag: "QueueResumed" })
}

/**
 * Folds `events` (one partition, ascending offsets, none below `start.next`) over `rows`,
 * the stored rows of every job the events name (absent: not in the table). `rows` is not
 * changed. `end` is the offset after the batch's last record (decodable or not).
 */
export function foldBatch(start: PartitionPosition, rows: ReadonlyMap<string, Held>, events: ReadonlyArray<OffsetEvent>, end: number): FoldResult {
  const held = new Map(rows)
  const dirty = new Set<string>()
  const delta = zeroCounts()
  const ops: Array<FoldOp> = []
  const refused: Array<{ offset: number; reason: string }> = []
  let paused = start.paused
  let queueSeq = start.queueSeq

  const move = (from: JobStateName | undefined, to: JobStateName) => {
    if (from === to) return
    if (from !== undefined && from !== "removed") delta[from] -= 1
    if (to !== "removed") delta[to] += 1
  }
  const flush = () => {
    ops.push({ kind: "upsert", rows: [...dirty].map((id) => held.get(id)!) })
    dirty.clear()
  }

  for (const { offset, envelope: e } of events) {
    const body = e.body
    if (isScheduleBody(body)) continue // about a schedule, not a job row
    if (isQueueBody(body)) {
      if (e.jobId !== null || e.seq <= queueSeq) continue
      queueSeq = e.seq
      const pausing = body._tag === "QueuePaused"
      if (pausing === paused) continue
      paused = pausing
      const moves = QUEUE_MOVES[body._tag]
      flush()
      ops.push({ kind: "queue", offset, time: e.time, paused, moves })
      // the same move on the loaded rows, so that the working set stays equal to the table
      for (const [id, h] of held) {
        if (!moves.some((m) => m.from === h.view.state)) continue
        const step = advanceViewByQueueEvent(h.view, body, e.time)
        if (step !== undefined) held.set(id, { ...h, view: step.after, pos: offset })
      }
      continue
    }
    if (e.jobId === null) {
      refused.push({ offset, reason: `${body._tag} without a job id` })
      continue
    }
    const stored = held.get(e.jobId)
    let current = stored
    if (current !== undefined && current.view.queuePaused !== paused) {
      // the row's flag is stale (a queue event passed it by): sync it first, as PartitionState does
      const synced = syncQueueFlag(current.view, paused)
      if (synced.state !== current.view.state) {
        // only for a job whose JobAdded disagreed with its partition's pause: write the move
        move(current.view.state, synced.state)
        dirty.add(e.jobId)
        current = { ...current, view: synced, pos: offset }
      } else current = { ...current, view: synced }
      held.set(e.jobId, current)
    }
    const advance = advanceView(current?.view, e as Parameters<typeof advanceView>[1], paused)
    if (advance.kind === "same") continue
    if (advance.kind === "refused") {
      refused.push({ offset, reason: advance.reason })
      continue
    }
    let from = advance.before
    let life = current?.life ?? 0
    let born = current === undefined || current.born
    if (from !== undefined && current !== undefined && hasEnded(from.state) && body._tag === "JobAdded") {
      // a new life of the id: the old one stays counted where it ended; the row is replaced
      from = undefined
      life = current.life + 1
      born = true
    }
    move(from?.state, advance.after.state)
    held.set(e.jobId, { view: advance.after, pos: offset, life, born })
    dirty.add(e.jobId)
  }
  flush()
  return { ops, position: { next: end, paused, queueSeq }, delta, refused }
}
