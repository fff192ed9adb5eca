/**
 * The commands of one partition, as its owner decides them: add, retry, remove and cancel a
 * job, define or delete a schedule, pause and resume the queue.
 *
 * Invariants:
 * - Only the partition's owner (its PartitionActor) calls in, one command at a time in offset
 *   order. Every decision goes through the owner's `apply`/`decide`, so the owner's
 *   PartitionState stays the only place a transition happens; this module keeps no state.
 * - A job id is never added twice: a command for a job the state holds changes nothing, and
 *   for an id the caller chose (`idempotent`) that left memory, the log is asked where it can
 *   (`recordsByKey`). Only such a look-up makes a command asynchronous.
 * - A command that cannot be carried out (undecodable, another queue's, no job id, unknown
 *   job, refused by the machine) is dead-lettered with its reason, never dropped silently.
 * - One handler per actor, made with it: handling a command creates no closure unless it must
 *   look its job up in the log first.
 */
import {
  type AddJob,
  type CommandEnvelope,
  ENVELOPE_VERSION,
  type EventEnvelope,
  type JobAdded,
  type JobEventBody,
  type QueueEventBody
} from "../../machines/schema.ts"
import { evolveJobView, isFinished, retriedJobOf, type JobView } from "../../projections/job-view.ts"
import type { PartitionState } from "../../projections/partition-state.ts"
import { decodeCommand, decodeEvent } from "../codec.ts"
import type { LogRecord } from "../log/event-log.ts"
import { CancelledError } from "./handler-run.ts"
import type { EngineContext } from "./engine-context.ts"
import type { ScheduleTicker } from "./schedule-ticker.ts"
import { toJob } from "../job.ts"
import { run } from "../run.ts"

export interface CommandHandlerDeps {
  readonly ctx: EngineContext
  readonly partition: number
  /** The partition's state (the owner's: a restore replaces it, so it is read on each use). */
  readonly state: () => PartitionState
  /**
   * Applies an event to the state, appends it and carries out its intents (the owner's
   * `apply`); returns the machine's reason when it refuses the event.
   */
  readonly apply: (envelope: EventEnvelope, afterDurable?: (after: JobView) => void) => string | undefined
  /** The next event of `view`'s job, decided now (the owner's `decide`). */
  readonly decide: (view: JobView, body: JobEventBody, afterDurable?: (after: JobView) => void) => string | undefined
  /** The partition's schedules (the owner's ticker). */
  readonly schedules: ScheduleTicker
  /** Dead-letters a refused command in the owner's next transaction. */
  readonly deadLetter: (key: string | null, value: string) => void
  /** Ends a cancelled job's running attempt, if it has one: aborted, its permit back, its progress and span ended. */
  readonly interrupt: (jobId: string, error: CancelledError) => void
  /** Asks the engine's pool for a scheduling pass. */
  readonly pump: () => void
}

export class CommandHandler {
  constructor(private readonly deps: CommandHandlerDeps) {}

