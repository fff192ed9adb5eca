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
import { Cause, ManagedRuntime, Runtime } from "effect"
import { EventEmitter } from "node:events"
import { randomUUID } from "node:crypto"
import { startStateOf } from "../machines/job-machine.ts"
import { ENVELOPE_VERSION, type CommandBody, type CommandEnvelope } from "../machines/schema.ts"
import type { JobView } from "../projections/job-view.ts"
import { MAX_JSON_DEPTH, MAX_RECORD_BYTES, encode, jsonTooDeep } from "./codec.ts"
import { guardHandler, useRejectionListener } from "./handler-guard.ts"
import { makeDelayFor } from "./engine/backoff.ts"
import { Engine } from "./engine/engine.ts"
import { snapshotEveryFromEnv } from "./engine/snapshot-cadence.ts"
import { WorkerPool } from "./engine/worker-pool.ts"
import { EventLog, type EventLogService, type LogError, type OutgoingRecord, engineGroupOf, topicsOf } from "./log/event-log.ts"
import { layerFromUrl } from "./log/layers.ts"
import { parseLogUrl, resolveLogUrl } from "./log/log-url.ts"
import { toJob } from "./job.ts"
import { InvalidOptionError, type ResolvedQueueOptions, resolveJobInput, resolveQueueOptions, validateQueueName } from "./options.ts"
import { type Change, ReadModel } from "./read/read-model.ts"
import { ProjectionStore } from "./read/projection-store.ts"
import { announce, PUBLIC_EVENT_NAMES } from "./read/announce.ts"
import { canLookUp, lookUpJob } from "./read/job-lookup.ts"
import { type FollowingStore, isFollowingStore, type StoreFollower } from "./stores/following.ts"
import type { Job, JobHandler, JobOptions, QueueHooks, QueueOptions, QueueStats, QueueStore } from "./types.ts"

/** Partitions of a queue's topics when created on Kafka (local logs use one). */
const DEFAULT_PARTITIONS = 3
/** The largest encoded AddJob: half a log record, so its JobAdded event always fits in one. */
const MAX_COMMAND_CHARS = MAX_RECORD_BYTES / 2
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

export class JobQueue<Data = any> extends EventEmitter {
  readonly name: string
  /** Job views: the custom store given in options, else the built-in projection store. */
  readonly store: QueueStore<Data>
  private readonly options: ResolvedQueueOptions
  private readonly hooks: QueueHooks<Data>
  private readonly logUrl: string
  private readonly runtime: ManagedRuntime.ManagedRuntime<EventLog, LogError>
  private readonly opened: Promise<Opened>
  /** Opened on first need (see the invariants), then kept until `close()`. */
  private readModelOpening: Promise<ReadModel> | undefined
  private readonly handlers = new Map<string, JobHandler<Data>>()
  private engine: Promise<Engine | undefined> | undefined
  private closing: Promise<void> | undefined
  /** Releases this queue's use of the process-wide unhandled-rejection listener. */
  private releaseRejections: (() => void) | undefined
  /** A store that follows the log itself (FollowingStore): its subscription, stopped on close. */
  private following: Promise<StoreFollower | undefined> | undefined

