/**
 * The actor owning one partition of a queue: the single writer of its events.
 *
 * Invariants:
 * - Only this actor decides transitions of its jobs, and only through its PartitionState,
 *   which steps the job machine once per event and returns the change and its intents; the
 *   actor appends the event and carries out the intents (one exhaustive switch).
 * - State in memory is always "the log so far plus what the appender holds": restoring from
 *   the latest snapshot plus the events after it loses only undecided work, never a
 *   decided-and-durable event.
 * - A job runs only while its last decided event is `JobStarted`; a permit of the pool is
 *   held exactly while one of its jobs is running.
 * - Commands are consumed in offset order; their offset commits with the events they caused.
 *   What each one asks is decided by the actor's CommandHandler (command-handler.ts).
 * - A clean stop writes a snapshot of the state it leaves (when the events since the last one
 *   outnumber the jobs held), so a restart restores it instead of replaying that tail.
 * - A job id is never added twice: a command for a job the state holds changes nothing, and
 *   for an id the caller chose (`idempotent`) that left memory, the log is asked where it can
 *   (`recordsByKey`: SQLite, memory). On Kafka such an id past retention starts a new life.
 */
import { ENVELOPE_VERSION, type EventEnvelope, type JobEventBody } from "../../machines/schema.ts"
import { failedAttemptEvent, type JobIntent } from "../../machines/job-machine.ts"
import type { JobView } from "../../projections/job-view.ts"
import { PartitionState, type Transition } from "../../projections/partition-state.ts"
import { decodeEvent, encode } from "../codec.ts"
import type { LogRecord } from "../log/event-log.ts"
import { Appender } from "./appender.ts"
import { type Attempt, type Outcome, startAttempt } from "./handler-run.ts"
import { type ReadyEntry, ReadyQueue } from "./ready-queue.ts"
import { TimerHeap } from "./timer-heap.ts"
import type { EngineContext } from "./engine-context.ts"
import { SnapshotCadence } from "./snapshot-cadence.ts"
import { ProgressCoalescer } from "./progress.ts"
import { ScheduleTicker } from "./schedule-ticker.ts"
import { restoreStart } from "../read/restore-start.ts"
import { type AttemptOutcome, type AttemptSpan, startAttemptSpan } from "./tracing.ts"
import type { CancelledError } from "./handler-run.ts"
import { CommandHandler } from "./command-handler.ts"
import { toJob } from "../job.ts"
import { RunningJob } from "./running-job.ts"
import { run } from "../run.ts"

const RESTORE_BATCH = 10_000

export class PartitionActor {
  private state: PartitionState
  private readonly ready: ReadyQueue
  private readonly timers: TimerHeap
  private readonly schedules: ScheduleTicker
  private readonly appender: Appender
  private readonly cadence: SnapshotCadence
  private readonly commands: CommandHandler
  private readonly progress = new ProgressCoalescer((id, value) => {
    const view = this.state.get(id)
    if (view !== undefined && view.state === "active") this.decide(view, { _tag: "JobProgress", value })
  })
  private readonly running = new Map<string, Attempt>()
  /** The trace span of each running attempt, ended with its outcome. */
  private readonly spans = new Map<string, AttemptSpan>()
  private readonly unregister: () => void
  private stopped = false
  /** Settles onRecords batches not yet durable when the partition is lost (see halt). */
  private readonly undelivered = new Set<() => void>()

  constructor(
    private readonly ctx: EngineContext,
    readonly partition: number
  ) {
    this.state = new PartitionState(ctx.retention)
    this.ready = new ReadyQueue(ctx.pool.nextArrival)
    this.timers = new TimerHeap((ids) => this.promote(ids))
    this.schedules = new ScheduleTicker({
      queue: ctx.queue,
      state: () => this.state,
      decide: (body, seq) => void this.apply({ v: ENVELOPE_VERSION, queue: ctx.queue, jobId: null, time: Date.now(), seq, body }),
      addJob: (command) => this.appender.pushCommand(command.jobId, encode(command), command)
    })
    this.cadence = new SnapshotCadence(ctx.snapshotEvery)
    this.appender = new Appender({
      queue: ctx.queue,
      log: ctx.log,
      group: ctx.group,
      partition,
      topics: ctx.topics,
      onFenced: (error) => {
        ctx.report(error)
        this.halt()
      },
      onError: (error) => ctx.report(error),
      snapshots: {
        take: () => (this.cadence.due(this.state.size) ? JSON.stringify(this.state.toSnapshot()) : undefined),
        written: () => this.cadence.written()
      }
    })
    this.unregister = ctx.pool.register({ head: () => this.head(), startHead: (now) => this.startHead(now) })
    // once per actor: the callbacks below are made here, never per command
    this.commands = new CommandHandler({
      ctx,
      partition,
      state: () => this.state,
      apply: (envelope, afterDurable) => this.apply(envelope, afterDurable),
      decide: (view, body, afterDurable) => this.decide(view, body, afterDurable),
      schedules: this.schedules,
      deadLetter: (key, value) => this.appender.deadLetter(key, value),
      interrupt: (jobId, error) => this.interrupt(jobId, error),
      pump: () => this.pump()
    })
  }

