/**
 * The view of one job: its machine life plus what a reader wants to see (data, result, error,
 * times). An emmett-style reducer over the job's events, from `undefined`.
 *
 * Invariants:
 * - Transitions are decided only by the job machine (`stepJob`/`beginJob`), and one step of
 *   it gives both the next view and the intents of the state entered (`advanceView`): the
 *   engine and every reader use the same step, so nothing else decides a transition.
 * - An event the machine refuses leaves the view unchanged (`verifyEvents` reports it).
 * - Idempotent under redelivery: a job event with `seq <= view.seq` changes nothing.
 * - A job's life may restart: a JobAdded for a job whose life ended (completed, failed or
 *   removed), asked for at another time (its `createdAt`), begins a new life of the id.
 *   Engines that can look an id up in the log never append one; an engine that cannot
 *   (Kafka) does once the old job left its memory. The same JobAdded again is a duplicate.
 * - Pure: a new view per change, the old one is never mutated.
 */
import { beginJob, MAX_STALLS, stepJob, type JobIntent, type JobLife } from "../machines/job-machine.ts"
import type { EventBody, JobAdded, JobError, JobEventEnvelope, KeepPolicy, QueueEventBody, RetriedJob, TraceContext } from "../machines/schema.ts"

/** Everything a reader sees about one job. `seq` is the last applied event seq of the job. */
export interface JobView extends JobLife {
  readonly id: string
  readonly queue: string
  readonly name: string
  readonly data: unknown
  readonly result?: unknown
  readonly error?: JobError
  readonly priority: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly metadata?: { readonly [key: string]: unknown }
  /** The job's own attempt time limit in ms (from `add`'s `timeout`); absent: the queue's. */
  readonly timeout?: number
  /** The job's own retention once finished (from `add`'s `keep`); absent: the queue's. */
  readonly keep?: KeepPolicy
  /** The last progress its handler reported (`job.updateProgress`), kept after it finished. */
  readonly progress?: unknown
  /** The schedule that added it, and the tick it stands for. */
  readonly schedule?: { readonly id: string; readonly tick: number }
  /** The trace context of its `add`: its handler spans are children of it. */
  readonly trace?: TraceContext
  readonly seq: number
}

/** The error a job fails with when it stalled more than `MAX_STALLS` times. */
export const STALLED_ERROR: JobError = Object.freeze({ name: "StalledError", message: `job stalled more than ${MAX_STALLS} times` })

/** What one job event does to a view. */
export type Advance =
  /** `before` is the view the step started from (rebuilt from the event when the reader had none). */
  | { readonly kind: "changed"; readonly before: JobView | undefined; readonly after: JobView; readonly intents: ReadonlyArray<JobIntent> }
  /** A duplicate or a stranger's event: nothing to do. */
  | { readonly kind: "same" }
  /** The machine (or the absence of the job) refuses it. */
  | { readonly kind: "refused"; readonly reason: string }

const SAME: Advance = Object.freeze({ kind: "same" })

/** True for the states a finished job rests in (held within retention). */
export const isFinished = (state: JobLife["state"]): boolean => state === "completed" || state === "failed"

/** True when a job's life is over: finished, or removed. Its id may then begin a new life. */
export const hasEnded = (state: JobLife["state"]): boolean => isFinished(state) || state === "removed"

/**
 * One job event applied to `view` (`undefined`: the reader holds no such job). `queuePaused`
 * is the flag of the job's partition, for a job rebuilt from a JobRetried.
 */
export function advanceView(view: JobView | undefined, e: JobEventEnvelope, queuePaused: boolean): Advance {
  const body = e.body
  if (body._tag === "JobAdded") {
    // a new job, or a new life of one whose previous life ended (asked for anew: another
    // createdAt); else a duplicate, e.g. the job's own JobAdded delivered again
    if (view !== undefined && !(hasEnded(view.state) && e.seq === 0 && (body.createdAt ?? e.time) !== view.createdAt)) return SAME
    const { life, intents } = beginJob(body, e.time)
    return { kind: "changed", before: view, after: added(life, e, body), intents }
  }
  let before = view
  if (before === undefined) {
    if (body._tag !== "JobRetried" || body.job === undefined) return { kind: "refused", reason: `${body._tag} for a job this reader does not hold (${e.jobId})` }
    before = retried(body.job, e, queuePaused)
  } else if (e.seq <= before.seq || e.jobId !== before.id) return SAME
  const step = stepJob(before, body)
  if (!step.ok) return { kind: "refused", reason: step.reason }
  const life = step.life
  let after: JobView
  switch (body._tag) {
    case "JobCompleted":
      after = withLife(before, life, e.time, e.seq, body.result, undefined, before.progress)
      break
    case "JobRetrying":
    case "JobFailed":
    case "JobCancelled":
      after = withLife(before, life, e.time, e.seq, before.result, body.error, before.progress)
      break
    case "JobProgress":
      after = withLife(before, life, e.time, e.seq, before.result, before.error, body.value)
      break
    case "JobStalled":
      after = withLife(before, life, e.time, e.seq, before.result, life.state === "failed" ? STALLED_ERROR : before.error, before.progress)
      break
    case "JobRetried":
      // a fresh start: no result, error or progress of the failed run
      after = withLife(before, life, e.time, e.seq, undefined, undefined, undefined)
      break
    case "JobPromoted":
    case "JobStarted":
    case "JobRemoved":
      after = withLife(before, life, e.time, e.seq, before.result, before.error, before.progress)
      break
  }
  return { kind: "changed", before: view === undefined ? before : view, after, intents: step.intents }
}

/**
 * The view after one of its job's events. `undefined` before JobAdded stays `undefined`
 * for any other event (an unknown job); a duplicate, a stranger's event or an illegal
 * transition returns `view` itself.
 */
