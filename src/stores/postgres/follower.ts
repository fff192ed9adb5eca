/**
 * Following a queue's events topic into the Postgres tables, from the positions stored there.
 *
 * Invariants:
 * - The table cannot miss an event: each partition is read from the `positions` row, which
 *   moves in the same SQL transaction as the rows of the events it covers. A restart
 *   resumes from there; offset 0 is read only when the table holds nothing of the queue.
 * - Safe under redelivery and several followers: a batch locks its partition's position
 *   (`FOR UPDATE`), applies only the records at or after it, and a row is only overwritten
 *   by a later event of its partition. The same events twice change nothing.
 * - Never skips: a batch that fails is rolled back and tried again (with backoff) until it
 *   commits or the follower stops; the log's follow waits meanwhile (one batch at a time per
 *   partition), so the position never runs ahead of the rows.
 * - Never leaves a gap when the table goes back in time (restored from a backup, commits
 *   lost in a server crash): a stored position below what this follower committed makes it
 *   follow that partition again from the stored position.
 * - `caughtUp()` resolves once every event in the log at the time of the call is in the
 *   table (queries of a following store call it first: read-your-writes in its process).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { EventEnvelope } from "../../../machines/schema.ts"
import { decodeEvent } from "../../codec.ts"
import type { LogRecord } from "../../log/event-log.ts"
import { run } from "../../run.ts"
import { runPromise } from "../../effect-runtime.ts"
import type { FollowSource, OpenedLog, StoreFollower } from "../following.ts"
import { foldBatch, type Held, type OffsetEvent } from "./fold.ts"
import { isRetryablePgError, type PgPool, PostgresStoreError } from "./pg.ts"
import { heldOf } from "./rows.ts"
import {
  advancePosition,
  applyQueueMove,
  BEGIN_BATCH,
  ensurePositions,
  finishBatch,
  inTransaction,
  loadPositions,
  loadRows,
  lockPosition,
  resetQueue,
  STORE_VERSION,
  upsertRows
} from "./sql.ts"

/** How a failed batch is retried: exponential from `firstMs`, capped at `maxMs`, forever. */
export const BATCH_RETRY = { firstMs: 100, maxMs: 5_000 } as const
export const batchRetryDelay = (attempt: number): number => Math.min(BATCH_RETRY.maxMs, BATCH_RETRY.firstMs * 2 ** Math.max(0, attempt - 1))
/** How long `stop()` waits for the table to catch up with the log before it stops anyway. */
export const STOP_CATCH_UP_MS = 10_000

/** Counters of a follower, for tests and monitoring. */
export interface FollowerProgress {
  /** Records handed over by the log (each once per delivery). */
  readonly recordsRead: number
  /** Records applied (at or after the stored position when their batch ran). */
  readonly recordsApplied: number
  /** Records skipped because the table had them already (redelivery, another follower). */
  readonly recordsSkipped: number
  readonly batches: number
  /** Batches rolled back and tried again. */
  readonly retries: number
  /** Times a partition was followed again because the table went back below what this follower had committed. */
  readonly rewinds: number
  /** Per partition: the offset after the last record this follower committed (or found committed). */
  readonly next: ReadonlyArray<number>
}

/** A follow source whose log is open. */
export type OpenSource = Omit<FollowSource, "opened"> & OpenedLog

/** The stored position is below what this follower committed: the table went back in time. */
class Rewound {
  constructor(readonly to: number) {}
}

export class PostgresFollower implements StoreFollower {
  /** Per partition: the subscription to the log, and its generation (deliveries of an older one are ignored). */
  private readonly subscriptions: Array<{ scope: Scope.CloseableScope; generation: number } | undefined>
  private readonly applied: Array<number>
  private readonly waiters: Array<{ readonly until: ReadonlyArray<number>; readonly resolve: () => void }> = []
  private readonly inflight = new Set<Promise<void>>()
  private stopped = false
  private stopping: Promise<void> | undefined
  private readonly counters = { recordsRead: 0, recordsApplied: 0, recordsSkipped: 0, batches: 0, retries: 0, rewinds: 0 }
  private readonly sleepers = new Set<() => void>()

