/**
 * The read plane of one queue in this process: one PartitionState per partition, restored
 * from the partition's latest snapshot and fed the events after it.
 *
 * Invariants:
 * - Cost follows live jobs, not history: opening reads each partition's snapshot and the
 *   events after it, never the whole log; memory holds live jobs and retained finished ones.
 * - Every partition is applied in offset order, each record once per follow.
 * - A change reaches the sink (a custom store) before it is announced, so a listener of
 *   `completed` that calls `store.get` sees the completed job.
 * - Events already in the log when the read model opened are applied silently (they
 *   rebuild state); only events appended after that are announced.
 * - `caughtUp()` resolves once every event and command that was in the log when it was
 *   called has been applied: queries call it first, so a `stats()` after an `add`
 *   elsewhere sees that add — as a pending job until an engine accepts it.
 * - Commands are followed from the engine group's committed offset (everything before it
 *   is already reflected in events), from the first `caughtUp()` on: pending adds are for
 *   queries, and every query calls it first. So an engine's process that never asks does
 *   not read and decode its backlog of commands a second time (its engine reads them).
 * - `paused`/`resumed` are announced once per queue, not once per partition: every owner
 *   appends its own QueuePaused/QueueResumed from the same broadcast commands, so the same
 *   queue seq means the same fact. They are announced in seq order, when the queue as a
 *   whole changes: `paused` once every partition is paused (a listener may rely on no job
 *   starting anywhere, and on every waiting job showing as paused), `resumed` as soon as the
 *   first partition runs again (so it precedes the `active` of any job it released). A
 *   pause that a resume overtakes on some partition is announced just before that resume.
 */
import { run } from "../run.ts"
import { runPromise } from "../effect-runtime.ts"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { CommandEnvelope, EventEnvelope, JobStateName } from "../../machines/schema.ts"
import { isQueueBody, type JobView } from "../../projections/job-view.ts"
import { PendingAdds } from "../../projections/pending-adds.ts"
import { QueueState } from "../../projections/queue-state.ts"
import type { Retention } from "../../projections/retention.ts"
import { addStats, type QueueStats } from "../../projections/stats.ts"
import { decodeCommand, decodeEvent } from "../codec.ts"
import type { EventLogService, LogRecord } from "../log/event-log.ts"
import { restoreStart } from "./restore-start.ts"

export interface Change {
  readonly envelope: EventEnvelope
  readonly before: JobView | undefined
  readonly after: JobView | undefined
}

export interface ReadModelOptions {
  readonly log: EventLogService
  readonly queue: string
  readonly topic: string
  readonly commandsTopic: string
  readonly group: string
  readonly partitions: number
  /** Which finished jobs stay in this process's memory. */
  readonly retention: Retention
  /** `maxAttempts` shown for a job no engine has accepted yet (the producer's retry.attempts). */
  readonly pendingMaxAttempts: number
  /** Receives every job view change, in order, before it is announced. */
  readonly sink?: (before: JobView | undefined, after: JobView) => Promise<void> | void
  /** Announces a live change (not one replayed at open). */
  readonly announce: (change: Change) => void
  readonly report: (error: unknown) => void
}

export class ReadModel {
  readonly state: QueueState
  private readonly pending = new PendingAdds()
  private readonly next: Array<number>
  private readonly nextCommand: Array<number>
  private readonly liveFrom: Array<number>
  /** Whether the commands of each partition are followed yet (see the header). */
  private readonly followingCommands: Array<boolean>
  private closed = false
  private readonly waiters: Array<{ readonly until: ReadonlyArray<number>; readonly resolve: () => void }> = []
  private readonly pausedOf = (p: number) => this.state.partitions[p]?.queuePaused ?? false
  /** The last queue event seq the queue as a whole has reached (see the header): announced, if live. */
  private announcedQueueSeq = -1
  /** Queue events applied on some partition that the queue as a whole has not reached, by seq. */
  private readonly queueFacts = new Map<number, EventEnvelope>()

