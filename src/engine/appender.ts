/**
 * The single writer of one partition's events: group commit with in-order retry.
 *
 * Invariants:
 * - Events reach the log in the order they were pushed; a batch that failed is retried
 *   before anything pushed after it (a retryable failure — disk full, broker away — only
 *   delays writes, it never reorders or drops them).
 * - At most one transaction is in flight; everything pushed meanwhile forms the next one.
 * - The latest command offset pushed rides in the same transaction as the events decided
 *   from those commands, so a command is never both consumed and lost.
 * - `afterDurable` callbacks run only once their events are durable.
 * - A snapshot is taken when a transaction is cut, so it is the state as of exactly the
 *   events written up to and including that transaction, and it is written in it. A failed
 *   transaction's snapshot is dropped (the retry carries more events); the next one is taken anew.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { runPromise, runPromiseExit } from "../effect-runtime.ts"
import { failureOf } from "../run.ts"
import type { EventLogService, FencedError, LogError, OutgoingRecord } from "../log/event-log.ts"
import type { Transition } from "../../projections/partition-state.ts"
import { appendObserved, appendsObserved } from "./observations.ts"

interface Batch {
  events: Array<OutgoingRecord>
  deadLetters: Array<OutgoingRecord>
  /** Commands written with the events (a schedule's tick adding its job). */
  commands: Array<OutgoingRecord>
  commitOffset: number | undefined
  afterDurable: Array<() => void>
}

const emptyBatch = (): Batch => ({ events: [], deadLetters: [], commands: [], commitOffset: undefined, afterDurable: [] })

export interface AppenderConfig {
  /** The queue, for the append-latency observations (see observations.ts). */
  readonly queue: string
  readonly log: EventLogService
  readonly group: string
  readonly partition: number
  readonly topics: { readonly commands: string; readonly events: string; readonly deadLetter: string }
  /** Called once when the log refuses us as owner; the partition must stop. */
  readonly onFenced: (error: FencedError) => void
  /** Called on every failed attempt (for logging); retryable ones are retried. */
  readonly onError: (error: LogError) => void
  /** The partition's snapshots, taken when due (see the invariants). */
  readonly snapshots?: SnapshotSource
}

/** Where the Appender gets a partition's snapshot from. */
export interface SnapshotSource {
  /** The state as of everything pushed so far (JSON) when a snapshot is due, else `undefined`. */
  readonly take: () => string | undefined
  /** The snapshot last taken is durable. */
  readonly written: () => void
}

const RETRY_MIN_MS = 50
const RETRY_MAX_MS = 5_000

export class Appender {
  private next: Batch = emptyBatch()
  private inFlight: Promise<void> | undefined
  private scheduled = false
  private fenced = false
  private failures = 0
  private readonly idleWaiters: Array<() => void> = []

  constructor(private readonly config: AppenderConfig) {}

  /**
   * Queues one event (JSON of its envelope, the envelope itself, and the transition the
   * engine made of it, handed to this process's readers) for the next transaction.
   */
  push(key: string | null, value: string, parsed: unknown, decided: Transition | undefined, afterDurable?: () => void): void {
    this.next.events.push({ key, value, parsed, decided })
    if (afterDurable !== undefined) this.next.afterDurable.push(afterDurable)
    this.schedule()
  }

  /** Queues a command to append with the next transaction (atomically with its events). */
  pushCommand(key: string | null, value: string, parsed: unknown): void {
    this.next.commands.push({ key, value, parsed })
    this.schedule()
  }

  /** Queues a rejected command for the dead-letter topic. */
  deadLetter(key: string | null, value: string): void {
    this.next.deadLetters.push({ key, value })
    this.schedule()
  }

  /** Marks commands up to `offset` (exclusive) as consumed, with the next transaction. */
  commit(offset: number, afterDurable?: () => void): void {
    this.next.commitOffset = offset
    if (afterDurable !== undefined) this.next.afterDurable.push(afterDurable)
    this.schedule()
  }