  /** Decides what a command asks; returns a promise only when it must look a job up in the log first. */
  handle(record: LogRecord): Promise<void> | undefined {
    const { ctx } = this.deps
    // Commands appended by this process arrive with their envelope: no need to decode them.
    const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as CommandEnvelope } : decodeCommand(record.value)
    if (!decoded.ok) return this.refuse(record, decoded.reason)
    const command = decoded.value
    if (command.queue !== ctx.queue)
      return this.refuse(record, `command for queue '${command.queue}' on the topic of queue '${ctx.queue}'`)
    const body = command.body
    const state = this.deps.state()
    switch (body._tag) {
      case "AddJob": {
        if (command.jobId === null) return this.refuse(record, "AddJob without a job id")
        const jobId = command.jobId
        // Idempotent add: the first command with an id wins, later ones change nothing.
        if (state.get(jobId) !== undefined) return undefined
        if (body.idempotent !== true || ctx.log.recordsByKey === undefined) return this.addJob(jobId, command, body)
        // a removed id may be added again: it begins a new life
        return this.lookUp(jobId).then((known) => (known === undefined || known.state === "removed" ? this.addJob(jobId, command, body) : undefined))
      }
      case "RetryJob": {
        if (command.jobId === null) return this.refuse(record, "RetryJob without a job id")
        const jobId = command.jobId
        const held = state.get(jobId)
        if (held !== undefined || ctx.log.recordsByKey === undefined) return this.retryJob(record, jobId, held)
        return this.lookUp(jobId).then((found) => this.retryJob(record, jobId, found))
      }
      case "RemoveJob":
      case "CancelJob": {
        if (command.jobId === null) return this.refuse(record, `${body._tag} without a job id`)
        const jobId = command.jobId
        const act = (view: JobView | undefined) =>
          body._tag === "RemoveJob" ? this.removeJob(record, jobId, view) : this.cancelJob(record, jobId, view, body.reason)
        const held = state.get(jobId)
        if (held !== undefined || ctx.log.recordsByKey === undefined) return act(held)
        return this.lookUp(jobId).then(act)
      }
      case "UpsertSchedule":
      case "RemoveSchedule": {
        const { schedules } = this.deps
        const refused = body._tag === "UpsertSchedule" ? schedules.upsert(body.schedule, command.time) : schedules.remove(body.id)
        return refused === undefined ? undefined : this.refuse(record, refused)
      }
      case "PauseQueue":
        if (!state.queuePaused) this.decideQueue({ _tag: "QueuePaused" })
        return undefined
      case "ResumeQueue":
        if (state.queuePaused) {
          this.decideQueue({ _tag: "QueueResumed" })
          ctx.queueResumed()
        }
        return undefined
    }
  }

  /** A job that left memory, rebuilt from its events in the log (`undefined`: the log has none). */
  private async lookUp(jobId: string): Promise<JobView | undefined> {
    const { ctx } = this.deps
    const records = await run(ctx.log.recordsByKey!(ctx.topics.events, jobId))
    let view: JobView | undefined
    for (const record of records) {
      if (record.partition !== this.deps.partition) continue
      const decoded = decodeEvent(record.value)
      if (decoded.ok && decoded.value.jobId === jobId) view = evolveJobView(view, decoded.value as Parameters<typeof evolveJobView>[1])
    }
    return view
  }

  private addJob(jobId: string, command: CommandEnvelope, body: AddJob): undefined {
    const { ctx } = this.deps
    const now = Date.now()
    const added: { -readonly [K in keyof JobAdded]: JobAdded[K] } = {
      _tag: "JobAdded",
      name: body.name,
      data: body.data,
      priority: body.priority,
      runAt: command.time + body.delay,
      createdAt: command.time,
      maxAttempts: ctx.policy.attempts,
      queuePaused: this.deps.state().queuePaused
    }
    // the optional fields only when present (an absent one is absent from the JSON too); no
    // spread of a temporary object per field, in the path every job takes
    if (body.metadata !== undefined) added.metadata = body.metadata
    if (body.timeout !== undefined) added.timeout = body.timeout
    if (body.keep !== undefined) added.keep = body.keep
    if (body.schedule !== undefined) added.schedule = body.schedule
    if (body.trace !== undefined) added.trace = body.trace
    this.deps.apply({ v: ENVELOPE_VERSION, queue: ctx.queue, jobId, time: now, seq: 0, body: added })
    return undefined
  }

  private retryJob(record: LogRecord, jobId: string, view: JobView | undefined): undefined {
    if (view === undefined) return this.refuse(record, `RetryJob: unknown job '${jobId}'`)
    // A failed job's JobRetried carries the job, so a reader that let it go can take it back.
    const body = isFinished(view.state) ? { _tag: "JobRetried" as const, job: retriedJobOf(view) } : { _tag: "JobRetried" as const }
    const refused = this.deps.decide(view, body)
    if (refused !== undefined) this.refuse(record, `RetryJob: ${refused}`)
    return undefined
  }

  private removeJob(record: LogRecord, jobId: string, view: JobView | undefined): undefined {
    if (view === undefined) return this.refuse(record, `RemoveJob: unknown job '${jobId}'`)
    const refused = this.deps.decide(view, { _tag: "JobRemoved", from: view.state })
    if (refused !== undefined) this.refuse(record, `RemoveJob: ${refused}`)
    return undefined
  }

  /**
   * Cancels a running job at once: its AbortSignal fires, its permit goes back and it fails
   * for good with a CancelledError; whatever its handler does afterwards is ignored.
   */
  private cancelJob(record: LogRecord, jobId: string, view: JobView | undefined, reason: string | undefined): undefined {
    if (view === undefined) return this.refuse(record, `CancelJob: unknown job '${jobId}'`)
    if (view.state !== "active") return this.refuse(record, `CancelJob: job '${jobId}' is ${view.state}; only a running job can be cancelled`)
    const error = new CancelledError(reason === undefined ? "the job was cancelled" : `the job was cancelled: ${reason}`)
    this.deps.interrupt(jobId, error)
    const { ctx } = this.deps
    const { onFailed } = ctx.hooks
    this.deps.decide(
      view,
      { _tag: "JobCancelled", error: { name: error.name, message: error.message } },
      onFailed && ((after) => ctx.runHook("onFailed", () => onFailed(toJob(after), error)))
    )
    this.deps.pump()
    return undefined
  }

  private decideQueue(body: QueueEventBody): void {
    this.deps.apply({ v: ENVELOPE_VERSION, queue: this.deps.ctx.queue, jobId: null, time: Date.now(), seq: this.deps.state().queueSeq + 1, body })
  }

  private refuse(record: LogRecord, reason: string): undefined {
    this.deps.deadLetter(
      record.key,
      JSON.stringify({ reason, source: `${record.topic}/${record.partition}`, offset: record.offset, raw: record.value.slice(0, 65_536), time: Date.now() })
    )
    return undefined
  }
}
