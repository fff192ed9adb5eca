/**
 * The actor owning one partition of a queue: the single writer of its events.
 *
 * Invariants:
 * - Only this actor decides transitions of its jobs, and only with the job machine
 *   (`stepJob`/`beginJob`); every decided event is applied to its own projection at once
 *   and handed to the Appender, which writes them in decision order.
 * - State in memory is always "the log so far plus what the appender holds": restoring from
 *   the log after a crash loses only undecided work, never a decided-and-durable event.
 * - A job runs only while its last decided event is `JobStarted`; a permit of the pool is
 *   held exactly while one of its jobs is running.
 * - Commands are consumed in offset order; their offset commits with the events they caused.
 */
import {
  type AddJob,
  type CommandEnvelope,
  ENVELOPE_VERSION,
  type EventEnvelope,
  type JobEventBody,
  type QueueEventBody
} from "../../machines/schema.ts"
import { beginJob, type JobIntent, retriesLeft, stepJob } from "../../machines/job-machine.ts"
import { QueueProjection } from "../../projections/queue-projection.ts"
import type { JobView } from "../../projections/job-view.ts"
import { decodeCommand, decodeEvent, encode } from "../codec.ts"
import type { LogRecord } from "../log/event-log.ts"
import { Appender } from "./appender.ts"
import { type Attempt, type Outcome, startAttempt } from "./handler-run.ts"
import { type ReadyEntry, type ReadyJob, ReadyQueue } from "./ready-queue.ts"
import { TimerHeap } from "./timer-heap.ts"
import type { EngineContext } from "./engine-context.ts"
import { toJob } from "../job.ts"
import { run } from "../run.ts"

const RESTORE_BATCH = 10_000

export class PartitionActor {
  private readonly projection = new QueueProjection()
  private readonly ready: ReadyQueue
  private readonly timers: TimerHeap
  private readonly appender: Appender
  private readonly running = new Map<string, Attempt>()
  private readonly unregister: () => void
  private stopped = false
  /** Settles onRecords batches not yet durable when the partition is lost (see halt). */
  private readonly undelivered = new Set<() => void>()

  constructor(
    private readonly ctx: EngineContext,
    readonly partition: number
  ) {
    this.ready = new ReadyQueue(ctx.pool.nextArrival)
    this.timers = new TimerHeap((ids) => this.promote(ids))
    this.appender = new Appender({
      log: ctx.log,
      group: ctx.group,
      partition,
      topics: ctx.topics,
      onFenced: (error) => {
        ctx.report(error)
        this.halt()
      },
      onError: (error) => ctx.report(error)
    })
    this.unregister = ctx.pool.register({ head: () => this.head(), startHead: () => this.startHead() })
  }

  /** Rebuilds the partition's jobs from its events, then returns stalled jobs to the queue. */
  async restore(): Promise<void> {
    const { log, topics } = this.ctx
    for (let from = 0; ; ) {
      const batch = await run(log.read(topics.events, this.partition, from, RESTORE_BATCH))
      for (const record of batch) {
        const decoded = decodeEvent(record.value)
        if (decoded.ok) this.projection.apply(decoded.value)
        else this.ctx.report(new Error(`skipping undecodable event at offset ${record.offset}: ${decoded.reason}`))
      }
      if (batch.length < RESTORE_BATCH) break
      from = batch[batch.length - 1]!.offset + 1
    }
    for (const view of this.projection.list("waiting")) this.ready.push(view)
    for (const view of this.projection.list("paused")) this.ready.push(view)
    for (const view of this.projection.list("delayed")) this.timers.schedule(view.id, view.runAt)
    // The previous owner died with these running: hand them back (counted, bounded by the machine).
    for (const view of this.projection.list("active")) this.decide(view, { _tag: "JobStalled" })
    this.pump()
  }

  /** Handles a batch of command records in offset order. Resolves when they are durable. */
  onRecords = (records: ReadonlyArray<LogRecord>): Promise<void> => {
    if (this.stopped || records.length === 0) return Promise.resolve()
    for (const record of records) this.handleCommand(record)
    const durable = new Promise<void>((resolve) => {
      this.undelivered.add(resolve)
      this.appender.commit(records[records.length - 1]!.offset + 1, () => {
        this.undelivered.delete(resolve)
        resolve()
      })
    })
    this.pump()
    return durable
  }

