/**
 * The read plane of one queue in this process: a QueueProjection fed from the events topic.
 *
 * Invariants:
 * - Every partition is applied in offset order, each record once per follow.
 * - A change reaches the sink (a custom store) before it is announced, so a listener of
 *   `completed` that calls `store.get` sees the completed job.
 * - Events already in the log when the read model opened are applied silently (they
 *   rebuild state); only events appended after that are announced.
 * - `caughtUp()` resolves once every event that was in the log when it was called has been
 *   applied: queries call it first, so a `stats()` after an `add` elsewhere sees that add.
 */
import { run } from "../run.ts"
import { Effect, Exit, Scope } from "effect"
import type { EventEnvelope } from "../../machines/schema.ts"
import type { JobView } from "../../projections/job-view.ts"
import { QueueProjection } from "../../projections/queue-projection.ts"
import { decodeEvent } from "../codec.ts"
import type { EventLogService, LogRecord } from "../log/event-log.ts"

export interface Change {
  readonly envelope: EventEnvelope
  readonly before: JobView | undefined
  readonly after: JobView | undefined
}

export interface ReadModelOptions {
  readonly log: EventLogService
  readonly topic: string
  readonly partitions: number
  /** Receives every job view change, in order, before it is announced. */
  readonly sink?: (before: JobView | undefined, after: JobView) => Promise<void> | void
  /** Announces a live change (not one replayed at open). */
  readonly announce: (change: Change) => void
  readonly report: (error: unknown) => void
}

export class ReadModel {
  readonly projection = new QueueProjection()
  private readonly next: Array<number>
  private readonly liveFrom: Array<number>
  private readonly waiters: Array<{ readonly until: ReadonlyArray<number>; readonly resolve: () => void }> = []

  private constructor(
    private readonly options: ReadModelOptions,
    private readonly scope: Scope.CloseableScope
  ) {
    this.next = new Array<number>(options.partitions).fill(0)
    this.liveFrom = new Array<number>(options.partitions).fill(0)
  }

  static async open(options: ReadModelOptions): Promise<ReadModel> {
    const scope = await Effect.runPromise(Scope.make())
    const model = new ReadModel(options, scope)
    const { log, topic } = options
    for (let p = 0; p < options.partitions; p++) {
      model.liveFrom[p] = await run(log.endOffset(topic, p))
    }
    for (let p = 0; p < options.partitions; p++) {
      await Effect.runPromise(Scope.extend(log.follow(topic, p, 0, (records) => model.apply(p, records)), scope))
    }
    await model.caughtUp()
    return model
  }

  /** Resolves once everything in the log at the time of the call has been applied. */
  async caughtUp(): Promise<void> {
    const ends: Array<number> = []
    for (let p = 0; p < this.options.partitions; p++)
      ends.push(await run(this.options.log.endOffset(this.options.topic, p)))
    if (this.reached(ends)) return
    await new Promise<void>((resolve) => this.waiters.push({ until: ends, resolve }))
  }

  async close(): Promise<void> {
    await Effect.runPromise(Scope.close(this.scope, Exit.void))
    for (const w of this.waiters.splice(0)) w.resolve()
  }

  private reached(ends: ReadonlyArray<number>): boolean {
    return ends.every((end, p) => (this.next[p] ?? 0) >= end)
  }

  private async apply(partition: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    const { sink, announce, report } = this.options
    for (const record of records) {
      // Our own appends arrive with their envelope (same process): decoding is for outside bytes.
      const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as EventEnvelope } : decodeEvent(record.value)
      if (!decoded.ok) {
        report(new Error(`${record.topic}/${partition}@${record.offset}: undecodable event skipped: ${decoded.reason}`))
      } else {
        const envelope = decoded.value
        const before = envelope.jobId === null ? undefined : this.projection.get(envelope.jobId)
        const changes = this.projection.apply(envelope)
        if (sink !== undefined) {
          for (const c of changes) {
            try {
              await sink(c.before, c.after)
            } catch (e) {
              report(e)
            }
          }
        }
        if (record.offset >= (this.liveFrom[partition] ?? 0) && (changes.length > 0 || envelope.jobId === null)) {
          const after = envelope.jobId === null ? undefined : this.projection.get(envelope.jobId)
          announce({ envelope, before, after })
        }
      }
      this.next[partition] = record.offset + 1
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!
      if (this.reached(w.until)) {
        this.waiters.splice(i, 1)
        w.resolve()
      }
    }
  }
}
