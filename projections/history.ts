/**
 * The history of one job: a timeline of its events with the state each one led to.
 *
 * Invariants:
 * - The state of every entry is decided by the job machine (`beginJob`/`stepJob`), so the
 *   history carries the job's life along with the entries.
 * - A refused event is still shown (it is in the log), with `detail.refused` = the machine's
 *   reason and the state unchanged: the timeline is an audit, not a view.
 * - Idempotent: a job event with `seq <= history.seq`, or a queue event with
 *   `seq <= history.queueSeq`, returns the same history.
 * - A queue event adds an entry only if it moved the job (waiting <-> paused).
 */
import { beginJob, stepJob, type JobLife } from "../machines/job-machine.ts"
import { isScheduleBody, type EventBody, type EventEnvelope, type JobStateName } from "../machines/schema.ts"
import { isQueueBody, STALLED_ERROR } from "./job-view.ts"

/** One event in a job's timeline. `offset` is the event's position in its log partition. */
export interface TimelineEntry {
  readonly offset: number
  readonly seq: number
  readonly time: number
  readonly type: string
  readonly state: JobStateName
  readonly detail?: Record<string, unknown>
}

/** A job's timeline and the life it leads to (`undefined` before JobAdded). */
export interface JobHistory {
  readonly life: JobLife | undefined
  /** The last job event seq applied (-1 before any). */
  readonly seq: number
  /** The last queue event seq applied (-1 before any). */
  readonly queueSeq: number
  readonly entries: ReadonlyArray<TimelineEntry>
}

/** The history before any event. */
export const emptyHistory: JobHistory = Object.freeze({ life: undefined, seq: -1, queueSeq: -1, entries: Object.freeze([]) })

/**
 * The history after event `e` found at `offset`. Feed it the job's events and its queue's
 * events in log order. An event before JobAdded is skipped (`verifyEvents` reports it).
 */
export function evolveHistory(history: JobHistory, e: EventEnvelope, offset: number): JobHistory {
  const body = e.body
  const life = history.life
  if (isScheduleBody(body)) return history // about a schedule, not a job
  if (isQueueBody(body)) {
    if (e.seq <= history.queueSeq || life === undefined) return history
    const step = stepJob(life, body)
    if (!step.ok) return history // queue events are legal in every state
    const moved = step.life.state !== life.state
    const entries = moved ? [...history.entries, entry(offset, e, step.life.state, undefined)] : history.entries
    return { life: step.life, seq: history.seq, queueSeq: e.seq, entries }
  }
  if (e.seq <= history.seq) return history
  if (life === undefined) {
    if (body._tag !== "JobAdded") return history
    const begun = beginJob(body, e.time).life
    return { ...history, life: begun, seq: e.seq, entries: [...history.entries, entry(offset, e, begun.state, detailOf(body, begun))] }
  }
  const step = stepJob(life, body)
  const next = step.ok ? step.life : life
  const detail = step.ok ? detailOf(body, next) : { ...detailOf(body, next), refused: step.reason }
  return { ...history, life: next, seq: e.seq, entries: [...history.entries, entry(offset, e, next.state, detail)] }
}

function entry(offset: number, e: EventEnvelope, state: JobStateName, detail: Record<string, unknown> | undefined): TimelineEntry {
  const base = { offset, seq: e.seq, time: e.time, type: e.body._tag, state }
  return detail === undefined ? base : { ...base, detail }
}

/** The fields of an event worth showing in a timeline. */
function detailOf(body: EventBody, after: JobLife): Record<string, unknown> | undefined {
  switch (body._tag) {
    case "JobAdded":
      return body.schedule === undefined
        ? { runAt: body.runAt, maxAttempts: body.maxAttempts, priority: body.priority }
        : { runAt: body.runAt, maxAttempts: body.maxAttempts, priority: body.priority, schedule: body.schedule.id }
    case "JobStarted":
      return { attempt: body.attempt }
    case "JobCompleted":
      return { result: body.result }
    case "JobRetrying":
      return { attempt: body.attempt, delay: body.delay, runAt: body.runAt, error: body.error.message }
    case "JobFailed":
    case "JobCancelled":
      return { error: body.error.message }
    case "JobProgress":
      return { progress: body.value }
    case "JobRemoved":
      return { from: body.from }
    case "JobStalled":
      return after.state === "failed"
        ? { stalledCount: after.stalledCount, error: STALLED_ERROR.message }
        : { stalledCount: after.stalledCount }
    case "JobPromoted":
    case "JobRetried":
    case "QueuePaused":
    case "QueueResumed":
    case "ScheduleUpserted":
    case "ScheduleRemoved":
    case "ScheduleTicked":
      return undefined
  }
}
