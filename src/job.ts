/**
 * The public `Job` built from a projection's job view (a fresh object each time, so a
 * handler or listener mutating it cannot change engine state).
 */
import type { JobView } from "../projections/job-view.ts"
import type { Job } from "./types.ts"

export const toJob = (view: JobView): Job => {
  const job: Job = {
    id: view.id,
    name: view.name,
    data: view.data,
    state: view.state as Job["state"], // views of removed jobs are never held
    attemptsMade: view.attemptsMade,
    maxAttempts: view.maxAttempts,
    priority: view.priority,
    createdAt: view.createdAt,
    runAt: view.runAt,
    updatedAt: view.updatedAt
  }
  if (view.result !== undefined) job.result = view.result
  if (view.error !== undefined) job.error = { ...view.error }
  if (view.metadata !== undefined) job.metadata = view.metadata
  if (view.progress !== undefined) job.progress = view.progress
  if (view.schedule !== undefined) job.schedule = { ...view.schedule }
  return job
}
