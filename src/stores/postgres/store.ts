/**
 * PostgresQueueStore: every job's view of a queue in PostgreSQL, kept by following the log.
 *
 * Given to a `JobQueue` as `store`, it follows the queue's events topic itself (see
 * `follower.ts`) from positions stored beside its rows, so the table holds every job ever
 * run — finished ones included, whatever `keep` lets the process's memory hold — and a
 * restart resumes where the table stands. Any process may also open one without a JobQueue
 * (`new PostgresQueueStore({ connectionString, queue })`) to query the tables.
 *
 * Invariants:
 * - In a process that follows, a query first waits until the table holds everything in the
 *   log at the time of the call (as the built-in store waits for its read model): a
 *   `completed` listener that calls `store.get` sees the job completed.
 * - `enqueue`/`update` are refused: the rows are a projection of the log, written only by
 *   the follower (the engine never calls them on a following store).
 * - The store ends only a pool it created (`connectionString`/`poolConfig`), never one it was given.
 */
import type { JobStateName } from "../../../machines/schema.ts"
import { toJob } from "../../job.ts"
import type { Job, JobState, QueueStats } from "../../types.ts"
import type { FollowingStore, FollowSource, StoreFollower } from "../following.ts"
import { batchRetryDelay, type FollowerProgress, PostgresFollower } from "./follower.ts"
import { createPool, isRetryablePgError, type PgImporter, type PgPool, PostgresStoreError } from "./pg.ts"
import { type ReadRow, viewOfRow } from "./rows.ts"
import { checkSchemaName, countsSql, fromJobs, migrate, READ_COLUMNS } from "./sql.ts"

export interface PostgresQueueStoreOptions {
  /** A `pg.Pool` of yours (the store never ends it). Else the store makes one from the options below. */
  readonly pool?: PgPool
  /** `postgres://user@host:5432/db`: the store makes (and on `close()` ends) its own pool. */
  readonly connectionString?: string
  /** More `pg.PoolConfig` fields for the pool the store makes (`max`, `ssl`, …). */
  readonly poolConfig?: Readonly<Record<string, unknown>>
  /** The schema of the tables (created if missing): default `jobledger`. */
  readonly schema?: string
  /** The queue whose jobs this store answers for; a JobQueue given the store sets it (they must agree). */
  readonly queue?: string
  /**
   * `false`: never follow the log, only answer from the tables (another process keeps them,
   * e.g. one engine per queue with a following store). Default `true`.
   */
  readonly follow?: boolean
}

/** One page of `page()`/`list()`. */
export interface PageOptions {
  /** At most this many jobs (1 to 10,000; default 100). */
  readonly limit?: number
  /** Where the previous page ended (its `cursor`); absent: the first page. */
  readonly cursor?: string
  /** `'asc'` (default): least recently updated first; `'desc'`: most recently updated first (by id without a state). */
  readonly order?: "asc" | "desc"
}

export interface Page<Data = any> {
  readonly jobs: Array<Job<Data>>
  /** Pass it as `cursor` for the next page; `undefined` when this page is the last. */
  readonly cursor: string | undefined
}

const DEFAULT_PAGE = 100
const MAX_PAGE = 10_000
const STATES: ReadonlyArray<JobStateName> = ["waiting", "active", "completed", "failed", "delayed", "paused"]

/** Every job view of a queue in PostgreSQL (see the module comment and the README). */
export class PostgresQueueStore<Data = any> implements FollowingStore<Data> {
  /** The schema of the tables. */
  readonly schema: string
  private queueName: string | undefined
  private readonly options: PostgresQueueStoreOptions
  private poolOpening: Promise<PgPool> | undefined
  private migrated: Promise<void> | undefined
  private follower: PostgresFollower | undefined
  private lastFollower: PostgresFollower | undefined
  /** While a JobQueue has handed this store its log: the follower once started (`undefined` if it could not). */
  private followerReady: Promise<PostgresFollower | undefined> | undefined
  private attached = false
  private closed = false

  constructor(options: string | PostgresQueueStoreOptions = {}, private readonly importer?: PgImporter) {
    this.options = typeof options === "string" ? { connectionString: options } : options
    this.schema = checkSchemaName(this.options.schema ?? "jobledger")
    if (this.options.queue !== undefined && (typeof this.options.queue !== "string" || this.options.queue.length === 0))
      throw new TypeError("queue must be a non-empty string")
    this.queueName = this.options.queue
  }

  /** The queue this store answers for (`undefined` until given or followed). */
  get queue(): string | undefined {
    return this.queueName
  }

  /** The counters of this store's follower in this process (the last one, once stopped); `undefined` if it never followed. */
  get progress(): FollowerProgress | undefined {
    return this.lastFollower?.progress
  }