  private constructor(
    private readonly options: ReadModelOptions,
    private readonly scope: Scope.CloseableScope
  ) {
    this.state = new QueueState(options.partitions, options.retention)
    this.next = new Array<number>(options.partitions).fill(0)
    this.nextCommand = new Array<number>(options.partitions).fill(0)
    this.liveFrom = new Array<number>(options.partitions).fill(0)
    this.followingCommands = new Array<boolean>(options.partitions).fill(false)
  }

  static async open(options: ReadModelOptions): Promise<ReadModel> {
    const scope = await runPromise(Scope.make())
    const model = new ReadModel(options, scope)
    const { log, topic } = options
    for (let p = 0; p < options.partitions; p++) {
      model.liveFrom[p] = await run(log.endOffset(topic, p))
      model.next[p] = await model.restore(p)
    }
    for (let p = 0; p < options.partitions; p++) {
      await runPromise(Scope.extend(log.follow(topic, p, model.next[p]!, (records) => model.apply(p, records)), scope))
    }
    await model.reachedEnds(false)
    // queue events every partition restored from a snapshot are history
    model.announcedQueueSeq = Math.max(model.announcedQueueSeq, Math.min(...model.state.partitions.map((p) => p.queueSeq)))
    return model
  }

  /** Resolves once everything in the log at the time of the call has been applied. */
  async caughtUp(): Promise<void> {
    await this.followCommands()
    await this.reachedEnds(true)
  }

  /** Resolves once the events (and commands, if asked) in the log now have been applied. */
  private async reachedEnds(withCommands: boolean): Promise<void> {
    const { log, topic, commandsTopic, partitions } = this.options
    const ends: Array<number> = []
    for (let p = 0; p < partitions; p++) ends.push(await run(log.endOffset(topic, p)))
    if (withCommands) for (let p = 0; p < partitions; p++) ends.push(await run(log.endOffset(commandsTopic, p)))
    if (this.reached(ends)) return
    await new Promise<void>((resolve) => this.waiters.push({ until: ends, resolve }))
  }

  /** Starts following the commands of every partition not followed yet (see the header). */
  private async followCommands(): Promise<void> {
    const { log, commandsTopic, group, partitions } = this.options
    for (let p = 0; p < partitions; p++) {
      if (this.followingCommands[p] === true || this.closed) continue
      const from = await run(log.committedOffset(group, commandsTopic, p))
      // another caughtUp() may have started it meanwhile
      if (this.followingCommands[p] === true || this.closed) continue
      this.followingCommands[p] = true
      this.nextCommand[p] = from
      try {
        await runPromise(Scope.extend(log.follow(commandsTopic, p, from, (records) => this.applyCommands(p, records)), this.scope))
      } catch (e) {
        this.followingCommands[p] = false // the next query tries again
        throw e
      }
    }
  }

  /** A job's view: held (live, or finished within retention), else pending (asked for, not yet accepted). */
  get(id: string): JobView | undefined {
    return this.state.get(id) ?? this.pending.get(id, this.pausedOf)
  }

  list(state?: JobStateName): Array<JobView> {
    return [...this.state.list(state), ...this.pending.list(state, this.pausedOf)]
  }

  stats(): QueueStats {
    const accepted = this.state.stats()
    return this.pending.size === 0 ? accepted : addStats(accepted, this.pending.stats(this.pausedOf))
  }

  /** True while some partition holds the queue paused. */
  get queuePaused(): boolean {
    return this.state.partitions.some((p) => p.queuePaused)
  }

  async close(): Promise<void> {
    this.closed = true
    await runPromise(Scope.close(this.scope, Exit.void))
    for (const w of this.waiters.splice(0)) w.resolve()
  }

  /** Partition `p` from its latest snapshot; returns the offset to follow its events from. */
  private async restore(p: number): Promise<number> {
    const { log, topic, retention, report } = this.options
    const start = await restoreStart(log, topic, p, retention, report)
    this.state.partitions[p] = start.state
    return start.from
  }