  constructor(name: string, options?: QueueOptions<Data>) {
    super()
    this.name = validateQueueName(name)
    this.options = resolveQueueOptions(options)
    this.hooks = options?.hooks ?? {}
    this.logUrl = resolveLogUrl(options?.log)
    try {
      parseLogUrl(this.logUrl)
    } catch (e) {
      throw new InvalidOptionError((e as Error).message)
    }
    this.runtime = ManagedRuntime.make(layerFromUrl(this.logUrl))
    this.store =
      this.options.store ??
      (new ProjectionStore(
        () => this.readModel(),
        (id) => this.lookUp(id)
      ) as QueueStore<Data>)
    this.opened = this.open()
    this.opened.catch((e) => this.report(e))
    // a listener of a job event needs the read model, which announces them
    this.on("newListener", (event: string | symbol) => {
      if (typeof event === "string" && PUBLIC_EVENT_NAMES.has(event)) this.openReadModelSoon()
    })
    // a custom store is fed by the read model, whether or not this process reads it —
    // unless it follows the log itself, from positions of its own
    if (isFollowingStore(this.options.store)) this.following = this.followInStore(this.options.store)
    else if (this.options.store !== undefined) this.openReadModelSoon()
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
    this.openReadModelSoon()
    if (this.engine === undefined) {
      this.engine = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.startEngine())
      this.engine.catch((e) => this.report(e))
    }
    return this
  }

  /** Adds a job; resolves once its command is durable on the log. */
  async add(name: string, data: Data, opts?: JobOptions): Promise<Job<Data>> {
    const [job] = await this.addMany([{ name, data, ...(opts === undefined ? {} : { opts }) }])
    return job!
  }

  /** Adds jobs in one append: all are durable when it resolves, or none was added. */
  async addBulk(jobs: ReadonlyArray<{ name: string; data: Data; opts?: JobOptions }>): Promise<Array<Job<Data>>> {
    if (!Array.isArray(jobs)) throw new InvalidOptionError("addBulk expects an array of { name, data, opts? }")
    return this.addMany(jobs)
  }

  /**
   * Runs a failed job again with a fresh retry budget. Rejects for an unknown or not-failed
   * job: the job is looked up in the read model if this process has one open, else in the
   * log (SQLite, memory); on Kafka a producer-only process opens its read model for it.
   */
  async retry(jobId: string): Promise<void> {
    const { log } = await this.openedOrThrow()
    const view = this.readModelOpening === undefined && canLookUp(log) ? await this.lookUp(jobId) : (await this.readModel()).get(jobId)
    if (view === undefined) throw new InvalidOptionError(`job '${jobId}' not found in queue '${this.name}'`)
    if (view.state !== "failed") throw new InvalidOptionError(`job '${jobId}' is ${view.state}; only failed jobs can be retried`)
    await this.appendCommands([this.command(jobId, { _tag: "RetryJob" }, jobId)])
  }

  /** Stops starting jobs (running ones finish). Safe to call without `await`. */
  pause(): Promise<void> {
    return this.queueCommand({ _tag: "PauseQueue" })
  }

  /** Starts jobs again after `pause()`. Safe to call without `await`. */
  resume(): Promise<void> {
    return this.queueCommand({ _tag: "ResumeQueue" })
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
    const readModel = await this.readModel()
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

  private openReadModel(): Promise<ReadModel> {
    this.readModelOpening ??= this.openedOrThrow().then(({ log, partitions }) => {
      const topics = topicsOf(this.name)
      const sink = isFollowingStore(this.options.store) ? undefined : this.options.store
      return ReadModel.open({
        log,
        queue: this.name,
        topic: topics.events,
        commandsTopic: topics.commands,
        group: engineGroupOf(this.name),
        partitions,
        retention: this.options.retention,
        pendingMaxAttempts: this.options.policy.attempts,
        ...(sink === undefined
          ? {}
          : { sink: (before: JobView | undefined, after: JobView) => (before === undefined ? sink.enqueue(toJob(after)) : sink.update(toJob(after))) }),
        announce: (change: Change) => announce(this, change),
        report: (e: unknown) => this.report(e)
      })
    })
    return this.readModelOpening
  }

  /** Opens the read model in the background (its failure is reported, and rethrown to whoever awaits it). */
  private openReadModelSoon(): void {
    if (this.readModelOpening !== undefined || this.closing !== undefined) return
    this.openReadModel().catch((e) => this.report(this.asQueueError(e)))
  }

  private async openedOrThrow(): Promise<Opened> {
    if (this.closing !== undefined) throw new InvalidOptionError(`queue '${this.name}' is closed`)
    try {
      return await this.opened
    } catch (e) {
      throw this.asQueueError(e)
    }
  }

  /** The read model, caught up with everything in the log at the time of the call. */
  private async readModel(): Promise<ReadModel> {
    if (this.closing !== undefined) throw new InvalidOptionError(`queue '${this.name}' is closed`)
    let readModel: ReadModel
    try {
      readModel = await this.openReadModel()
    } catch (e) {
      throw this.asQueueError(e)
    }
    await readModel.caughtUp()
    return readModel
  }

  /**
   * A job by id without the read model's help: from the read model when it is open, else
   * from the log by an indexed lookup (SQLite, memory); `undefined` where neither can tell.
   */
  private async lookUp(id: string): Promise<JobView | undefined> {
    const { log } = await this.openedOrThrow()
    if (this.readModelOpening !== undefined) {
      const held = (await this.readModel()).get(id)
      if (held !== undefined) return held
    }
    return canLookUp(log) ? lookUpJob(log, this.name, id, this.options.policy.attempts) : undefined
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

  private async addMany(items: ReadonlyArray<{ name: string; data: Data; opts?: JobOptions }>): Promise<Array<Job<Data>>> {
    const inputs = items.map((item, i) => {
      try {
        if (typeof item !== "object" || item === null) throw new InvalidOptionError("each job must be an object { name, data, opts? }")
        return resolveJobInput(item.name, item.data, item.opts)
      } catch (e) {
        if (items.length === 1) throw e
        throw new InvalidOptionError(`addBulk item ${i}: ${(e as Error).message}`)
      }
    })
    await this.openedOrThrow()
    // the pause flag, where this process knows it without opening anything
    const known = this.readModelOpening === undefined ? undefined : await this.readModel()
    const now = Date.now()
    const records: Array<OutgoingRecord> = []
    const jobs: Array<Job<Data>> = []
    for (const input of inputs) {
      // an id of the caller's own: the job it names, if this process can tell (see lookUp)
      const existing = input.jobId === undefined ? undefined : await this.lookUp(input.jobId)
      if (existing !== undefined) {
        jobs.push(toJob(existing))
        continue // idempotent add: the job with this id already exists
      }
      const id = input.jobId ?? randomUUID()
      const body: CommandBody = {
        _tag: "AddJob",
        name: input.name,
        data: input.data,
        priority: input.priority,
        delay: input.delay,
        ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
        ...(input.timeout === undefined ? {} : { timeout: input.timeout }),
        ...(input.jobId === undefined ? {} : { idempotent: true as const }),
        ...(input.keep === undefined ? {} : { keep: input.keep })
      }
      const record = this.command(id, body, id, undefined, now)
      records.push(record)
      // the job as the log carries it (JSON): a Date is a string, a Map is {}, later
      // mutations of the caller's object change nothing
      const carried = (record.parsed as CommandEnvelope).body as typeof body
      const state = startStateOf({ runAt: now + input.delay, queuePaused: known?.queuePaused ?? false }, now)
      jobs.push({
        id,
        name: input.name,
        data: carried.data as Data,
        state,
        attemptsMade: 0,
        maxAttempts: this.options.policy.attempts,
        priority: input.priority,
        createdAt: now,
        runAt: now + input.delay,
        updatedAt: now,
        ...(carried.metadata === undefined ? {} : { metadata: carried.metadata as Record<string, any> })
      })
    }
    await this.appendCommands(records)
    return jobs
  }

  /** Encodes one command; data that JSON cannot carry is refused here with the reason. */
  private command(key: string | null, body: CommandBody, jobId: string | null, partition?: number, time = Date.now()): OutgoingRecord {
    const envelope: CommandEnvelope = { v: ENVELOPE_VERSION, queue: this.name, jobId, time, body }
    let value: string
    try {
      value = encode(envelope)
    } catch (e) {
      throw new InvalidOptionError(`job data cannot be serialized to JSON: ${(e as Error).message}`)
    }
    // The engine refuses (dead-letters) records it cannot decode: refuse them here instead,
    // with room left for the event that will carry the same data (JobAdded).
    if (value.length > MAX_COMMAND_CHARS)
      throw new InvalidOptionError(`job is ${value.length} characters of JSON; the limit is ${MAX_COMMAND_CHARS} (keep big payloads elsewhere and pass a reference)`)
    if (jsonTooDeep(value)) throw new InvalidOptionError(`job data is nested deeper than ${MAX_JSON_DEPTH} levels`)
    // In-process readers (the engine, the read model) take `parsed` instead of decoding
    // `value`: it must be what every other process decodes, not the caller's live object.
    const parsed = body._tag === "AddJob" ? (JSON.parse(value) as CommandEnvelope) : envelope
    if (parsed.body._tag === "AddJob" && !("data" in parsed.body))
      throw new InvalidOptionError("job data cannot be serialized to JSON: it serializes to nothing (a toJSON returning undefined?)")
    return partition === undefined ? { key, value, parsed } : { key, value, partition, parsed }
  }

  private async appendCommands(records: ReadonlyArray<OutgoingRecord>): Promise<void> {
    const { log } = await this.openedOrThrow()
    try {
      await run(log.append(topicsOf(this.name).commands, records))
    } catch (e) {
      throw this.asQueueError(e)
    }
  }

  /** Queue-wide commands reach every partition, so every owner applies them. */
  private queueCommand(body: CommandBody): Promise<void> {
    const sent = this.openedOrThrow().then(({ partitions }) =>
      this.appendCommands(Array.from({ length: partitions }, (_, p) => this.command(null, body, null, p)))
    )
    sent.catch((e) => this.report(e))
    return sent
  }

  private async shutdown(graceMs: number): Promise<void> {
    const engine = await this.engine?.catch(() => undefined)
    await engine?.close(graceMs)
    this.releaseRejections?.()
    await (await this.following)?.stop().catch((e) => this.report(e))
    const readModel = await this.readModelOpening?.catch(() => undefined)
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
