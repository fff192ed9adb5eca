/**
 * The public types of jobledger, as promised by the job-queue specification.
 */
import type { JobStateName } from "../machines/schema.ts"
import type { BackoffKind } from "./engine/backoff.ts"
import type { KafkaOptions } from "./log/kafka-options.ts"

/** `waiting`, `delayed`, `active`, `completed`, `failed` or `paused` (a removed job is in no view). */
export type JobState = Exclude<JobStateName, "removed">

/** A job as handlers, events, hooks and the store see it. */
export interface Job<Data = any, Result = any> {
  /** Unique job id; stable across re-runs, so handlers may use it as an idempotency key. */
  id: string
  name: string
  data: Data
  result?: Result
  error?: { message: string; name?: string; stack?: string }
  state: JobState
  /** Retries already made: 0 on the first run. */
  attemptsMade: number
  /** Retries allowed (`retry.attempts`): the handler runs at most `maxAttempts + 1` times. */
  maxAttempts: number
  /** Higher runs first. */
  priority: number
  createdAt: number
  runAt: number
  updatedAt: number
  metadata?: Record<string, any>
  /** The last progress its handler reported with `job.updateProgress(value)`. */
  progress?: unknown
  /** The schedule that added this job (`upsertSchedule`), and the tick it stands for. */
  schedule?: { id: string; tick: number }
  /** In a handler: fires on timeout, on `cancel()` and when `close()`'s grace period expires. */
  readonly signal?: AbortSignal
}

/** Options of one `add`. */
export interface JobOptions {
  /** Higher runs first (default 0). */
  priority?: number
  /** Milliseconds to wait before the job may run (default 0). */
  delay?: number
  metadata?: Record<string, any>
  /** Your own id; adding the same id twice returns the first job (idempotent add). */
  jobId?: string
  /** This job's per-attempt time limit in ms (a whole number > 0); overrides the queue's `timeout`. */
  timeout?: number
  /**
   * How long this job stays in memory once finished, overriding the queue's `keep` (e.g.
   * `{ completed: 0 }`: let it go at once). Counts must be finite here: the rule travels in the log.
   */
  keep?: KeepOptions
}

/**
 * A retention rule: keep at most `count` finished jobs (per partition), none older than `age`
 * ms. A number is a count. The log keeps every job's history whatever the rule.
 */
export type KeepRuleOptions = number | { count?: number; age?: number }

/** Which finished jobs stay in memory: `{ completed: 1000, failed: 5000 }` by default. */
export interface KeepOptions {
  completed?: KeepRuleOptions
  failed?: KeepRuleOptions
}

export interface RetryOptions {
  /** Retries after the first run (default 0). */
  attempts?: number
  /** Default `'fixed'`. */
  backoff?: BackoffKind
  /** Milliseconds before retry 1 (default 1000). */
  delay?: number
  /** Upper bound of any retry delay (default: none). */
  maxDelay?: number
}

export interface RateLimitOptions {
  /** At most `max` jobs start in any interval of `duration` ms. */
  max: number
  duration: number
}

export interface QueueHooks<Data = any> {
  /** After a job completed (its `JobCompleted` is durable). */
  onComplete?: (job: Job<Data>, result: any) => unknown
  /** Once, after a job failed for good (state already `failed`). */
  onFailed?: (job: Job<Data>, error: Error) => unknown
  /** Before each retry, with attempt 1..maxAttempts and the delay in ms. */
  onRetry?: (job: Job<Data>, attempt: number, delay: number) => unknown
}

/** Counts of jobs per state. `paused` counts waiting jobs of a paused queue. */
export interface QueueStats {
  waiting: number
  active: number
  completed: number
  failed: number
  delayed: number
  paused: number
}

/**
 * Where job views live. jobledger feeds it as a projection sink — `enqueue` when a job is
 * added, `update` on every later transition — and answers `get`/`list`/`stats` from it.
 * The log stays the source of truth, so `dequeue` is never called (the engine picks jobs
 * from its own ready queue, rebuilt from the log).
 */
export interface QueueStore<Data = any> {
  enqueue(job: Job<Data>): Promise<void> | void
  dequeue?(): Promise<Job<Data> | undefined>
  update(job: Job<Data>): Promise<void> | void
  get(id: string): Promise<Job<Data> | undefined> | Job<Data> | undefined
  list(state?: JobState): Promise<Array<Job<Data>>> | Array<Job<Data>>
  stats(): Promise<QueueStats> | QueueStats
}