  /**
   * Stops taking jobs, waits up to `graceMs` for running ones, then interrupts the rest and
   * hands them back as stalled; resolves when everything decided is durable.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.timers.stop()
    const deadline = Date.now() + graceMs
    while (this.running.size > 0 && Date.now() < deadline && !this.appender.isFenced)
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, deadline - Date.now()))))
    for (const [id, attempt] of [...this.running]) {
      this.running.delete(id)
      attempt.abort(new Error("the engine stopped before the job finished: it was handed back and will run again"))
      this.ctx.pool.release()
      const view = this.projection.get(id)
      if (view !== undefined && view.state === "active") this.decide(view, { _tag: "JobStalled" })
    }
    this.unregister()
    await this.appender.drain()
  }

  /** Fenced or failed for good: forget everything without writing. */
  private halt(): void {
    this.stopped = true
    this.timers.stop()
    for (const [, attempt] of this.running) {
      attempt.abort(new Error("this engine lost the partition: another engine owns the job now"))
      this.ctx.pool.release()
    }
    this.running.clear()
    this.unregister()
    // Those batches will never be durable here; the new owner consumes them again. Ending
    // the wait lets the log stop delivering to us instead of waiting forever.
    for (const settle of this.undelivered) settle()
    this.undelivered.clear()
  }

  // ------------------------------------------------------------------ commands

