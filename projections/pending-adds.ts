/**
 * Jobs asked for but not yet accepted by an engine: AddJob commands whose JobAdded has not
 * been applied. They are part of the read model so that a backlog is visible while no
 * engine runs, and so that a `stats()` after an `add` in another process counts it.
 *
 * Invariants:
 * - An id is pending only while the queue state holds no view of it: the first JobAdded
 *   for the id removes it, and a command for a held id is ignored.
 * - The state of a pending job is the one the machine will start it in (`startStateOf`),
 *   with its partition's pause flag at the time of the query.
 * - Bounded by the backlog: only commands after the engines' committed offset are read.
 */
import { startStateOf } from "../machines/job-machine.ts"
import type { AddJob, CommandEnvelope, JobStateName } from "../machines/schema.ts"
import type { JobView } from "./job-view.ts"
import { emptyStats, evolveStats, type QueueStats } from "./stats.ts"

/** Whether partition `p` is paused now. */
export type PausedOf = (partition: number) => boolean

export class PendingAdds {
  private readonly views = new Map<string, { readonly view: JobView; readonly partition: number }>()

  get size(): number {
    return this.views.size
  }

  /** Records an AddJob command (found on `partition`) for a job the queue state does not hold. */
  add(command: CommandEnvelope & { readonly jobId: string }, body: AddJob, maxAttempts: number, partition: number): void {
    if (this.views.has(command.jobId)) return // idempotent: the first command wins
    const view = pendingView(command, body, maxAttempts)
    this.views.set(command.jobId, { view, partition })
  }

  /** The engine accepted the job (or it was known already): it is no longer pending. */
  accepted(jobId: string): void {
    this.views.delete(jobId)
  }

  get(jobId: string, pausedOf: PausedOf): JobView | undefined {
    const pending = this.views.get(jobId)
    return pending === undefined ? undefined : shown(pending.view, pausedOf(pending.partition))
  }

  list(state: JobStateName | undefined, pausedOf: PausedOf): Array<JobView> {
    const out: Array<JobView> = []
    for (const { view, partition } of this.views.values()) {
      const v = shown(view, pausedOf(partition))
      if (state === undefined || v.state === state) out.push(v)
    }
    return out
  }

  stats(pausedOf: PausedOf): QueueStats {
    let stats = emptyStats
    for (const { view, partition } of this.views.values()) stats = evolveStats(stats, undefined, shown(view, pausedOf(partition)).state)
    return stats
  }
}

/**
 * The view of a job asked for by `command` and not yet accepted: as the machine will start
 * it (on a queue that is not paused), before any event (`seq` -1).
 */
export const pendingView = (command: CommandEnvelope & { readonly jobId: string }, body: AddJob, maxAttempts: number): JobView => {
  const runAt = command.time + body.delay
  return {
    id: command.jobId,
    queue: command.queue,
    name: body.name,
    data: body.data,
    priority: body.priority,
    createdAt: command.time,
    updatedAt: command.time,
    runAt,
    state: startStateOf({ runAt, queuePaused: false }, command.time),
    attemptsMade: 0,
    maxAttempts,
    stalledCount: 0,
    queuePaused: false,
    seq: -1,
    ...(body.metadata === undefined ? {} : { metadata: body.metadata })
  }
}

/** A pending job as the machine would start it on a partition paused or not. */
const shown = (view: JobView, queuePaused: boolean): JobView => {
  if (!queuePaused || view.state !== "waiting") return view
  const state = startStateOf({ runAt: view.runAt, queuePaused }, view.createdAt)
  return { ...view, state, queuePaused }
}