  // ---------------------------------------------------------------- following (called by JobQueue)

  async follow(source: FollowSource): Promise<StoreFollower> {
    if (this.closed) throw new PostgresStoreError("PostgresQueueStore is closed", false)
    if (this.queueName !== undefined && this.queueName !== source.queue)
      throw new PostgresStoreError(`PostgresQueueStore: this store is for queue '${this.queueName}', not '${source.queue}'`, false)
    this.queueName = source.queue
    if (this.options.follow === false) return { stop: async () => {} }
    if (this.attached)
      throw new PostgresStoreError(`PostgresQueueStore: this store already follows queue '${source.queue}'; give it to one JobQueue per process`, false)
    this.attached = true
    let stopped = false
    let wakeUp: (() => void) | undefined
    const start = async () => {
      const opened = await source.opened.catch((e: unknown) => {
        throw new PostgresStoreError(`PostgresQueueStore: the log of queue '${source.queue}' did not open: ${(e as Error)?.message ?? String(e)}`, false, { cause: e })
      })
      await this.ready()
      const follower = await PostgresFollower.start(await this.pool(), this.schema, { ...source, ...opened })
      this.lastFollower = follower
      if (stopped) await follower.stop()
      else this.follower = follower
    }
    const first = start()
    // set synchronously, in JobQueue's constructor: queries made from now on wait for the follower to start
    this.followerReady = first.then(
      () => this.follower,
      () => undefined
    )
    const retrying = (async () => {
      try {
        return await first
      } catch (e) {
        if (!retryable(e)) return
        source.report(e) // PostgreSQL (or the log) is not reachable yet: keep trying in the background
      }
      for (let attempt = 2; !stopped && this.follower === undefined; attempt++) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, batchRetryDelay(attempt))
          wakeUp = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        if (stopped) return
        try {
          await start()
        } catch (again) {
          source.report(again)
          if (!retryable(again)) return
        }
      }
    })()
    try {
      await first
    } catch (e) {
      if (!retryable(e)) {
        this.attached = false
        this.followerReady = undefined
        throw e
      }
    }
    return {
      stop: async () => {
        stopped = true
        wakeUp?.()
        await retrying
        await this.follower?.stop()
        this.follower = undefined
        this.followerReady = undefined
        this.attached = false
      }
    }
  }

  /** Refused: rows are written only from the log, by the store's follower. */
  async enqueue(job: Job<Data>): Promise<void> {
    throw refusedWrite("enqueue", job)
  }

  /** Refused: rows are written only from the log, by the store's follower. */
  async update(job: Job<Data>): Promise<void> {
    throw refusedWrite("update", job)
  }

  // ---------------------------------------------------------------- queries

  /** The job with this id — live or finished, however long ago — or `undefined`. */
  async get(id: string): Promise<Job<Data> | undefined> {
    const queue = await this.beforeQuery()
    const r = await (await this.pool()).query<ReadRow>(`SELECT ${READ_COLUMNS} FROM ${fromJobs(this.schema)} WHERE j.queue = $1 AND j.id = $2`, [queue, id])
    const row = r.rows[0]
    return row === undefined ? undefined : (toJob(viewOfRow(row)) as Job<Data>)
  }

  /**
   * Jobs of the queue, in `state` when given. Without `limit` every matching job is
   * returned (use `page` on large tables); with it, one page (see `page`).
   */
  async list(state?: JobState, page?: PageOptions): Promise<Array<Job<Data>>> {
    if (page?.limit === undefined && page?.cursor === undefined) return (await this.select(state, undefined, page?.order ?? "asc")).jobs
    return (await this.page(state, page)).jobs
  }

  /**
   * One page of jobs in `state` (ordered by `updatedAt`, then id), or of every job
   * (ordered by id); `cursor` continues where the previous page ended. Pages are keyset
   * pages: each costs its own size, however deep. A job that changes state while you page
   * moves to another list.
   */
  async page(state?: JobState, options: PageOptions = {}): Promise<Page<Data>> {
    const limit = options.limit ?? DEFAULT_PAGE
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new TypeError(`limit must be a whole number from 1 to ${MAX_PAGE} (got ${String(limit)})`)
    return this.select(state, { limit, cursor: options.cursor }, options.order ?? "asc")
  }

  /** Counts per state, from the counts table (exact, and ≤ 6 rows per partition to read). */
  async stats(): Promise<QueueStats> {
    const queue = await this.beforeQuery()
    const r = await (await this.pool()).query<{ state: keyof QueueStats; n: string }>(countsSql(this.schema), [queue])
    const stats: Record<keyof QueueStats, number> = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 }
    for (const row of r.rows) stats[row.state] = Number(row.n)
    return stats
  }

  /** Stops following (if it does) and ends the pool the store made. Queries fail afterwards. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.follower?.stop()
    this.follower = undefined
    if (this.options.pool === undefined && this.poolOpening !== undefined) await (await this.poolOpening.catch(() => undefined))?.end()
  }

  // ---------------------------------------------------------------- internals

  private async select(state: JobState | undefined, page: { limit: number; cursor: string | undefined } | undefined, order: "asc" | "desc"): Promise<Page<Data>> {
    if (state !== undefined && !STATES.includes(state)) throw new TypeError(`state must be one of ${STATES.join(", ")} (got ${String(state)})`)
    if (order !== "asc" && order !== "desc") throw new TypeError(`order must be 'asc' or 'desc' (got ${String(order)})`)
    const queue = await this.beforeQuery()
    const cmp = order === "asc" ? ">" : "<"
    const dir = order === "asc" ? "ASC" : "DESC"
    const values: Array<unknown> = [queue]
    let where = "j.queue = $1"
    let orderBy: string
    const after = page?.cursor === undefined ? undefined : decodeCursor(page.cursor, state, order)
    if (state !== undefined) {
      values.push(state)
      where += ` AND j.state = $${values.length}`
      if (after !== undefined) {
        values.push(after[0], after[1])
        where += ` AND (j.updated_at, j.id) ${cmp} ($${values.length - 1}::float8, $${values.length}::text)`
      }
      orderBy = `j.updated_at ${dir}, j.id ${dir}`
    } else {
      if (after !== undefined) {
        values.push(after[1])
        where += ` AND j.id ${cmp} $${values.length}::text`
      }
      orderBy = `j.id ${dir}`
    }
    let limit = ""
    if (page !== undefined) {
      values.push(page.limit)
      limit = ` LIMIT $${values.length}`
    }
    const r = await (await this.pool()).query<ReadRow>(`SELECT ${READ_COLUMNS} FROM ${fromJobs(this.schema)} WHERE ${where} ORDER BY ${orderBy}${limit}`, values)
    const jobs = r.rows.map((row) => toJob(viewOfRow(row)) as Job<Data>)
    const last = r.rows[r.rows.length - 1]
    const cursor = page !== undefined && last !== undefined && r.rows.length === page.limit ? encodeCursor(state, order, last) : undefined
    return { jobs, cursor }
  }

  /** The queue, with the tables ready and (when following) the table caught up with the log. */
  private async beforeQuery(): Promise<string> {
    if (this.closed) throw new PostgresStoreError("PostgresQueueStore is closed", false)
    const queue = this.queueName
    if (queue === undefined)
      throw new PostgresStoreError("PostgresQueueStore: which queue? Pass { queue } to the store, or give it to a JobQueue as its store", false)
    await this.ready()
    const follower = this.follower ?? (await this.followerReady)
    await follower?.caughtUp()
    return queue
  }

  private pool(): Promise<PgPool> {
    this.poolOpening ??=
      this.options.pool !== undefined
        ? Promise.resolve(this.options.pool)
        : createPool(
            { ...this.options.poolConfig, ...(this.options.connectionString === undefined ? {} : { connectionString: this.options.connectionString }) },
            this.importer
          )
    return this.poolOpening
  }

  /** The tables exist (created on first use; a failed attempt is tried again by the next call). */
  private ready(): Promise<void> {
    this.migrated ??= this.pool()
      .then((pool) => migrate(pool, this.schema))
      .catch((e) => {
        this.migrated = undefined
        throw e
      })
    return this.migrated
  }
}