  /**
   * Rebuilds the partition's jobs from its latest snapshot and the events after it, then
   * returns the jobs a dead owner left running to the queue (as stalled).
   */
  async restore(): Promise<void> {
    const { log, topics } = this.ctx
    const start = await restoreStart(log, topics.events, this.partition, this.ctx.retention, this.ctx.report)
    this.state = start.state
    let tail = 0
    for (let from = start.from; ; ) {
      const batch = await run(log.read(topics.events, this.partition, from, RESTORE_BATCH))
      for (const record of batch) {
        const decoded = decodeEvent(record.value)
        if (decoded.ok) this.state.apply(decoded.value)
        else this.ctx.report(new Error(`skipping undecodable event at offset ${record.offset}: ${decoded.reason}`))
      }
      tail += batch.length
      if (batch.length < RESTORE_BATCH) break
      from = batch[batch.length - 1]!.offset + 1
    }
    this.cadence.restored(tail)
    for (const view of this.state.list("waiting")) this.ready.push(view)
    for (const view of this.state.list("paused")) this.ready.push(view)
    for (const view of this.state.list("delayed")) this.timers.schedule(view.id, view.runAt)
    // The previous owner died with these running: hand them back (counted, bounded by the machine).
    for (const view of this.state.list("active")) this.decide(view, { _tag: "JobStalled" })
    // ticks missed while no engine ran come due at once (one job for all of them)
    this.schedules.start()
    this.pump()
  }