  /**
   * Writes a snapshot in a transaction of its own, once everything pushed so far is durable
   * (a stopping owner's state). Resolves when it is durable, or dropped: a failure is
   * reported and not retried, as a snapshot is only a shortcut. Logs that write snapshots only
   * with events (Kafka) drop it.
   */
  async writeSnapshot(take: () => string | undefined): Promise<void> {
    await this.drain()
    if (this.fenced) return
    const snapshot = take()
    if (snapshot === undefined) return
    const { log, group, partition, topics } = this.config
    await runPromise(
      log.transact({ group, partition, eventsTopic: topics.events, events: [], snapshot }).pipe(
        Effect.match({
          onSuccess: () => this.config.snapshots?.written(),
          onFailure: (error) => {
            if (error._tag === "FencedError") this.fenced = true // another owner: its own state counts now
            else this.config.onError(error)
          }
        })
      )
    )
  }

  /** Resolves when everything pushed so far is durable (or the writer was fenced). */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  get isFenced(): boolean {
    return this.fenced
  }

  private isIdle(): boolean {
    const b = this.next
    return (
      this.fenced ||
      (this.inFlight === undefined &&
        b.events.length === 0 &&
        b.deadLetters.length === 0 &&
        b.commands.length === 0 &&
        b.commitOffset === undefined &&
        b.afterDurable.length === 0)
    )
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight !== undefined || this.fenced) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush(): void {
    if (this.inFlight !== undefined || this.fenced) return
    const batch = this.next
    if (batch.events.length + batch.deadLetters.length + batch.commands.length === 0 && batch.commitOffset === undefined) {
      this.next = emptyBatch()
      for (const f of batch.afterDurable) f()
      this.settleIdle()
      return
    }
    this.next = emptyBatch()
    const { log, group, partition, topics, snapshots } = this.config
    // a snapshot rides with events (it covers the end they leave the partition at)
    const snapshot = batch.events.length > 0 ? snapshots?.take() : undefined
    const unit = {
      group,
      partition,
      eventsTopic: topics.events,
      events: batch.events,
      deadLetterTopic: topics.deadLetter,
      deadLetters: batch.deadLetters,
      ...(batch.commands.length === 0 ? {} : { commandsTopic: topics.commands, commands: batch.commands }),
      ...(batch.commitOffset === undefined ? {} : { commit: { topic: topics.commands, offset: batch.commitOffset } }),
      ...(snapshot === undefined ? {} : { snapshot })
    }
    const startedAt = appendsObserved() ? performance.now() : undefined
    const observed = (ok: boolean) => {
      if (startedAt !== undefined) appendObserved(this.config.queue, (performance.now() - startedAt) / 1000, ok)
    }
    // the outcome is read off the Exit, not by a continuation in the fiber (see run.ts)
    this.inFlight = runPromiseExit(log.transact(unit)).then((exit) => {
      observed(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) {
        this.failures = 0
        if (snapshot !== undefined) snapshots?.written()
        for (const f of batch.afterDurable) f()
        return 0
      }
      const error = failureOf(exit)
      if (error._tag === "FencedError") {
        this.fenced = true
        this.config.onFenced(error)
        return 0
      }
      this.config.onError(error)
      this.requeue(batch)
      return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.failures++)
    }).then((retryIn) => {
      this.inFlight = undefined
      if (this.fenced) return this.settleIdle()
      if (retryIn > 0) setTimeout(() => this.flush(), retryIn)
      else if (!this.isIdle()) this.flush()
      else this.settleIdle()
    })
  }

  /** Puts a failed batch back in front of whatever was pushed since (order kept). */
  private requeue(failed: Batch): void {
    const later = this.next
    this.next = {
      events: failed.events.concat(later.events),
      deadLetters: failed.deadLetters.concat(later.deadLetters),
      commands: failed.commands.concat(later.commands),
      commitOffset: later.commitOffset ?? failed.commitOffset,
      afterDurable: failed.afterDurable.concat(later.afterDurable)
    }
  }

  private settleIdle(): void {
    if (!this.isIdle()) return
    const waiters = this.idleWaiters.splice(0)
    for (const w of waiters) w()
  }
}
