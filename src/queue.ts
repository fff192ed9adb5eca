/**
 * JobQueue: the Promise/EventEmitter face of jobledger over the event-sourced engine.
 *
 * A JobQueue is a producer (it appends commands), a reader (its read model follows the
 * events topic and answers `stats()`/`store` and announces events) and, once `process` is
 * called, an engine member (it owns partitions and runs handlers).
 *
 * Invariants:
 * - Options are checked synchronously: a bad one throws here, before anything opens.
 * - Producers never replay: opening a queue opens the log and its topics, nothing more;
 *   `add`, `addBulk`, `pause` and `resume` append and return. The read model opens on first
 *   need — `stats()`, `store.*`, a listener of a job event, `process()`, a custom store to
 *   feed — and restores from snapshots plus the tail, never from the whole history.
 * - `add` resolves when its command is durable on the log; the job it returns is the
 *   job as the engine will create it (state `waiting`, `delayed` or `paused`).
 * - Lifecycle events are announced by the read model, after `stats()` and `store` reflect
 *   them; hooks run in the engine process only, after their event is durable.
 */
import { run } from "./run.ts"
import * as Cause from "effect/Cause"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import { managedRuntime } from "./effect-runtime.ts"
import * as Runtime from "effect/Runtime"
import { EventEmitter } from "node:events"
import { guardHandler, useRejectionListener } from "./handler-guard.ts"
import { makeDelayFor } from "./engine/backoff.ts"
import { Engine } from "./engine/engine.ts"
import { snapshotEveryFromEnv } from "./engine/snapshot-cadence.ts"
import { WorkerPool } from "./engine/worker-pool.ts"
import { EventLog, type EventLogService, type LogError, topicsOf } from "./log/event-log.ts"
import { layerFromUrl } from "./log/layers.ts"
import { resolveLogUrl } from "./log/log-url.ts"
import {
  InvalidOptionError,
  MAX_TIMEOUT_MS,
  type ResolvedQueueOptions,
  resolveQueueOptions,
  resolveSchedule,
  validateQueueName
} from "./options.ts"
import type { Change } from "./read/read-model.ts"
import { ProjectionStore } from "./read/projection-store.ts"
import { announce, PUBLIC_EVENT_NAMES } from "./read/announce.ts"
import { JobEndWaiters, WaitTimeoutError } from "./read/job-end.ts"
import { scheduleInfo, scheduleKey } from "./read/schedule-info.ts"
import { type FollowingStore, isFollowingStore, type StoreFollower } from "./stores/following.ts"
import { QueueCommands } from "./queue-commands.ts"
import { QueueReads } from "./queue-reads.ts"
import type {
  Job,
  JobHandler,
  JobOptions,
  QueueEvents,
  QueueHooks,
  QueueOptions,
  QueueStats,
  QueueStore,
  ScheduleInfo,
  ScheduleRepeat,
  ScheduleTemplate
} from "./types.ts"

/** Partitions of a queue's topics when created on Kafka (local logs use one). */
const DEFAULT_PARTITIONS = 3
/** How long `close()` waits for running handlers before handing them back. */
const DEFAULT_CLOSE_GRACE_MS = 30_000

/** The log refused or failed an operation; `retryable` says whether trying again may help. */
export class QueueLogError extends Error {
  override readonly name = "QueueLogError"
  constructor(
    message: string,
    readonly retryable: boolean
  ) {
    super(message)
  }
}

interface Opened {
  readonly log: EventLogService
  readonly partitions: number
}

/** The listener methods of a JobQueue, typed by its events (merged into the class below). */
export interface JobQueue<Data = any> {
  on<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  once<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  off<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  addListener<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  removeListener<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  prependListener<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
  prependOnceListener<E extends keyof QueueEvents<Data>>(event: E, listener: QueueEvents<Data>[E]): this
}

