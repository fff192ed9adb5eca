/**
 * A queue as its partitions' states: each job lives on one partition (commands and events
 * are co-partitioned by job id), so a job is looked up in each and the counts are summed.
 */
import type { JobStateName } from "../machines/schema.ts"
import type { JobView } from "./job-view.ts"
import { PartitionState, type ScheduleState } from "./partition-state.ts"
import type { Retention } from "./retention.ts"
import { addStats, emptyStats, type QueueStats } from "./stats.ts"

export class QueueState {
  readonly partitions: Array<PartitionState>

  constructor(partitions: number, retention?: Retention) {
    this.partitions = Array.from({ length: partitions }, () => new PartitionState(retention))
  }

  /** The state of partition `p`. */
  partition(p: number): PartitionState {
    const state = this.partitions[p]
    if (state === undefined) throw new Error(`no partition ${p} (the queue has ${this.partitions.length})`)
    return state
  }

  get(id: string): JobView | undefined {
    for (const p of this.partitions) {
      const view = p.get(id)
      if (view !== undefined) return view
    }
    return undefined
  }

  list(state?: JobStateName): Array<JobView> {
    return this.partitions.flatMap((p) => p.list(state))
  }

  stats(): QueueStats {
    return this.partitions.reduce((sum, p) => addStats(sum, p.stats()), emptyStats)
  }

  /** The live schedules of every partition. */
  schedules(): Array<ScheduleState> {
    return this.partitions.flatMap((p) => p.schedules())
  }

  /** Jobs held in memory, over all partitions. */
  get size(): number {
    return this.partitions.reduce((n, p) => n + p.size, 0)
  }
}
