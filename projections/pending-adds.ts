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

/** A pending job as recorded: its command, decoded once; the view is built only when asked for. */
interface Pending {
  readonly command: CommandEnvelope & { readonly jobId: string }
  readonly body: AddJob
  readonly maxAttempts: number
  readonly partition: number
}

export class PendingAdds {
  private readonly pending = new Map<string, Pending>()

  get size(): number {
    return this.pending.size
  }

  /** Records an AddJob command (found on `partition`) for a job the queue state does not hold. */
  add(command: CommandEnvelope & { readonly jobId: string }, body: AddJob, maxAttempts: number, partition: number): void {
    if (this.pending.has(command.jobId)) return // idempotent: the first command wins
    // Most pending jobs are accepted before anyone looks at them (a backlog drained by an engine
    // in this process): no view is built for those.
    this.pending.set(command.jobId, { command, body, maxAttempts, partition })
  }

  /** The engine accepted the job (or it was known already): it is no longer pending. */
  accepted(jobId: string): void {
    this.pending.delete(jobId)
  }

  get(jobId: string, pausedOf: PausedOf): JobView | undefined {
    const pending = this.pending.get(jobId)
    return pending === undefined ? undefined : shown(pending, pausedOf(pending.partition))
  }

  list(state: JobStateName | undefined, pausedOf: PausedOf): Array<JobView> {
    const out: Array<JobView> = []
    for (const pending of this.pending.values()) {
      const v = shown(pending, pausedOf(pending.partition))
      if (state === undefined || v.state === state) out.push(v)
    }
    return out
  }

  stats(pausedOf: PausedOf): QueueStats {
    let stats = emptyStats
    for (const pending of this.pending.values()) stats = evolveStats(stats, undefined, shownState(pending, pausedOf(pending.partition)))
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

/** A pending job's start state (as on a partition not paused) as shown on one paused or not. */
const onPartition = (startState: JobStateName, runAt: number, time: number, queuePaused: boolean): JobStateName =>
  queuePaused && startState === "waiting" ? startStateOf({ runAt, queuePaused }, time) : startState

/** The state a pending job is shown in, without building its view (for counts). */
const shownState = ({ command, body }: Pending, queuePaused: boolean): JobStateName => {
  const runAt = command.time + body.delay
  return onPartition(startStateOf({ runAt, queuePaused: false }, command.time), runAt, command.time, queuePaused)
}

/** A pending job's view, in the state it is shown in. */
const shown = (pending: Pending, queuePaused: boolean): JobView => {
  const view = pendingView(pending.command, pending.body, pending.maxAttempts)
  const state = onPartition(view.state, view.runAt, view.createdAt, queuePaused)
  return state === view.state ? view : { ...view, state, queuePaused }
}