  private constructor(
    private readonly pool: PgPool,
    private readonly schema: string,
    private readonly source: OpenSource,
    from: ReadonlyArray<number>
  ) {
    this.applied = [...from]
    this.subscriptions = from.map(() => undefined)
  }

  /**
   * Reads the stored positions (creating them, or rebuilding a table written under another
   * version), checks them against the log, and follows every partition from there.
   */
  static async start(pool: PgPool, schema: string, source: OpenSource): Promise<PostgresFollower> {
    const { log, queue, topics, partitions, report } = source
    const from = await inTransaction(pool, async (db) => {
      let stored = await loadPositions(db, schema, queue)
      const stale = [...stored.values()].find((p) => p.version !== STORE_VERSION)
      if (stale !== undefined) {
        report(new Error(`PostgresQueueStore: the rows of queue '${queue}' in schema '${schema}' were written under version ${stale.version} (this is ${STORE_VERSION}); rebuilding them from the log`))
        await resetQueue(db, schema, queue)
        stored = new Map()
      }
      await ensurePositions(db, schema, queue, partitions)
      stored = await loadPositions(db, schema, queue)
      return Array.from({ length: partitions }, (_, p) => stored.get(p)?.next ?? 0)
    })
    for (let p = 0; p < partitions; p++) {
      const end = await run(log.endOffset(topics.events, p))
      if (from[p]! > end)
        throw new PostgresStoreError(
          `PostgresQueueStore: schema '${schema}' has queue '${queue}' partition ${p} at offset ${from[p]}, but ${log.url} ends at ${end}: ` +
            "the table follows another log (use another schema, or delete the queue's rows to rebuild them)",
          false
        )
    }
    const follower = new PostgresFollower(pool, schema, source, from)
    try {
      for (let p = 0; p < partitions; p++) await follower.subscribe(p, from[p]!)
    } catch (e) {
      await follower.unsubscribeAll()
      throw e
    }
    return follower
  }

  /** Follows partition `p` of the events topic from `from` (ending the previous subscription). */
  private async subscribe(p: number, from: number): Promise<void> {
    const previous = this.subscriptions[p]
    const generation = (previous?.generation ?? 0) + 1
    const scope = await runPromise(Scope.make())
    this.subscriptions[p] = { scope, generation }
    if (previous !== undefined) await runPromise(Scope.close(previous.scope, Exit.void))
    const { log, topics } = this.source
    await runPromise(Scope.extend(log.follow(topics.events, p, from, (records) => this.deliver(p, generation, records)), scope))
  }

  private async unsubscribeAll(): Promise<void> {
    for (const s of this.subscriptions.splice(0)) if (s !== undefined) await runPromise(Scope.close(s.scope, Exit.void))
  }

  get progress(): FollowerProgress {
    return { ...this.counters, next: [...this.applied] }
  }

