/**
 * A store that follows the events topic itself, instead of being fed by the read model.
 *
 * Why: the read model feeds a custom store as a sink from the partition's latest snapshot
 * plus the tail, so a store that was offline longer than one snapshot interval would never
 * hear of the jobs that finished (and left memory) in between. A following store keeps its
 * own position per partition, next to its rows, and reads the log from there: it cannot
 * miss an event, whatever the snapshots and retention do.
 *
 * Contract, as `JobQueue` relies on it:
 * - `JobQueue` calls `follow(source)` once, in its constructor, instead of feeding the
 *   store's `enqueue`/`update` (which it then never calls). The log comes as a promise
 *   (`opened`): from that call on the store knows its queue and that it is being followed,
 *   so a query made right after `new JobQueue(…)` waits for the catch-up instead of failing.
 * - `follow` resolves once following has started (not caught up); a failure to start is a
 *   rejection, reported by the queue. Problems met later are reported through
 *   `source.report`, and the follower keeps going (it retries what failed).
 * - `stop()` of the returned follower ends the subscriptions before the queue releases its
 *   log; `close()` of the store releases the store's own resources (its connection pool).
 */
import type { EventLogService, QueueTopics } from "../log/event-log.ts"
import type { QueueStore } from "../types.ts"

/** The queue's log once open, and the partitions of its events topic (the same as the commands topic's). */
export interface OpenedLog {
  readonly log: EventLogService
  readonly partitions: number
}

/** What a following store is given: the queue, where its events are, and its log (once open). */
export interface FollowSource {
  readonly queue: string
  readonly topics: QueueTopics
  /** Resolves when the queue's log is open; a rejection means it could not open (the queue reports that itself). */
  readonly opened: Promise<OpenedLog>
  /** Problems the follower survived (the queue emits them as `error`). */
  readonly report: (error: unknown) => void
}

/** A running subscription of a following store. */
export interface StoreFollower {
  /** Catches up with what is in the log now (bounded wait), then stops following. */
  stop(): Promise<void>
}

/** A QueueStore that follows the log from positions of its own (see the module comment). */
export interface FollowingStore<Data = any> extends QueueStore<Data> {
  follow(source: FollowSource): Promise<StoreFollower>
  close(): Promise<void>
}

/** True for a store that wants to follow the log itself. */
export const isFollowingStore = (store: QueueStore | undefined): store is FollowingStore =>
  store !== undefined && typeof (store as Partial<FollowingStore>).follow === "function"
