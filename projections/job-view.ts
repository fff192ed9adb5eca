/**
 * The view of one job: its machine life plus what a reader wants to see (data, result, error,
 * times). An emmett-style reducer: `evolveJobView(view, event)`, from `undefined`.
 *
 * Invariants:
 * - Transitions are decided only by the job machine (`stepJob`/`beginJob`); an event the
 *   machine refuses leaves the view unchanged (`verifyEvents` reports it).
 * - Idempotent under redelivery: an event with `seq <= view.seq` returns the same object.
 * - Pure: a new view per change, the old one is never mutated.
 */
import { beginJob, stepJob, type JobLife } from "../machines/job-machine.ts"
import type { EventBody, JobError, JobEventEnvelope, QueueEventBody } from "../machines/schema.ts"

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
  readonly seq: number
}

/** The error a job fails with when it stalled more than `MAX_STALLS` times. */
export const STALLED_ERROR: JobError = Object.freeze({ name: "StalledError", message: "job stalled more than 10 times" })

/**
 * The view after one of its job's events. `undefined` before JobAdded stays `undefined`
 * for any other event (an unknown job); a duplicate, a stranger's event or an illegal
 * transition returns `view` itself.
 */
export function evolveJobView(view: JobView | undefined, e: JobEventEnvelope): JobView | undefined {
  const body = e.body
  if (isQueueBody(body)) return view // not a job event: see applyQueueEventToView
  if (view === undefined) {
    if (body._tag !== "JobAdded") return undefined
    const { life } = beginJob(body, e.time)
    // createdAt is when the producer asked (the command's time), not when the engine accepted it.
    return build(life, e.jobId, e.queue, body.name, body.data, undefined, undefined, body.priority, body.createdAt ?? e.time, e.time, body.metadata, body.timeout, e.seq)
  }
  if (e.seq <= view.seq || e.jobId !== view.id) return view
  const step = stepJob(view, body)
  if (!step.ok) return view
  const life = step.life
  switch (body._tag) {
    case "JobCompleted":
      return withLife(view, life, e.time, e.seq, body.result, undefined)
    case "JobRetrying":
    case "JobFailed":
      return withLife(view, life, e.time, e.seq, view.result, body.error)
    case "JobStalled":
      return withLife(view, life, e.time, e.seq, view.result, life.state === "failed" ? STALLED_ERROR : view.error)
    case "JobRetried":
      return withLife(view, life, e.time, e.seq, undefined, undefined)
    case "JobAdded": // refused above by the machine (duplicate)
    case "JobPromoted":
    case "JobStarted":
      return withLife(view, life, e.time, e.seq, view.result, view.error)
  }
}

/**
 * The view after a queue event (pause or resume) with no seq of its own: the pause flag,
 * and for a waiting/paused job the state. Returns `view` itself when nothing changes;
 * `updatedAt` becomes `time` (when given) only if the state changes.
 */
export function applyQueueEventToView(view: JobView, body: QueueEventBody, time?: number): JobView {
  const step = stepJob(view, body)
  if (!step.ok) return view
  const life = step.life
  if (life.state === view.state && life.queuePaused === view.queuePaused) return view
  const updatedAt = life.state !== view.state && time !== undefined ? time : view.updatedAt
  return withLife(view, life, updatedAt, view.seq, view.result, view.error)
}

/** Brings the view's pause flag to the queue's: `applyQueueEventToView` with the right event. */
export const syncQueueFlag = (view: JobView, queuePaused: boolean, time?: number): JobView =>
  view.queuePaused === queuePaused ? view : applyQueueEventToView(view, queuePaused ? PAUSED : RESUMED, time)

/** True for the bodies of queue events (they carry no job id). */
export const isQueueBody = (body: EventBody): body is QueueEventBody =>
  body._tag === "QueuePaused" || body._tag === "QueueResumed"

const PAUSED: QueueEventBody = { _tag: "QueuePaused" }
const RESUMED: QueueEventBody = { _tag: "QueueResumed" }

const withLife = (v: JobView, life: JobLife, updatedAt: number, seq: number, result: unknown, error: JobError | undefined) =>
  build(life, v.id, v.queue, v.name, v.data, result, error, v.priority, v.createdAt, updatedAt, v.metadata, v.timeout, seq)

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
  seq: number
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

/** The same view in the canonical shape (for views read back from JSON, e.g. checkpoints). */
export const normalizeView = (v: JobView): JobView =>
  build(v, v.id, v.queue, v.name, v.data, v.result, v.error, v.priority, v.createdAt, v.updatedAt, v.metadata, v.timeout, v.seq)
