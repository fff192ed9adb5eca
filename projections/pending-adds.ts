/**
 * Jobs asked for but not yet accepted by an engine: AddJob commands whose JobAdded has not
 * been applied. They are part of the read model so that a backlog is visible while no
 * engine runs, and so an idempotent add sees the first add at once.
 *
 * Invariants:
 * - An id is pending only while the queue projection has no view of it: the first JobAdded
 *   for the id removes it, and a command for a known id is ignored.
 * - The state of a pending job is what the machine will start it in: `delayed` while its
 *   `runAt` is ahead of the command's time, else `paused` or `waiting` per the queue flag
 *   at the time of the query.
 */
import type { AddJob, CommandEnvelope, JobStateName } from "../machines/schema.ts"
import type { JobView } from "./job-view.ts"
import { emptyStats, evolveStats, type QueueStats } from "./stats.ts"

export class PendingAdds {
  private readonly views = new Map<string, JobView>()

  get size(): number {
    return this.views.size
  }

  /** Records an AddJob command for a job the projection does not know. */
  add(command: CommandEnvelope & { readonly jobId: string }, body: AddJob, maxAttempts: number): void {
    if (this.views.has(command.jobId)) return // idempotent: the first command wins
    const runAt = command.time + body.delay
    this.views.set(command.jobId, {
      id: command.jobId,
      queue: command.queue,
      name: body.name,
      data: body.data,
      priority: body.priority,
      createdAt: command.time,
      updatedAt: command.time,
      runAt,
      state: runAt > command.time ? "delayed" : "waiting",
      attemptsMade: 0,
      maxAttempts,
      stalledCount: 0,
      queuePaused: false,
      seq: -1,
      ...(body.metadata === undefined ? {} : { metadata: body.metadata })
    })
  }

  /** The engine accepted the job (or it was known already): it is no longer pending. */
  accepted(jobId: string): void {
    this.views.delete(jobId)
  }

  get(jobId: string, queuePaused: boolean): JobView | undefined {
    const view = this.views.get(jobId)
    return view === undefined ? undefined : withPause(view, queuePaused)
  }

  list(state: JobStateName | undefined, queuePaused: boolean): Array<JobView> {
    const out: Array<JobView> = []
    for (const view of this.views.values()) {
      const shown = withPause(view, queuePaused)
      if (state === undefined || shown.state === state) out.push(shown)
    }
    return out
  }

  stats(queuePaused: boolean): QueueStats {
    let stats = emptyStats
    for (const view of this.views.values()) stats = evolveStats(stats, undefined, withPause(view, queuePaused).state)
    return stats
  }
}

const withPause = (view: JobView, queuePaused: boolean): JobView =>
  queuePaused && view.state === "waiting" ? { ...view, state: "paused", queuePaused: true } : view
