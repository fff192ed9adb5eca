/**
 * A JobQueue's commands, as its producer side writes them: `add`/`addBulk` inputs checked and
 * turned into AddJob records, the other commands encoded, queue-wide ones addressed to every
 * partition, and all of them appended to the queue's commands topic.
 *
 * Invariants:
 * - An add never depends on a read model: it takes the pause flag only where this process
 *   already opens one, and never opens one or waits for it to catch up.
 * - One call, one append: the jobs of an `addBulk` are all durable when it resolves, or none
 *   was added; an input that fails its checks throws before anything is appended.
 * - An id of the caller's own that names a job this process can find is not added again: the
 *   existing job is returned (idempotent add; the engine refuses a second add as well).
 * - Made once per queue, in JobQueue's constructor; it keeps no state of its own.
 */
import { run } from "./run.ts"
import { newJobId } from "./job-id.ts"
import type { CommandBody } from "../machines/schema.ts"
import { addJobRecord, commandRecord } from "./command-record.ts"
import type { JobView } from "../projections/job-view.ts"
import { activeTraceContext } from "./engine/tracing.ts"
import { type EventLogService, type OutgoingRecord, topicsOf } from "./log/event-log.ts"
import { toJob } from "./job.ts"
import { InvalidOptionError, resolveJobInput } from "./options.ts"
import type { ReadModel } from "./read/read-model.ts"
import type { Job, JobOptions } from "./types.ts"

export interface QueueCommandsDeps {
  /** The queue's name. */
  readonly queue: string
  /** The attempts a job gets (the queue's retry policy). */
  readonly maxAttempts: number
  /** The log once open, with the queue's partition count; rejects once the queue is closed. */
  readonly opened: () => Promise<{ readonly log: EventLogService; readonly partitions: number }>
  /** The read model, if this process opens one (never opened here). */
  readonly readModelOpening: () => Promise<ReadModel> | undefined
  /** A job by id as this process can tell (see JobQueue's lookUp). */
  readonly lookUp: (id: string) => Promise<JobView | undefined>
  /** A log failure as the public API throws it (QueueLogError). */
  readonly asQueueError: (e: unknown) => Error
  /** Problems the queue survived (see JobQueue's report). */
  readonly report: (e: unknown) => void
}

export class QueueCommands<Data = any> {
  constructor(private readonly deps: QueueCommandsDeps) {}

  async addMany(items: ReadonlyArray<{ name: string; data: Data; opts?: JobOptions }>): Promise<Array<Job<Data>>> {
    const traceAtCall = activeTraceContext()
    const inputs = items.map((item, i) => {
      try {
        if (typeof item !== "object" || item === null) throw new InvalidOptionError("each job must be an object { name, data, opts? }")
        return resolveJobInput(item.name, item.data, item.opts)
      } catch (e) {
        if (items.length === 1) throw e
        throw new InvalidOptionError(`addBulk item ${i}: ${(e as Error).message}`)
      }
    })
    await this.deps.opened()
    // the pause flag, where this process knows it without opening or waiting for anything
    // (an add never depends on a read model: it must not fail or wait because one cannot catch up)
    const opening = this.deps.readModelOpening()
    const known = opening === undefined ? undefined : await opening.catch(() => undefined)
    const now = Date.now()
    // the caller's trace context, taken before any await of ours could lose it
    const trace = traceAtCall
    const records: Array<OutgoingRecord> = []
    const jobs: Array<Job<Data>> = []
    for (const input of inputs) {
      // an id of the caller's own: the job it names, if this process can tell (see lookUp)
      const existing = input.jobId === undefined ? undefined : await this.deps.lookUp(input.jobId)
      if (existing !== undefined) {
        jobs.push(toJob(existing))
        continue // idempotent add: the job with this id already exists
      }
      const added = addJobRecord(this.deps.queue, input, input.jobId ?? newJobId(now), now, this.deps.maxAttempts, known?.queuePaused ?? false, trace)
      records.push(added.record)
      jobs.push(added.job as Job<Data>)
    }
    await this.appendCommands(records)
    return jobs
  }

  /** Encodes one command of this queue (see commandRecord). */
  command(key: string | null, body: CommandBody, jobId: string | null, partition?: number, time = Date.now()): OutgoingRecord {
    return commandRecord(this.deps.queue, key, body, jobId, partition, time)
  }

  async appendCommands(records: ReadonlyArray<OutgoingRecord>): Promise<void> {
    const { log } = await this.deps.opened()
    try {
      await run(log.append(topicsOf(this.deps.queue).commands, records))
    } catch (e) {
      throw this.deps.asQueueError(e)
    }
  }

  /** Queue-wide commands reach every partition, so every owner applies them. */
  queueCommand(body: CommandBody): Promise<void> {
    const sent = this.deps.opened().then(({ partitions }) =>
      this.appendCommands(Array.from({ length: partitions }, (_, p) => this.command(null, body, null, p)))
    )
    sent.catch((e) => this.deps.report(e))
    return sent
  }
}