export class JobQueue<Data = any> extends EventEmitter {
  readonly name: string
  /** Job views: the custom store given in options, else the built-in projection store. */
  readonly store: QueueStore<Data>
  private readonly options: ResolvedQueueOptions
  private readonly hooks: QueueHooks<Data>
  private readonly logUrl: string
  private readonly runtime: ManagedRuntime.ManagedRuntime<EventLog, LogError>
  private readonly opened: Promise<Opened>
  private readonly handlers = new Map<string, JobHandler<Data>>()
  /** The `waitFor`s pending, settled as the read model announces their jobs' ends. */
  private readonly endWaiters = new JobEndWaiters()
  private engine: Promise<Engine | undefined> | undefined
  private closing: Promise<void> | undefined
  /** Releases this queue's use of the process-wide unhandled-rejection listener. */
  private releaseRejections: (() => void) | undefined
  /** A store that follows the log itself (FollowingStore): its subscription, stopped on close. */
  private following: Promise<StoreFollower | undefined> | undefined
  /** The read side: the read model, opened on first need, and lookups by id (queue-reads.ts). */
  private readonly reads: QueueReads
  /** The producer side: building and appending this queue's commands (queue-commands.ts). */
  private readonly commands: QueueCommands<Data>

  constructor(name: string, options?: QueueOptions<Data>) {
    super()
    this.name = validateQueueName(name)
    this.options = resolveQueueOptions(options)
    this.hooks = options?.hooks ?? {}
    this.logUrl = resolveLogUrl(options?.log)
    let layer: ReturnType<typeof layerFromUrl>
    try {
      // parses the URL and, for Kafka, resolves the connection (kafka option, credentials)
      layer = layerFromUrl(this.logUrl, { kafka: options?.kafka })
    } catch (e) {
      throw new InvalidOptionError((e as Error).message)
    }
    this.runtime = managedRuntime(layer)
    this.reads = new QueueReads({
      queue: this.name,
      options: this.options,
      opened: () => this.openedOrThrow(),
      closed: () => this.closing !== undefined,
      announce: (change) => this.announceChange(change),
      asQueueError: (e) => this.asQueueError(e),
      report: (e) => this.report(e)
    })
    this.store =
      this.options.store ??
      (new ProjectionStore(
        () => this.reads.readModel(),
        (id) => this.reads.lookUp(id)
      ) as QueueStore<Data>)
    this.opened = this.open()
    this.opened.catch((e) => this.report(e))
    this.commands = new QueueCommands<Data>({
      queue: this.name,
      maxAttempts: this.options.policy.attempts,
      opened: () => this.openedOrThrow(),
      readModelOpening: () => this.reads.opening,
      lookUp: (id) => this.reads.lookUp(id),
      asQueueError: (e) => this.asQueueError(e),
      report: (e) => this.report(e)
    })
    // a listener of a job event needs the read model, which announces them
    super.on("newListener", (event: string | symbol) => {
      if (typeof event === "string" && PUBLIC_EVENT_NAMES.has(event)) this.reads.openReadModelSoon()
    })
    // a custom store is fed by the read model, whether or not this process reads it —
    // unless it follows the log itself, from positions of its own
    if (isFollowingStore(this.options.store)) this.following = this.followInStore(this.options.store)
    else if (this.options.store !== undefined) this.reads.openReadModelSoon()
  }

  /** The log URL this queue uses. */
  get log(): string {
    return this.logUrl
  }

