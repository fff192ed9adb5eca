/**
 * Lifecycle events of the public API, derived from the events the read model applies:
 * `added`, `active`, `completed`, `failed`, `retrying`, `paused`, `resumed` (and `stalled`,
 * `progress`).
 */
import type { EventEmitter } from "node:events"
import type { JobError } from "../../machines/schema.ts"
import { toJob } from "../job.ts"
import type { Change } from "./read-model.ts"

/** The Error a `failed` listener receives: rebuilt from what the log recorded. */
export const toError = (error: JobError | undefined): Error => {
  const e = new Error(error?.message ?? "unknown error")
  if (error?.name !== undefined) e.name = error.name
  if (error?.stack !== undefined) e.stack = error.stack
  return e
}

/** The public event each event type announces (listeners are checked before building a Job). */
const PUBLIC_EVENT: Record<string, string> = {
  JobAdded: "added",
  JobStarted: "active",
  JobCompleted: "completed",
  JobRetrying: "retrying",
  JobFailed: "failed",
  JobCancelled: "failed",
  JobStalled: "stalled",
  JobProgress: "progress"
}

/** The public events a read model announces: listening to one opens the queue's read model. */
export const PUBLIC_EVENT_NAMES: ReadonlySet<string> = new Set([...Object.values(PUBLIC_EVENT), "paused", "resumed"])

export const announce = (emitter: EventEmitter, { envelope, after }: Change): void => {
  const body = envelope.body
  const name = PUBLIC_EVENT[body._tag]
  // Nobody listens: skip building the Job (the hot path of a busy engine).
  if (name !== undefined && emitter.listenerCount(name) === 0 && !(body._tag === "JobStalled" && emitter.listenerCount("failed") > 0))
    return
  if (body._tag === "QueuePaused") return void emitter.emit("paused")
  if (body._tag === "QueueResumed") return void emitter.emit("resumed")
  if (after === undefined) return
  switch (body._tag) {
    case "JobAdded":
      return void emitter.emit("added", toJob(after))
    case "JobStarted":
      return void emitter.emit("active", toJob(after))
    case "JobCompleted":
      return void emitter.emit("completed", toJob(after), after.result)
    case "JobRetrying":
      return void emitter.emit("retrying", toJob(after), body.attempt, body.delay)
    case "JobFailed":
    case "JobCancelled":
      return void emitter.emit("failed", toJob(after), toError(after.error))
    case "JobProgress":
      return void emitter.emit("progress", toJob(after), body.value)
    case "JobStalled":
      emitter.emit("stalled", toJob(after))
      if (after.state === "failed") emitter.emit("failed", toJob(after), toError(after.error))
      return
    case "JobPromoted":
    case "JobRetried":
    case "JobRemoved":
      return
  }
}
