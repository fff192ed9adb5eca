/**
 * A JobQueue's read side: its read model, opened on first need, and the lookups of a job by
 * id that its control commands, `waitFor`, `store` and idempotent adds make.
 *
 * Invariants:
 * - The read model opens at most once, on first need (a read, a listener of a job event,
 *   `process()`, a custom store to feed), and is kept until the queue closes: a producer that
 *   needs none never replays.
 * - `readModel()` answers once the read model caught up with everything in the log at the
 *   time of the call.
 * - `lookUp` never opens the read model; `findJob` opens it only on a log that cannot look
 *   jobs up by id (Kafka).
 * - A failure reaches the caller as the public API throws it (`asQueueError`).
 */
import { engineGroupOf, type EventLogService, topicsOf } from "./log/event-log.ts"
import type { JobView } from "../projections/job-view.ts"
import { toJob } from "./job.ts"
import { InvalidOptionError, type ResolvedQueueOptions } from "./options.ts"
import { type Change, ReadModel } from "./read/read-model.ts"
import { canLookUp, lookUpJob } from "./read/job-lookup.ts"
import { isFollowingStore } from "./stores/following.ts"

export interface QueueReadsDeps {
  /** The queue's name. */
  readonly queue: string
  readonly options: ResolvedQueueOptions
  /** The log once open, with the queue's partition count; rejects once the queue is closed. */
  readonly opened: () => Promise<{ readonly log: EventLogService; readonly partitions: number }>
  /** Whether `close()` was called. */
  readonly closed: () => boolean
  /** Where the read model's changes go (listeners, `waitFor`s). */
  readonly announce: (change: Change) => void
  /** A failure as the public API throws it (QueueLogError). */
  readonly asQueueError: (e: unknown) => Error
  /** Problems the queue survived (see JobQueue's report). */
  readonly report: (e: unknown) => void
}

export class QueueReads {
  /** Opened on first need (see the invariants), then kept until `close()`. */
  private readModelOpening: Promise<ReadModel> | undefined

  constructor(private readonly deps: QueueReadsDeps) {}

  /** The read model as it opens, if something needed it yet (`undefined`: never opened). */
  get opening(): Promise<ReadModel> | undefined {
    return this.readModelOpening
  }

  private openReadModel(): Promise<ReadModel> {
    this.readModelOpening ??= this.deps.opened().then(({ log, partitions }) => {
      const { queue, options } = this.deps
      const topics = topicsOf(queue)
      const sink = isFollowingStore(options.store) ? undefined : options.store
      return ReadModel.open({
        log,
        queue,
        topic: topics.events,
        commandsTopic: topics.commands,
        group: engineGroupOf(queue),
        partitions,
        retention: options.retention,
        pendingMaxAttempts: options.policy.attempts,
        ...(sink === undefined
          ? {}
          : { sink: (before: JobView | undefined, after: JobView) => (before === undefined ? sink.enqueue(toJob(after)) : sink.update(toJob(after))) }),
        announce: (change: Change) => this.deps.announce(change),
        report: (e: unknown) => this.deps.report(e)
      })
    })
    return this.readModelOpening
  }

  /** Opens the read model in the background (its failure is reported, and rethrown to whoever awaits it). */
  openReadModelSoon(): void {
    if (this.readModelOpening !== undefined || this.deps.closed()) return
    this.openReadModel().catch((e) => this.deps.report(this.deps.asQueueError(e)))
  }

  /** The read model, caught up with everything in the log at the time of the call. */
  async readModel(): Promise<ReadModel> {
    if (this.deps.closed()) throw new InvalidOptionError(`queue '${this.deps.queue}' is closed`)
    let readModel: ReadModel
    try {
      readModel = await this.openReadModel()
    } catch (e) {
      throw this.deps.asQueueError(e)
    }
    try {
      await readModel.caughtUp()
    } catch (e) {
      throw this.deps.asQueueError(e)
    }
    return readModel
  }

  /**
   * The job `id` for a control command (retry, remove, cancel): looked up as `lookUp` does,
   * and on a log that cannot look jobs up (Kafka) through the read model, opened for it.
   * Rejects when there is no such job.
   */
  async findJob(id: string): Promise<JobView> {
    const { log } = await this.deps.opened()
    const view = this.readModelOpening === undefined && !canLookUp(log) ? (await this.readModel()).get(id) : await this.lookUp(id)
    if (view === undefined) throw new InvalidOptionError(`job '${id}' not found in queue '${this.deps.queue}'`)
    return view
  }

  /**
   * A job by id without the read model's help: from the read model when it is open, else
   * from the log by an indexed lookup (SQLite, memory); `undefined` where neither can tell,
   * and for a removed job (it is out of the queue; `waitFor` asks with `removed: true`).
   */
  async lookUp(id: string, options: { readonly removed?: boolean } = {}): Promise<JobView | undefined> {
    const { log } = await this.deps.opened()
    if (this.readModelOpening !== undefined) {
      const held = (await this.readModel()).get(id)
      if (held !== undefined) return held
    }
    const found = canLookUp(log) ? await lookUpJob(log, this.deps.queue, id, this.deps.options.policy.attempts) : undefined
    return found?.state === "removed" && options.removed !== true ? undefined : found
  }
}
