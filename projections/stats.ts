/**
 * Counts of a queue's jobs by state: a pure reducer over state changes.
 *
 * Invariant: the counts always equal a recount of the job views by state (the
 * projection property test checks it): every change of one job from `from` to `to` moves
 * exactly one unit. A removed job counts nowhere.
 */
import type { JobStateName } from "../machines/schema.ts"

/** How many jobs of a queue are in each state. */
export interface QueueStats {
  readonly waiting: number
  readonly active: number
  readonly completed: number
  readonly failed: number
  readonly delayed: number
  readonly paused: number
}

/** No jobs. */
export const emptyStats: QueueStats = Object.freeze({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })

/**
 * The stats after one job moved from `from` to `to` (`undefined` = did not exist / no
 * longer exists). Returns `stats` itself when `from === to`.
 */
export function evolveStats(stats: QueueStats, from: JobStateName | undefined, to: JobStateName | undefined): QueueStats {
  if (from === to) return stats
  const next = { ...stats }
  moveCount(next, from, to)
  return next
}

/** Counts a holder owns and changes in place (see `moveCount`). */
export type StatsTally = { -readonly [S in keyof QueueStats]: number }

/**
 * `evolveStats` in place, for a holder that owns its tally and never hands it out (it gives
 * copies): the same unit moved, without a new object per change (an engine makes six per job).
 */
export function moveCount(tally: StatsTally, from: JobStateName | undefined, to: JobStateName | undefined): void {
  if (from === to) return
  // a removed job is out of the queue: counted nowhere, like one that does not exist
  if (from !== undefined && from !== "removed") tally[from] -= 1
  if (to !== undefined && to !== "removed") tally[to] += 1
}

/** The stats of a set of jobs, counted from scratch. */
export function countStats(states: Iterable<JobStateName>): QueueStats {
  const next = { ...emptyStats }
  for (const s of states) if (s !== "removed") next[s] += 1
  return next
}

/** The sum of two sets of counts. */
export function addStats(a: QueueStats, b: QueueStats): QueueStats {
  return {
    waiting: a.waiting + b.waiting,
    active: a.active + b.active,
    completed: a.completed + b.completed,
    failed: a.failed + b.failed,
    delayed: a.delayed + b.delayed,
    paused: a.paused + b.paused
  }
}