export function evolveJobView(view: JobView | undefined, e: JobEventEnvelope): JobView | undefined {
  if (isQueueBody(e.body)) return view // not a job event: see applyQueueEventToView
  const advance = advanceView(view, e, view?.queuePaused ?? false)
  return advance.kind === "changed" ? advance.after : view
}

/** A queue event applied to one job's view: the next view and the intents, or the view itself. */
export function advanceViewByQueueEvent(
  view: JobView,
  body: QueueEventBody,
  time?: number
): { readonly after: JobView; readonly intents: ReadonlyArray<JobIntent> } | undefined {
  const step = stepJob(view, body)
  if (!step.ok) return undefined
  const life = step.life
  if (life.state === view.state && life.queuePaused === view.queuePaused) return undefined
  const updatedAt = life.state !== view.state && time !== undefined ? time : view.updatedAt
  return { after: withLife(view, life, updatedAt, view.seq, view.result, view.error, view.progress), intents: step.intents }
}

/**
 * The view after a queue event (pause or resume) with no seq of its own: the pause flag,
 * and for a waiting/paused job the state. Returns `view` itself when nothing changes;
 * `updatedAt` becomes `time` (when given) only if the state changes.
 */
export function applyQueueEventToView(view: JobView, body: QueueEventBody, time?: number): JobView {
  return advanceViewByQueueEvent(view, body, time)?.after ?? view
}

/** Brings the view's pause flag to the queue's: `applyQueueEventToView` with the right event. */
export const syncQueueFlag = (view: JobView, queuePaused: boolean, time?: number): JobView =>
  view.queuePaused === queuePaused ? view : applyQueueEventToView(view, queuePaused ? PAUSED : RESUMED, time)

/** True for the bodies of queue events (they carry no job id). */
export const isQueueBody = (body: EventBody): body is QueueEventBody =>
  body._tag === "QueuePaused" || body._tag === "QueueResumed"

/** What a JobRetried carries of a failed job (see `RetriedJob` in the schema). */
export const retriedJobOf = (v: JobView): RetriedJob => {
  const job: { -readonly [K in keyof RetriedJob]: RetriedJob[K] } = {
    name: v.name,
    data: v.data,
    priority: v.priority,
    createdAt: v.createdAt,
    runAt: v.runAt,
    maxAttempts: v.maxAttempts,
    stalledCount: v.stalledCount,
    attemptsMade: v.attemptsMade
  }
  if (v.metadata !== undefined) job.metadata = v.metadata
  if (v.timeout !== undefined) job.timeout = v.timeout
  if (v.keep !== undefined) job.keep = v.keep
  if (v.schedule !== undefined) job.schedule = v.schedule
  if (v.trace !== undefined) job.trace = v.trace
  return job
}

const PAUSED: QueueEventBody = { _tag: "QueuePaused" }
const RESUMED: QueueEventBody = { _tag: "QueueResumed" }

// createdAt is when the producer asked (the command's time), not when the engine accepted it.
const added = (life: JobLife, e: JobEventEnvelope, body: JobAdded): JobView =>
  build(life, e.jobId, e.queue, body.name, body.data, undefined, undefined, body.priority, body.createdAt ?? e.time, e.time, body.metadata, body.timeout, body.keep, e.seq, undefined, body.schedule, body.trace)

/** The failed view a JobRetried brings back, as it was just before (seq: the event's - 1). */
const retried = (job: RetriedJob, e: JobEventEnvelope, queuePaused: boolean): JobView => {
  const life: JobLife = { state: "failed", attemptsMade: job.attemptsMade, maxAttempts: job.maxAttempts, stalledCount: job.stalledCount, queuePaused, runAt: job.runAt }
  return build(life, e.jobId, e.queue, job.name, job.data, undefined, undefined, job.priority, job.createdAt, e.time, job.metadata, job.timeout, job.keep, e.seq - 1, undefined, job.schedule, job.trace)
}

const withLife = (v: JobView, life: JobLife, updatedAt: number, seq: number, result: unknown, error: JobError | undefined, progress: unknown) =>
  build(life, v.id, v.queue, v.name, v.data, result, error, v.priority, v.createdAt, updatedAt, v.metadata, v.timeout, v.keep, seq, progress, v.schedule, v.trace)

// Every view is built here with all fields in the same order, absent ones as `undefined`: one
// hidden class, so a replay stays monomorphic (JSON drops the undefined fields).
function build(
  life: JobLife,
  id: string,
  queue: string,
  name: string,
  data: unknown,
  result: unknown,
  error: JobError | undefined,
  priority: number,
  createdAt: number,
  updatedAt: number,
  metadata: JobView["metadata"],
  timeout: number | undefined,
  keep: KeepPolicy | undefined,
  seq: number,
  progress: unknown,
  schedule: JobView["schedule"],
  trace: TraceContext | undefined
): JobView {
  return {
    id,
    queue,
    name,
    data,
    result,
    error,
    metadata,
    timeout,
    keep,
    progress,
    schedule,
    trace,
    state: life.state,
    attemptsMade: life.attemptsMade,
    maxAttempts: life.maxAttempts,
    stalledCount: life.stalledCount,
    queuePaused: life.queuePaused,
    runAt: life.runAt,
    priority,
    createdAt,
    updatedAt,
    seq
  }
}

/** The same view in the canonical shape (for views read back from JSON, e.g. snapshots). */
export const normalizeView = (v: JobView): JobView =>
  build(v, v.id, v.queue, v.name, v.data, v.result, v.error, v.priority, v.createdAt, v.updatedAt, v.metadata, v.timeout, v.keep, v.seq, v.progress, v.schedule, v.trace)