  /** Handles a batch of command records in offset order. Resolves when they are durable. */
  onRecords = async (records: ReadonlyArray<LogRecord>): Promise<void> => {
    if (this.stopped || records.length === 0) return
    for (const record of records) {
      const lookup = this.commands.handle(record)
      // only a command about a job that left memory waits for the log; the rest stay synchronous
      if (lookup !== undefined) await lookup
      if (this.stopped) return
    }
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
    this.schedules.stop()
    const deadline = Date.now() + graceMs
    while (this.running.size > 0 && Date.now() < deadline && !this.appender.isFenced)
      await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, deadline - Date.now()))))
    for (const [id, attempt] of [...this.running]) {
      this.running.delete(id)
      this.progress.drop(id)
      this.endSpan(id, "handed-back")
      attempt.abort(new Error("the engine stopped before the job finished: it was handed back and will run again"))
      this.ctx.pool.release()
      const view = this.state.get(id)
      if (view !== undefined && view.state === "active") this.decide(view, { _tag: "JobStalled" })
    }
    this.unregister()
    await this.appender.drain()
    // the next owner restores from here rather than replay the tail since the last snapshot
    await this.appender.writeSnapshot(() => (this.cadence.dueAtStop(this.state.size) ? JSON.stringify(this.state.toSnapshot()) : undefined))
  }

  /** Fenced or failed for good: forget everything without writing. */
  private halt(): void {
    this.stopped = true
    this.timers.stop()
    this.schedules.stop()
    for (const [id, attempt] of this.running) {
      this.progress.drop(id)
      this.endSpan(id, "handed-back")
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

  // ------------------------------------------------------------------ transitions

  /**
   * The next event of `view`'s job: applied to the state (one machine step), appended, its
   * intents carried out. Returns the machine's reason when it refuses the event (nothing is
   * appended then). `afterDurable` gets the view as decided, once the event is durable.
   */
  private decide(view: JobView, body: JobEventBody, afterDurable?: (after: JobView) => void, time = Date.now()): string | undefined {
    return this.apply({ v: ENVELOPE_VERSION, queue: this.ctx.queue, jobId: view.id, time, seq: view.seq + 1, body }, afterDurable)
  }

  private apply(envelope: EventEnvelope, afterDurable?: (after: JobView) => void): string | undefined {
    const applied = this.state.apply(envelope)
    if (!applied.ok) return applied.reason
    const moved = applied.transitions
    // a job event that moved nothing was a duplicate: there is nothing to write
    if (envelope.jobId !== null && moved.length === 0) return undefined
    const after = moved[0]?.after
    this.appender.push(
      envelope.jobId,
      encode(envelope),
      envelope,
      // a job event moves its one job: this process's read model takes that transition as it is
      envelope.jobId === null ? undefined : moved[0],
      afterDurable === undefined || after === undefined ? undefined : () => afterDurable(after)
    )
    this.cadence.appended()
    for (const transition of moved) for (const intent of transition.intents) this.carryOut(intent, transition)
    return undefined
  }

  /** What the engine does on entering a state: the machine's intents, every kind handled here. */
  private carryOut(intent: JobIntent, { after }: Transition): void {
    switch (intent.type) {
      case "enqueue":
        return this.ready.push(after)
      case "hold":
        // held by a pause: queued now, so that it runs in its place once resumed (head()
        // passes over the whole queue while it is paused)
        return this.ready.push(after)
      case "schedule":
        return this.timers.schedule(after.id, intent.runAt)
      case "run":
        return this.runHandler(after)
      case "settle":
        return // finished: its permit went back when its outcome was decided
    }
  }

  private promote(ids: ReadonlyArray<string>): void {
    if (this.stopped) return
    for (const id of ids) {
      const view = this.state.get(id)
      // Stale timer entries (job already promoted or rescheduled later) are skipped.
      if (view === undefined || view.state !== "delayed" || view.runAt > Date.now()) continue
      this.decide(view, { _tag: "JobPromoted" })
    }
    this.pump()
  }

  // ------------------------------------------------------------------ running jobs

  /** Whether this partition holds the queue paused (a resume may still be on its way). */
  get queuePaused(): boolean {
    return !this.stopped && this.state.queuePaused
  }

  /** Asks the engine's pool for a scheduling pass; starts happen there, best job first. */
  private pump(): void {
    this.ctx.pool.schedule()
  }

  /** The job this partition would start next; drops entries that are no longer waiting. */
  private head(): ReadyEntry | undefined {
    if (this.stopped || this.state.queuePaused) return undefined
    for (;;) {
      const entry = this.ready.peek()
      if (entry === undefined) return undefined
      const view = this.state.get(entry.id)
      if (view !== undefined && view.state === "waiting") return entry
      this.ready.pop() // left waiting while queued (paused, say): skip it
    }
  }

  /** Starts the head job: its JobStarted enters `active`, whose `run` intent starts the handler. */
  private startHead(now: number): void {
    const view = this.state.get(this.ready.pop()!)!
    const refused = this.decide(view, { _tag: "JobStarted", attempt: view.attemptsMade }, undefined, now)
    if (refused !== undefined) {
      this.ctx.report(new Error(`engine bug: could not start job ${view.id}: ${refused}`))
      this.ctx.pool.release()
    }
  }

  /** A cancelled job's attempt ends here and now: aborted, its permit back, its progress and span ended. */
  private interrupt(jobId: string, error: CancelledError): void {
    const attempt = this.running.get(jobId)
    if (attempt !== undefined) {
      this.running.delete(jobId)
      attempt.abort(error)
      this.ctx.pool.release()
    }
    this.progress.drop(jobId)
    this.endSpan(jobId, "cancelled", error)
  }

  private endSpan(id: string, outcome: AttemptOutcome, error?: { readonly name?: string; readonly message: string }): void {
    this.spans.get(id)?.end(outcome, error)
    this.spans.delete(id)
  }

  private runHandler(active: JobView): void {
    const handler = this.ctx.handlerFor(active.name)
    const job = new RunningJob(active, this)
    const span = startAttemptSpan(this.ctx.queue, active)
    this.spans.set(active.id, span)
    const attempt = startAttempt(
      (lazy) => {
        if (handler === undefined) throw new Error(`no handler registered for job name '${active.name}' on queue '${this.ctx.queue}'`)
        const running = job.starting(lazy)
        // A handler that declares a second parameter gets the signal; others can read job.signal.
        return span.run(() => (handler.length >= 2 ? handler(running, lazy.signal) : (handler as (job: unknown) => unknown)(running)))
      },
      active.timeout ?? this.ctx.timeoutMs,
      (outcome) => this.finish(active.id, attempt, outcome)
    )
    job.attach(attempt)
    this.running.set(active.id, attempt)
  }

  /** A running job's progress report (see RunningJob): dropped once its attempt is no longer the job's. */
  reportProgress(jobId: string, attempt: Attempt | undefined, value: unknown): Promise<void> {
    if (attempt !== undefined && this.running.get(jobId) !== attempt) return Promise.resolve()
    return this.progress.report(jobId, value)
  }

  private finish(id: string, attempt: Attempt, outcome: Outcome): void {
    // A job handed back (stop/halt) is no longer ours to decide.
    if (this.running.get(id) !== attempt) return
    this.running.delete(id)
    this.ctx.pool.release()
    // the last progress the handler reported goes in before its outcome
    this.progress.flushNow(id)
    this.progress.drop(id)
    const view = this.state.get(id)
    if (view === undefined || view.state !== "active") return
    // Hooks run once their event is durable; no closure at all when the hook is absent.
    const { onComplete, onRetry, onFailed } = this.ctx.hooks
    const span = this.spans.get(id)
    this.spans.delete(id)
    if (outcome.ok) span?.end("completed")
    else span?.end(failedAttemptEvent(view) === "JobRetrying" ? "retrying" : "failed", outcome.error)
    if (outcome.ok) {
      const result = outcome.result
      this.decide(
        view,
        { _tag: "JobCompleted", result },
        onComplete && ((after) => this.ctx.runHook("onComplete", () => onComplete(toJob(after), result)))
      )
    } else if (failedAttemptEvent(view) === "JobRetrying") {
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