  /** Resolves once everything in the log at the time of the call is in the table. */
  async caughtUp(): Promise<void> {
    const { log, topics, partitions } = this.source
    const ends: Array<number> = []
    for (let p = 0; p < partitions; p++) ends.push(await run(log.endOffset(topics.events, p)))
    if (this.reached(ends) || this.stopped) return
    await new Promise<void>((resolve) => this.waiters.push({ until: ends, resolve }))
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.stopped) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          this.caughtUp().catch(() => undefined),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_CATCH_UP_MS)))
        ])
        clearTimeout(timer)
      }
      this.stopped = true
      for (const wake of this.sleepers) wake()
      await this.unsubscribeAll()
      await Promise.all([...this.inflight])
      for (const w of this.waiters.splice(0)) w.resolve()
    })()
    return this.stopping
  }

  /** The log's callback: never throws (a throw would end or skip the follow); retries until done or stopped. */
  private deliver(partition: number, generation: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    if (this.subscriptions[partition]?.generation !== generation) return Promise.resolve() // an ended subscription's
    const work = this.deliverWithRetry(partition, records)
    this.inflight.add(work)
    return work.finally(() => this.inflight.delete(work))
  }

  private async deliverWithRetry(partition: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    if (records.length === 0) return
    this.counters.recordsRead += records.length
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.applyBatch(partition, records)
        this.wake()
        return
      } catch (e) {
        if (this.stopped) return
        if (e instanceof Rewound) {
          this.source.report(
            new PostgresStoreError(
              `PostgresQueueStore: ${this.source.topics.events}/${partition} is at offset ${e.to} in the table, below the ${this.applied[partition]} this process committed (restored from a backup, or commits lost in a crash?); following it again from ${e.to}`,
              true
            )
          )
          this.applied[partition] = e.to
          this.counters.rewinds++
          await this.subscribe(partition, e.to)
          return
        }
        this.counters.retries++
        const delay = batchRetryDelay(attempt)
        const how = isRetryablePgError(e) ? "will retry" : "this looks like a bug or a schema problem; retrying anyway, the follower never skips an event"
        this.source.report(
          new PostgresStoreError(
            `PostgresQueueStore: applying ${this.source.topics.events}/${partition} offsets ${records[0]!.offset}–${records[records.length - 1]!.offset} failed (attempt ${attempt}; ${how} in ${delay} ms): ${(e as Error).message}`,
            isRetryablePgError(e),
            { cause: e }
          )
        )
        await this.sleep(delay)
      }
    }
  }

  /** One batch in one SQL transaction: lock the position, fold the records after it, write. */
  private async applyBatch(partition: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    const { queue, report, topics } = this.source
    const schema = this.schema
    const end = records[records.length - 1]!.offset + 1
    await inTransaction(this.pool, async (db) => {
      const position = await lockPosition(db, schema, queue, partition)
      if (position === undefined)
        throw new PostgresStoreError(`PostgresQueueStore: queue '${queue}' partition ${partition} has no row in ${schema}.positions (deleted while following?)`, false)
      // the table never goes below what any follower committed, unless it went back in time
      if (position.next < (this.applied[partition] ?? 0)) throw new Rewound(position.next)
      const fresh = records.filter((r) => r.offset >= position.next)
      this.counters.batches++
      this.counters.recordsSkipped += records.length - fresh.length
      if (fresh.length === 0) return
      const events: Array<OffsetEvent> = []
      for (const record of fresh) {
        // our own process's appends arrive with their envelope: decoding is for outside bytes
        const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as EventEnvelope } : decodeEvent(record.value)
        if (decoded.ok) events.push({ offset: record.offset, envelope: decoded.value })
        else report(new Error(`${topics.events}/${partition}@${record.offset}: undecodable event skipped: ${decoded.reason}`))
      }
      const ids = new Set<string>()
      for (const { envelope } of events) if (envelope.jobId !== null) ids.add(envelope.jobId)
      const rows = new Map<string, Held>()
      for (const row of await loadRows(db, schema, queue, [...ids])) rows.set(row.id, heldOf(queue, row))
      const result = foldBatch(position, rows, events, end)
      const delta = { ...result.delta }
      const last = result.ops[result.ops.length - 1]
      for (const op of result.ops) {
        if (op === last) break
        if (op.kind === "upsert") await upsertRows(db, schema, queue, partition, op.rows)
        else
          for (const move of op.moves) {
            const moved = await applyQueueMove(db, schema, queue, partition, move, op)
            delta[move.from] -= moved
            delta[move.to] += moved
          }
      }
      const rowsLeft = last?.kind === "upsert" ? last.rows : []
      const changed = rowsLeft.length > 0 || Object.values(delta).some((n) => n !== 0)
      if (changed) await finishBatch(db, schema, queue, partition, rowsLeft, delta, result.position)
      else await advancePosition(db, schema, queue, partition, result.position)
      this.counters.recordsApplied += fresh.length
    }, BEGIN_BATCH)
    this.applied[partition] = Math.max(this.applied[partition] ?? 0, end)
  }

  private reached(ends: ReadonlyArray<number>): boolean {
    return ends.every((end, p) => (this.applied[p] ?? 0) >= end)
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!
      if (this.reached(w.until)) {
        this.waiters.splice(i, 1)
        w.resolve()
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.sleepers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.sleepers.add(done)
    })
  }
}
