/**
 * What a partition actor needs from the engine that owns it: one value per queue engine.
 */
import type { Retention } from "../../projections/retention.ts"
import type { EventLogService, QueueTopics } from "../log/event-log.ts"
import type { JobHandler, QueueHooks } from "../types.ts"
import type { RetryPolicy } from "./backoff.ts"
import type { SnapshotEvery } from "./snapshot-cadence.ts"
import type { WorkerPool } from "./worker-pool.ts"

export interface EngineContext {
  readonly queue: string
  readonly log: EventLogService
  readonly group: string
  readonly topics: QueueTopics
  readonly pool: WorkerPool
  readonly policy: RetryPolicy
  /** Which finished jobs stay in the partitions' memory. */
  readonly retention: Retention
  /** When partitions write snapshots. */
  readonly snapshotEvery: SnapshotEvery
  /** Delay before retry k (1-based), derived from the policy's Schedule. */
  readonly delayFor: (k: number) => number
  /** Per-attempt timeout in ms; undefined means none. */
  readonly timeoutMs: number | undefined
  readonly hooks: QueueHooks
  readonly handlerFor: (name: string) => JobHandler | undefined
  /** Runs a user hook; a hook that throws or rejects is reported, never propagated. */
  readonly runHook: (name: keyof QueueHooks, hook: () => unknown) => void
  /** Called by a partition that has just resumed the queue (see Engine.queueResumed). */
  readonly queueResumed: () => void
  /** Reports a problem the engine survived (log errors, hook errors, undecodable events). */
  readonly report: (error: unknown) => void
}
