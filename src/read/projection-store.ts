/**
 * The default QueueStore: job views held by this process's read model (in memory, rebuilt
 * from the log when the queue opens). Every query waits for the read model to catch up
 * with the log first.
 */
import type { JobStateName } from "../../machines/schema.ts"
import { toJob } from "../job.ts"
import type { Job, QueueStats, QueueStore } from "../types.ts"
import type { ReadModel } from "./read-model.ts"

export class ProjectionStore implements QueueStore {
  constructor(private readonly readModel: () => Promise<ReadModel>) {}

  /** Views are written by the projection, never directly: this is a no-op. */
  enqueue(): void {}
  /** Views are written by the projection, never directly: this is a no-op. */
  update(): void {}

  async get(id: string): Promise<Job | undefined> {
    const view = (await this.readModel()).get(id)
    return view === undefined ? undefined : toJob(view)
  }

  async list(state?: JobStateName): Promise<Array<Job>> {
    return (await this.readModel()).list(state).map(toJob)
  }

  async stats(): Promise<QueueStats> {
    return (await this.readModel()).stats()
  }
}