  /**
   * Registers the handler of jobs named `name`. The first call makes this process an engine
   * member; handlers registered in the same tick are all in place before any job starts.
   */
  process<Result = any>(name: string, handler: JobHandler<Data, Result>): this {
    if (typeof name !== "string" || name.length === 0) throw new InvalidOptionError("process(name, handler): name must be a non-empty string")
    if (typeof handler !== "function") throw new InvalidOptionError("process(name, handler): handler must be a function")
    if (this.closing !== undefined) throw new InvalidOptionError(`queue '${this.name}' is closed`)
    this.handlers.set(name, guardHandler(this.name, handler as JobHandler, (e) => this.report(e)) as JobHandler<Data>)
    this.releaseRejections ??= useRejectionListener()
    this.reads.openReadModelSoon()
    if (this.engine === undefined) {
      this.engine = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.startEngine())
      this.engine.catch((e) => this.report(e))
    }
    return this
  }

  /** Adds a job; resolves once its command is durable on the log. */
  async add(name: string, data: Data, opts?: JobOptions): Promise<Job<Data>> {
    const [job] = await this.commands.addMany([{ name, data, ...(opts === undefined ? {} : { opts }) }])
    return job!
  }

  /** Adds jobs in one append: all are durable when it resolves, or none was added. */
  async addBulk(jobs: ReadonlyArray<{ name: string; data: Data; opts?: JobOptions }>): Promise<Array<Job<Data>>> {
    if (!Array.isArray(jobs)) throw new InvalidOptionError("addBulk expects an array of { name, data, opts? }")
    return this.commands.addMany(jobs)
  }

  /**
   * Runs a failed job again with a fresh retry budget. Rejects for an unknown or not-failed
   * job: the job is looked up in the read model if this process has one open, else in the
   * log (SQLite, memory); on Kafka a producer-only process opens its read model for it.
   */
  async retry(jobId: string): Promise<void> {
    const view = await this.reads.findJob(jobId)
    if (view.state !== "failed") throw new InvalidOptionError(`job '${jobId}' is ${view.state}; only failed jobs can be retried`)
    await this.commands.appendCommands([this.commands.command(jobId, { _tag: "RetryJob" }, jobId)])
  }

  /**
   * Takes a job that is not running out of the queue: it leaves every view and count
   * (`store.get` no longer finds it), its history stays in the log (`jobledger job`, replay).
   * Rejects for an unknown id and for a running job (cancel it first). The job is found as
   * `retry` finds it.
   */
  async remove(jobId: string): Promise<void> {
    const view = await this.reads.findJob(jobId)
    if (view.state === "active") throw new InvalidOptionError(`job '${jobId}' is running; cancel it first (cancel() fails it, then remove() takes it out)`)
    await this.commands.appendCommands([this.commands.command(jobId, { _tag: "RemoveJob" }, jobId)])
  }

  /**
   * Stops a running job: its handler's AbortSignal fires (with a CancelledError as the
   * reason), and the job fails for good with that error — no retry, `failed` and `onFailed`
   * fire once. The engine does not wait for a handler that ignores the signal. Rejects for an
   * unknown id and for a job that is not running (use `remove()`).
   */
  async cancel(jobId: string, reason?: string): Promise<void> {
    if (reason !== undefined && (typeof reason !== "string" || reason.length > 2_000))
      throw new InvalidOptionError("cancel(jobId, reason): reason must be a string of at most 2000 characters")
    const view = await this.reads.findJob(jobId)
    if (view.state !== "active") throw new InvalidOptionError(`job '${jobId}' is ${view.state}; only a running job can be cancelled (remove() takes a job that is not running)`)
    await this.commands.appendCommands([this.commands.command(jobId, { _tag: "CancelJob", ...(reason === undefined ? {} : { reason }) }, jobId)])
  }

  /**
   * The result of job `jobId` once it completed, or rejects with its error once it failed for
   * good (or a `WaitTimeoutError` after `timeoutMs`, or when it is removed). A job that
   * finished before the call answers at once. Works from a producer-only process: it opens
   * the read model, which announces the job's end. While it waits, the process stays alive.
   */
  async waitFor<Result = any>(jobId: string, options?: { timeoutMs?: number }): Promise<Result> {
    const timeoutMs = options?.timeoutMs
    if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS))
      throw new InvalidOptionError(`waitFor: timeoutMs must be a number of ms > 0 and at most ${MAX_TIMEOUT_MS} (got ${String(timeoutMs)})`)
    const readModel = await this.reads.readModel()
    return this.endWaiters.wait<Result>(jobId, readModel.get(jobId), () => this.reads.lookUp(jobId, { removed: true }), {
      timeoutMs,
      notFound: () => new InvalidOptionError(`job '${jobId}' not found in queue '${this.name}'`),
      timedOut: () => new WaitTimeoutError(`job '${jobId}' of queue '${this.name}' did not finish within ${timeoutMs} ms`),
      failed: (e) => this.asQueueError(e)
    })
  }

  /** Stops starting jobs (running ones finish). Safe to call without `await`. */
  pause(): Promise<void> {
    return this.commands.queueCommand({ _tag: "PauseQueue" })
  }

  /** Starts jobs again after `pause()`. Safe to call without `await`. */
  resume(): Promise<void> {
    return this.commands.queueCommand({ _tag: "ResumeQueue" })
  }

  /**
   * Defines the schedule `id`, or replaces it in place (the same id never makes a second
   * schedule): at each tick of `repeat` the engine owning the schedule adds the job of
   * `template`, with the id `<id>:<tick time>` — exactly one job per tick whatever the
   * number of engines, crashes or hand-overs (the tick and its job are one transaction). A
   * tick missed while no engine ran is added once when one starts, not once per missed tick.
   * A bad cron expression or time zone throws an `InvalidOptionError` naming it.
   */
  async upsertSchedule(id: string, repeat: ScheduleRepeat, template: ScheduleTemplate<Data>): Promise<void> {
    const schedule = resolveSchedule(id, repeat, template)
    await this.commands.appendCommands([this.commands.command(scheduleKey(id), { _tag: "UpsertSchedule", schedule }, null)])
  }

  /** Deletes the schedule `id` (the jobs it added stay). Rejects for an unknown id. */
  async removeSchedule(id: string): Promise<void> {
    if (!(await this.schedules()).some((s) => s.id === id)) throw new InvalidOptionError(`schedule '${id}' not found in queue '${this.name}'`)
    await this.commands.appendCommands([this.commands.command(scheduleKey(id), { _tag: "RemoveSchedule", id }, null)])
  }

  /** The queue's schedules, with how many jobs each added and its last and next ticks. */
  async schedules(): Promise<Array<ScheduleInfo<Data>>> {
    const readModel = await this.reads.readModel()
    return readModel.state.schedules().map((s) => scheduleInfo(s) as ScheduleInfo<Data>)
  }

  /**
   * Resolves once the log is open and the queue's topics exist — all a producer needs; rejects
   * with a QueueLogError when the log cannot be opened. Nothing else waits on it: `add` opens
   * the log itself. Use it to fail fast at start-up.
   */
  async waitUntilReady(): Promise<void> {
    await this.openedOrThrow()
  }

  /** Counts per state, from the projection, after it applied everything in the log now. */
  async stats(): Promise<QueueStats> {
    const readModel = await this.reads.readModel()
    return { ...readModel.stats() }
  }

  /**
   * Stops taking jobs, waits up to `graceMs` for running handlers (their AbortSignal fires
   * when it expires, and unfinished jobs are handed back), then releases the log.
   */
  close(options?: { graceMs?: number }): Promise<void> {
    this.closing ??= this.shutdown(options?.graceMs ?? DEFAULT_CLOSE_GRACE_MS)
    return this.closing
  }

  // ---------------------------------------------------------------- internals

  /** Opens the log and makes sure the queue's topics exist: all a producer needs. */
  private async open(): Promise<Opened> {
    const log = await this.runtime.runPromise(EventLog).catch((e) => {
      throw this.asQueueError(e)
    })
    const topics = topicsOf(this.name)
    const partitions = log.backend === "kafka" ? DEFAULT_PARTITIONS : 1
    const n = await run(log.ensureTopic(topics.commands, partitions))
    await run(log.ensureTopic(topics.events, n))
    await run(log.ensureTopic(topics.deadLetter, 1))
    return { log, partitions: n }
  }

  private async openedOrThrow(): Promise<Opened> {
    if (this.closing !== undefined) throw new InvalidOptionError(`queue '${this.name}' is closed`)
    try {
      return await this.opened
    } catch (e) {
      throw this.asQueueError(e)
    }
  }

  /** Announces a change to listeners, and settles the `waitFor`s of its job. */
  private announceChange(change: Change): void {
    announce(this, change)
    if (change.envelope.jobId !== null) this.endWaiters.changed(change.envelope.jobId, change.after)
  }

  /** Hands a following store the log (once open); its failure to start is reported, unless the log itself failed (reported already). */
  private followInStore(store: FollowingStore): Promise<StoreFollower | undefined> {
    const opened = this.opened.then(({ log, partitions }) => ({ log, partitions }))
    opened.catch(() => undefined) // reported by the constructor
    return store.follow({ queue: this.name, topics: topicsOf(this.name), opened, report: (e) => this.report(e) }).catch(async (e) => {
      if (await opened.then(() => true, () => false)) this.report(e)
      return undefined
    })
  }

  private async startEngine(): Promise<Engine | undefined> {
    const { log } = await this.openedOrThrow()
    if (this.closing !== undefined) return undefined
    const hooks = this.hooks as QueueHooks
    return Engine.start(
      {
        queue: this.name,
        log,
        pool: new WorkerPool(this.options.concurrency, this.options.limiter),
        policy: this.options.policy,
        delayFor: makeDelayFor(this.options.policy),
        timeoutMs: this.options.timeoutMs,
        hooks,
        handlerFor: (name) => this.handlers.get(name) as JobHandler | undefined,
        runHook: (name, hook) => {
          try {
            const result = hook()
            if (result instanceof Promise) result.catch((e) => this.report(hookError(name, e)))
          } catch (e) {
            this.report(hookError(name, e))
          }
        },
        report: (e) => this.report(e),
        retention: this.options.retention,
        snapshotEvery: snapshotEveryFromEnv()
      },
      log
    )
  }

  private async shutdown(graceMs: number): Promise<void> {
    const engine = await this.engine?.catch(() => undefined)
    await engine?.close(graceMs)
    this.releaseRejections?.()
    await (await this.following)?.stop().catch((e) => this.report(e))
    const readModel = await this.reads.opening?.catch(() => undefined)
    await readModel?.close()
    await this.runtime.dispose()
  }

  private asQueueError(e: unknown): Error {
    // Effect's runPromise wraps typed failures (a log that cannot open) in a FiberFailure
    if (Runtime.isFiberFailure(e)) e = Cause.squash(e[Runtime.FiberFailureCauseId])
    if (e instanceof Error && !(e as { _tag?: unknown })._tag) return e
    const tagged = e as { _tag?: string; message?: string; retryable?: boolean }
    const message = tagged.message ?? String(e)
    // Kafka's log errors already start with the URL: say it once.
    const detail = message.startsWith(`${this.logUrl}: `) ? message.slice(this.logUrl.length + 2) : message
    return new QueueLogError(`queue '${this.name}' on ${this.logUrl}: ${detail}`, tagged.retryable ?? false)
  }

  /** Problems the engine survived: emitted as `error` when someone listens, else printed once per kind. */
  private report(e: unknown): void {
    if (this.listenerCount("error") > 0) this.emit("error", e)
    else console.error(`[jobledger:${this.name}]`, e instanceof Error ? e.message : e)
  }
}

const hookError = (name: string, cause: unknown): Error => {
  const error = new Error(`hook ${name} failed: ${cause instanceof Error ? cause.message : String(cause)}`)
  error.cause = cause
  return error
}