  private handleCommand(record: LogRecord): void {
    // Commands appended by this process arrive with their envelope: no need to decode them.
    const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as CommandEnvelope } : decodeCommand(record.value)
    if (!decoded.ok) return this.refuse(record, decoded.reason)
    const command = decoded.value
    if (command.queue !== this.ctx.queue)
      return this.refuse(record, `command for queue '${command.queue}' on the topic of queue '${this.ctx.queue}'`)
    const body = command.body
    switch (body._tag) {
      case "AddJob":
        return this.addJob(record, command, body)
      case "RetryJob": {
        const view = command.jobId === null ? undefined : this.projection.get(command.jobId)
        if (view === undefined) return this.refuse(record, `RetryJob: unknown job '${command.jobId}'`)
        const refused = this.decide(view, { _tag: "JobRetried" })
        if (refused !== undefined) this.refuse(record, `RetryJob: ${refused}`)
        return
      }
      case "PauseQueue":
        if (!this.projection.queuePaused) this.decideQueue({ _tag: "QueuePaused" })
        return
      case "ResumeQueue":
        if (this.projection.queuePaused) {
          this.decideQueue({ _tag: "QueueResumed" })
          this.ctx.queueResumed()
        }
        return
    }
  }

  private addJob(record: LogRecord, command: CommandEnvelope, body: AddJob): void {
    if (command.jobId === null) return this.refuse(record, "AddJob without a job id")
    // Idempotent add: the first command with an id wins, later ones change nothing.
    if (this.projection.get(command.jobId) !== undefined) return
    const now = Date.now()
    const added = {
      _tag: "JobAdded" as const,
      name: body.name,
      data: body.data,
      priority: body.priority,
      runAt: command.time + body.delay,
      createdAt: command.time,
      maxAttempts: this.ctx.policy.attempts,
      queuePaused: this.projection.queuePaused,
      ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
      ...(body.timeout === undefined ? {} : { timeout: body.timeout })
    }
    const { intents } = beginJob(added, now)
    this.record({ v: ENVELOPE_VERSION, queue: this.ctx.queue, jobId: command.jobId, time: now, seq: 0, body: added })
    this.runIntents({ id: command.jobId, priority: body.priority, runAt: added.runAt }, intents)
  }

  private refuse(record: LogRecord, reason: string): void {
    this.appender.deadLetter(
      record.key,
      JSON.stringify({ reason, source: `${record.topic}/${record.partition}`, offset: record.offset, raw: record.value.slice(0, 65_536), time: Date.now() })
    )
  }

  // ------------------------------------------------------------------ transitions

  /**
   * Steps `view` through the machine with `body`; on success records the event and runs the
   * intents. Returns the machine's reason when the transition is refused.
   */
  private decide(view: JobView, body: JobEventBody, afterDurable?: (after: JobView) => void): string | undefined {
    const step = stepJob(view, body)
    if (!step.ok) return step.reason
    this.record(
      { v: ENVELOPE_VERSION, queue: this.ctx.queue, jobId: view.id, time: Date.now(), seq: view.seq + 1, body },
      afterDurable
    )
    this.runIntents(view, step.intents)
    return undefined
  }

  private decideQueue(body: QueueEventBody): void {
    const envelope: EventEnvelope = {
      v: ENVELOPE_VERSION,
      queue: this.ctx.queue,
      jobId: null,
      time: Date.now(),
      seq: this.projection.queueSeq + 1,
      body
    }
    const changes = this.projection.apply(envelope)
    this.appender.push(null, encode(envelope), envelope)
    for (const { before, after } of changes)
      if (after.state === "waiting" && before?.state !== "waiting") this.ready.push(after)
  }

  /** Applies to the projection, queues for the log; `afterDurable` gets the view as decided. */
  private record(envelope: EventEnvelope, afterDurable?: (after: JobView) => void): void {
    this.projection.apply(envelope)
    const after = envelope.jobId === null ? undefined : this.projection.get(envelope.jobId)
    // A job held by a pause queues now; head() passes over the whole queue until the resume.
    if (after !== undefined && after.state === "paused") this.ready.push(after)
    this.appender.push(
      envelope.jobId,
      encode(envelope),
      envelope,
      afterDurable === undefined || after === undefined ? undefined : () => afterDurable(after)
    )
  }

  private runIntents(job: ReadyJob, intents: ReadonlyArray<JobIntent>): void {
    for (const intent of intents) {
      if (intent.type === "enqueue") this.ready.push(job)
      else if (intent.type === "schedule") this.timers.schedule(job.id, intent.runAt)
    }
  }

  private promote(ids: ReadonlyArray<string>): void {
    if (this.stopped) return
    for (const id of ids) {
      const view = this.projection.get(id)
      // Stale timer entries (job already promoted or rescheduled later) are skipped.
      if (view === undefined || view.state !== "delayed" || view.runAt > Date.now()) continue
      this.decide(view, { _tag: "JobPromoted" })
    }
    this.pump()
  }

  // ------------------------------------------------------------------ running jobs

  /** Whether this partition holds the queue paused (a resume may still be on its way). */
  get queuePaused(): boolean {
    return !this.stopped && this.projection.queuePaused
  }

  /** Asks the engine's pool for a scheduling pass; starts happen there, best job first. */
  private pump(): void {
    this.ctx.pool.schedule()
  }

  /** The job this partition would start next; drops entries that are no longer waiting. */
  private head(): ReadyEntry | undefined {
    if (this.stopped || this.projection.queuePaused) return undefined
    for (;;) {
      const entry = this.ready.peek()
      if (entry === undefined) return undefined
      const view = this.projection.get(entry.id)
      if (view !== undefined && view.state === "waiting") return entry
      this.ready.pop() // left waiting while queued (paused, say): skip it
    }
  }

  private startHead(): void {
    const id = this.ready.pop()!
    this.start(this.projection.get(id)!)
  }

  private start(view: JobView): void {
    const refused = this.decide(view, { _tag: "JobStarted", attempt: view.attemptsMade })
    if (refused !== undefined) {
      this.ctx.report(new Error(`engine bug: could not start job ${view.id}: ${refused}`))
      this.ctx.pool.release()
      return
    }
    const active = this.projection.get(view.id)!
    const handler = this.ctx.handlerFor(active.name)
    const job = toJob(active)
    const attempt = startAttempt(
      (lazy) => {
        if (handler === undefined) throw new Error(`no handler registered for job name '${active.name}' on queue '${this.ctx.queue}'`)
        Object.defineProperty(job, "signal", { get: () => lazy.signal, enumerable: false })
        // A handler that declares a second parameter gets the signal; others can read job.signal.
        return handler.length >= 2 ? handler(job, lazy.signal) : (handler as (job: unknown) => unknown)(job)
      },
      active.timeout ?? this.ctx.timeoutMs,
      (outcome) => this.finish(view.id, attempt, outcome)
    )
    this.running.set(view.id, attempt)
  }

  private finish(id: string, attempt: Attempt, outcome: Outcome): void {
    // A job handed back (stop/halt) is no longer ours to decide.
    if (this.running.get(id) !== attempt) return
    this.running.delete(id)
    this.ctx.pool.release()
    const view = this.projection.get(id)
    if (view === undefined || view.state !== "active") return
    // Hooks run once their event is durable; no closure at all when the hook is absent.
    const { onComplete, onRetry, onFailed } = this.ctx.hooks
    if (outcome.ok) {
      const result = outcome.result
      this.decide(
        view,
        { _tag: "JobCompleted", result },
        onComplete && ((after) => this.ctx.runHook("onComplete", () => onComplete(toJob(after), result)))
      )
    } else if (retriesLeft(view)) {
      const attemptNo = view.attemptsMade + 1
      const delay = this.ctx.delayFor(attemptNo)
      const body = { _tag: "JobRetrying" as const, error: outcome.error, attempt: attemptNo, delay, runAt: Date.now() + delay }
      this.decide(view, body, onRetry && ((after) => this.ctx.runHook("onRetry", () => onRetry(toJob(after), attemptNo, delay))))
    } else {
      const original = outcome.original
      this.decide(
        view,
        { _tag: "JobFailed", error: outcome.error },
        onFailed && ((after) => this.ctx.runHook("onFailed", () => onFailed(toJob(after), original)))
      )
    }
    this.pump()
  }
}
