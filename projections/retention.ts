/**
 * Which finished jobs a partition's state keeps in memory. The log keeps every job's whole
 * history whatever this says; retention only bounds what a process holds.
 *
 * Invariants:
 * - Deterministic in the events: a rule is applied when a job finishes, with that event's
 *   time as "now", so replaying the same events under the same retention keeps the same
 *   jobs (a snapshot plus its tail equals a full replay).
 * - As in BullMQ's `removeOnComplete`/`removeOnFail`: the rule of the job that just finished
 *   (its own `keep`, else the queue's) trims its state's list, oldest first. Jobs leave in
 *   the order they finished.
 */
import type { KeepPolicy, KeepRule } from "../machines/schema.ts"

/** A rule with both bounds set (`Infinity`: no bound). */
export interface Bound {
  readonly count: number
  readonly age: number
}

/** The queue's retention: a bound for completed and one for failed jobs, per partition. */
export interface Retention {
  readonly completed: Bound
  readonly failed: Bound
}

/** Keep every finished job (replay and audits, which want them all). */
export const KEEP_ALL: Retention = Object.freeze({
  completed: Object.freeze({ count: Infinity, age: Infinity }),
  failed: Object.freeze({ count: Infinity, age: Infinity })
})

/**
 * The default: the last 1,000 completed and 5,000 failed jobs per partition — a few MB,
 * whatever the history. Failed jobs are kept longer: they are the ones people inspect and retry.
 */
export const DEFAULT_RETENTION: Retention = Object.freeze({
  completed: Object.freeze({ count: 1_000, age: Infinity }),
  failed: Object.freeze({ count: 5_000, age: Infinity })
})

/** A job's own rule for `state` over the queue's (fields it leaves out come from the queue's). */
export const boundFor = (retention: Retention, state: "completed" | "failed", own: KeepPolicy | undefined): Bound => {
  const base = retention[state]
  const rule: KeepRule | undefined = own?.[state]
  if (rule === undefined) return base
  return { count: rule.count ?? base.count, age: rule.age ?? base.age }
}

/** Whether a finished job that ended at `endedAt` stays, at position `fromNewest` (0 = newest), under `bound` at `now`. */
export const stays = (bound: Bound, fromNewest: number, endedAt: number, now: number): boolean =>
  fromNewest < bound.count && now - endedAt <= bound.age
