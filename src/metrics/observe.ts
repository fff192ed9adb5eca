/**
 * What one change of a job, as a read model applies it, says about the queue's work: a job
 * added, started (after waiting how long), finished (after running how long), retried, stalled.
 *
 * Durations come from the log's events, not from a clock of this process, so any reader on
 * any machine derives the same numbers:
 * - wait: `JobStarted.time − runAt` of the view it started from (the time the job became due:
 *   add time + delay, or its retry's due time) — the add→start wait of a first run;
 * - handler: `JobCompleted|JobFailed|JobRetrying.time − updatedAt` of the active view it
 *   ended (`updatedAt` of an active view is its JobStarted's time).
 * A duration below 0 (clocks of two machines) is counted as 0.
 *
 * Pure: no I/O, no clock.
 */
import type { Change } from "../read/read-model.ts"

/** How a handler run ended. */
export type Outcome = "completed" | "failed" | "retrying"

export interface Observation {
  readonly added: boolean
  /** Seconds from due to start, for a JobStarted. */
  readonly waitSeconds?: number
  /** Seconds the handler ran, for the event that ended an active run. */
  readonly handler?: { readonly outcome: Outcome; readonly seconds: number }
  readonly completed: boolean
  /** The job failed for good (JobFailed, or a JobStalled past the stall limit). */
  readonly failed: boolean
  /** `automatic`: a retry after a failed attempt (JobRetrying); `manual`: `retry(id)` (JobRetried). */
  readonly retried?: "automatic" | "manual"
  readonly stalled: boolean
}

const seconds = (ms: number): number => Math.max(0, ms) / 1000

const OUTCOME: Readonly<Record<string, Outcome>> = { JobCompleted: "completed", JobFailed: "failed", JobRetrying: "retrying" }

/** The observation of a live change; `undefined` for queue events (pause, resume). */
export const observe = ({ envelope, before, after }: Change): Observation | undefined => {
  if (envelope.jobId === null || after === undefined) return undefined
  const tag = envelope.body._tag
  const outcome = OUTCOME[tag]
  return {
    added: tag === "JobAdded",
    ...(tag === "JobStarted" && before !== undefined ? { waitSeconds: seconds(envelope.time - before.runAt) } : {}),
    ...(outcome !== undefined && before?.state === "active" ? { handler: { outcome, seconds: seconds(envelope.time - before.updatedAt) } } : {}),
    completed: tag === "JobCompleted",
    failed: tag === "JobFailed" || (tag === "JobStalled" && after.state === "failed"),
    ...(tag === "JobRetrying" ? { retried: "automatic" as const } : tag === "JobRetried" ? { retried: "manual" as const } : {}),
    stalled: tag === "JobStalled"
  }
}