const retryable = (e: unknown): boolean => {
  const flag = (e as { retryable?: unknown } | null)?.retryable
  return typeof flag === "boolean" ? flag : isRetryablePgError(e)
}

const refusedWrite = (method: string, job: Job) =>
  new PostgresStoreError(
    `PostgresQueueStore.${method}(${JSON.stringify(job?.id)}): the rows are written from the log by the store's follower, never directly; add jobs with queue.add()`,
    false
  )

/** Cursors are opaque to callers: base64url JSON of [state, order, updatedAt, id]. */
const encodeCursor = (state: JobState | undefined, order: "asc" | "desc", row: ReadRow): string =>
  Buffer.from(JSON.stringify([state ?? null, order, row.updated_at, row.id])).toString("base64url")

const decodeCursor = (cursor: string, state: JobState | undefined, order: "asc" | "desc"): [number, string] => {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
  } catch {
    parsed = undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || typeof parsed[2] !== "number" || typeof parsed[3] !== "string")
    throw new TypeError("cursor is not one this store returned")
  if (parsed[0] !== (state ?? null) || parsed[1] !== order)
    throw new TypeError(`cursor belongs to a page of ${parsed[0] ?? "every state"} (${parsed[1]}), not of ${state ?? "every state"} (${order})`)
  return [parsed[2], parsed[3]]
}