export interface QueueOptions<Data = any> {
  /** Jobs running at once in this process (default 5). */
  concurrency?: number
  retry?: RetryOptions
  limiter?: RateLimitOptions
  hooks?: QueueHooks<Data>
  /** Custom job-view store (default: in memory, rebuilt from the log on start). */
  store?: QueueStore<Data>
  /** Per-attempt time limit in ms: the handler's AbortSignal fires and the attempt fails with a TimeoutError. */
  timeout?: number
  /** `'memory:'`, `'sqlite:/path/jobs.db'` or `'kafka://host:9092'` (default: `JOBLEDGER_LOG`, else `sqlite:./.jobledger/jobs.db`). */
  log?: string
  /**
   * Which finished jobs stay in this process's memory, per partition (the whole queue on
   * SQLite): default `{ completed: 1000, failed: 5000 }`; `Infinity` keeps all. Counts in
   * `stats()` stay exact, and the log keeps every job's history either way.
   */
  keep?: KeepOptions
  /** Kafka connection settings the log URL cannot say: TLS material, SASL credentials, client id, timeouts. */
  kafka?: KafkaOptions
}

/** A job as its handler gets it: the Job, plus what only a running job can do. */
export interface ActiveJob<Data = any, Result = any> extends Job<Data, Result> {
  /**
   * Reports progress (a number or any JSON value): a `progress` event and `job.progress` in
   * views. Coalesced: at most one event per job per ~100 ms, the last value wins, and the
   * last one is recorded before the job's outcome. Resolves once it is handed to the log.
   */
  updateProgress(value: unknown): Promise<void>
  readonly signal: AbortSignal
}

/** A job handler; its resolved value becomes `job.result` (JSON). */
export type JobHandler<Data = any, Result = any> = (job: ActiveJob<Data, Result>, signal: AbortSignal) => Promise<Result> | Result

/**
 * The events of a `JobQueue<Data>` and their listeners: `queue.on("completed", (job, result) => …)`
 * types `job` as `Job<Data>`. Announced by every process's read model as it applies the log.
 */
export interface QueueEvents<Data = any> {
  /** The engine accepted the job (`JobAdded` is in the log). */
  added: (job: Job<Data>) => void
  /** A handler started. */
  active: (job: Job<Data>) => void
  /** The handler resolved with `result`. */
  completed: (job: Job<Data>, result: any) => void
  /** Before each retry: attempt 1..maxAttempts, after `delay` ms. */
  retrying: (job: Job<Data>, attempt: number, delay: number) => void
  /** Once, when the job failed for good (state already `failed`). */
  failed: (job: Job<Data>, error: Error) => void
  /** A job left running by a dead engine was handed back. */
  stalled: (job: Job<Data>) => void
  /** Its handler reported progress (`job.updateProgress(value)`), coalesced. */
  progress: (job: Job<Data>, value: unknown) => void
  paused: () => void
  resumed: () => void
  /** A problem the engine survived (a hook threw, appends are being retried). */
  error: (error: Error) => void
}

/**
 * When a schedule ticks: `{ every: ms }` (counted from `startAt`, else from when it is
 * defined: the first job comes at once) or `{ cron: '0 8 * * *', tz?: 'Asia/Jakarta' }` (the
 * next time the expression names, in the zone; default UTC). `startAt`/`endAt` (ms since the
 * epoch) bound the ticks; `limit` bounds the jobs it adds in all.
 */
export type ScheduleRepeat = ({ every: number } | { cron: string; tz?: string }) & { startAt?: number; endAt?: number; limit?: number }

/** The job a schedule adds at each tick (its id is `<schedule id>:<tick time>`). */
export interface ScheduleTemplate<Data = any> {
  name: string
  data: Data
  opts?: Pick<JobOptions, "priority" | "metadata" | "timeout" | "keep">
}

/** A schedule as the queue holds it. */
export interface ScheduleInfo<Data = any> {
  id: string
  repeat: ScheduleRepeat
  template: ScheduleTemplate<Data>
  /** Jobs it has added since it was defined. */
  count: number
  /** Its last tick (ms since the epoch), if any. */
  lastTick?: number
  /** Its next tick, if it has one. */
  nextTick?: number
}
