/**
 * The default QueueStore: job views held by this process's read model (live jobs and
 * finished ones within retention, restored from snapshots plus the tail). Every query waits
 * for the read model to catch up with the log first. A finished job that left memory is
 * looked up in the log where the log can (SQLite, memory); on Kafka it is not found here
 * (use `replayQueue`, or a persistent store). `list` returns the held jobs only.
 */
import type { JobStateName } from "../../machines/schema.ts"
import type { JobView } from "../../projections/job-view.ts"
import { toJob } from "../job.ts"
import type { Job, QueueStats, QueueStore } from "../types.ts"
import type { ReadModel } from "./read-model.ts"

export class ProjectionStore implements QueueStore {
  constructor(
    private readonly readModel: () => Promise<ReadModel>,
    /** A job the read model does not hold, from the log (`undefined` where the log cannot tell). */
    private readonly lookUp: (id: string) => Promise<JobView | undefined>
  ) {}

  /** Views are written by the projection, never directly: this is a no-op. */
  enqueue(): void {}
  /** Views are written by the projection, never directly: this is a no-op. */
  update(): void {}

  async get(id: string): Promise<Job | undefined> {
    const view = (await this.readModel()).get(id) ?? (await this.lookUp(id))
    return view === undefined ? undefined : toJob(view)
  }

  async list(state?: JobStateName): Promise<Array<Job>> {
    return (await this.readModel()).list(state).map(toJob)
  }

  async stats(): Promise<QueueStats> {
    return (await this.readModel()).stats()
  }
}