  /** `ends` lists the events partitions, then (when it is longer) the commands partitions. */
  private reached(ends: ReadonlyArray<number>): boolean {
    const n = this.options.partitions
    return ends.every((end, i) => (i < n ? (this.next[i] ?? 0) : (this.nextCommand[i - n] ?? 0)) >= end)
  }

  private wakeWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!
      if (this.reached(w.until)) {
        this.waiters.splice(i, 1)
        w.resolve()
      }
    }
  }

  /** AddJob commands of jobs no engine accepted yet become pending views. */
  private applyCommands(partition: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    for (const record of records) {
      this.nextCommand[partition] = record.offset + 1
      const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as CommandEnvelope } : decodeCommand(record.value)
      // Commands that do not decode are the engine's to dead-letter; they never become jobs.
      if (!decoded.ok) continue
      const command = decoded.value
      const body = command.body
      if (body._tag !== "AddJob" || command.jobId === null || command.queue !== this.options.queue) continue
      if (this.state.get(command.jobId) !== undefined) continue
      // jobId is not null (checked above); no copy of the command just to say so to the type
      this.pending.add(command as CommandEnvelope & { readonly jobId: string }, body, this.options.pendingMaxAttempts, partition)
    }
    this.wakeWaiters()
    return Promise.resolve()
  }

  private async apply(partition: number, records: ReadonlyArray<LogRecord>): Promise<void> {
    const { sink, announce, report } = this.options
    const state = this.state.partition(partition)
    for (const record of records) {
      // Our own appends arrive with their envelope (same process): decoding is for outside bytes.
      const decoded = record.parsed !== undefined ? { ok: true as const, value: record.parsed as EventEnvelope } : decodeEvent(record.value)
      if (!decoded.ok) {
        report(new Error(`${record.topic}/${partition}@${record.offset}: undecodable event skipped: ${decoded.reason}`))
      } else {
        const envelope = decoded.value
        const applied = state.apply(envelope, record.decided)
        if (envelope.jobId !== null && envelope.body._tag === "JobAdded") this.pending.accepted(envelope.jobId)
        const moved = applied.ok ? applied.transitions : []
        if (sink !== undefined) {
          for (const t of moved) {
            try {
              await sink(t.before, t.after)
            } catch (e) {
              report(e)
            }
          }
        }
        const live = record.offset >= (this.liveFrom[partition] ?? 0)
        if (live && envelope.jobId !== null && moved.length > 0) announce({ envelope, before: moved[0]!.before, after: moved[0]!.after })
        else if (envelope.jobId === null && isQueueBody(envelope.body) && applied.ok) this.queueEventApplied(envelope, live)
      }
      this.next[partition] = record.offset + 1
    }
    this.wakeWaiters()
  }

  /**
   * Announces, in seq order, each queue event the queue as a whole has now reached (see the
   * header) — if a live record made it reach them: one the log held at open is history.
   */
  private queueEventApplied(envelope: EventEnvelope, live: boolean): void {
    if (envelope.seq <= this.announcedQueueSeq) return
    if (!this.queueFacts.has(envelope.seq)) this.queueFacts.set(envelope.seq, envelope)
    // a partition at seq s has applied every queue event up to s: each is a fact here
    // (unless it came in that partition's snapshot, then it is history and not announced)
    let reached = Math.min(...this.state.partitions.map((p) => p.queueSeq))
    for (const [seq, fact] of this.queueFacts) if (fact.body._tag === "QueueResumed" && seq > reached) reached = seq
    while (this.announcedQueueSeq < reached) {
      const fact = this.queueFacts.get(++this.announcedQueueSeq)
      this.queueFacts.delete(this.announcedQueueSeq)
      if (fact !== undefined && live) this.options.announce({ envelope: fact, before: undefined, after: undefined })
    }
  }
}
