/**
 * The EventLog service: the only way the engine, producers and projections touch storage.
 *
 * Three implementations share it: `memory:` and `sqlite:<path>` (LocalLog over a store) and
 * `kafka://host:port` (KafkaLog). The interface is deliberately small — append, read a
 * partition from an offset, learn the end of a partition, own partitions as a group
 * member, and one atomic unit "append these events + commit that command offset".
 *
 * Invariants every implementation keeps:
 * - Offsets of a (topic, partition) start at 0 and increase by 1 with no gaps.
 * - `append` resolves only when the records are durable (SQLite commit / Kafka acks=all).
 * - `transact` is all-or-nothing and fails for an owner that lost the partition (fencing);
 *   its snapshot, if any, lands with its events or not at all.
 * - A reader sees records of one partition in offset order, each once per subscription.
 * - The effects `append` and `transact` return are single-use: run each once (the local log
 *   hands its records over to the run and keeps no reference after: see `hand-over.ts`).
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Transition } from "../../projections/partition-state.ts"

/** A record as stored on a topic partition. `value` is the JSON text of an envelope. */
export interface LogRecord {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: string
  readonly timestamp: number
  /**
   * The value before encoding, present only on records handed over inside the process that
   * appended them (our own envelopes): readers may use it instead of decoding `value`.
   */
  readonly parsed?: unknown
  /**
   * With `parsed`, on an event an engine of this process decided: the transition it made of
   * it, for a reader's PartitionState to take instead of stepping the machine again (see
   * `PartitionState.apply`). Never stored.
   */
  readonly decided?: Transition
}

/** Records of one partition in offset order, as a scan yields them: only offsets and values. */
export interface ScannedBatch {
  readonly offsets: ArrayLike<number>
  readonly values: ReadonlyArray<string>
}

/** A record to append. Without `partition`, the log chooses one from `key`. */
export interface OutgoingRecord {
  readonly key: string | null
  readonly value: string
  readonly partition?: number
  /** The value before encoding (see LogRecord.parsed); never stored. */
  readonly parsed?: unknown
  /** See LogRecord.decided; never stored. */
  readonly decided?: Transition
}

/** The atomic unit of the engine: events of one partition plus the command offset consumed. */
export interface TransactUnit {
  /** The engine group whose ownership of `partition` is checked (fencing). */
  readonly group: string
  readonly partition: number
  /** Appended to `events` on `partition`, in order. */
  readonly events: ReadonlyArray<OutgoingRecord>
  readonly eventsTopic: string
  /** Rejected commands, appended to the dead-letter topic (partition chosen by the log). */
  readonly deadLetters?: ReadonlyArray<OutgoingRecord>
  readonly deadLetterTopic?: string
  /** When set, the group's committed offset of the commands partition becomes `offset`. */
  readonly commit?: { readonly topic: string; readonly offset: number }
  /**
   * Commands appended to `commandsTopic` with the events (partition chosen by key, as a
   * producer's would be): how a schedule's tick adds its job exactly once.
   */
  readonly commands?: ReadonlyArray<OutgoingRecord>
  readonly commandsTopic?: string
  /**
   * The partition's state after these events (JSON), stored as its latest snapshot with the
   * offset it covers: the end of `eventsTopic`'s partition once `events` are appended. It is
   * written in the same unit, so a snapshot never runs ahead of the events it covers.
   */
  readonly snapshot?: string
}

/** A partition's latest snapshot: the state (JSON) as of every event before `offset`. */
export interface StoredSnapshot {
  readonly offset: number
  readonly data: string
}

/** What a group member is told for each partition it comes to own. */
export interface PartitionOwner {
  /** Called with every batch of command records, in order; returns when they are handled. */
  readonly onRecords: (records: ReadonlyArray<LogRecord>) => Promise<void>
  /** Called once when the partition is taken away (rebalance, close); finish or hand back work. */
  readonly onRevoked: () => Promise<void>
}

/** A member of a consumer group; ownership arrives through `assign`. */
export interface GroupSpec {
  readonly group: string
  readonly topic: string
  /**
   * Called when this member comes to own `partition`. It restores state, then returns the
   * owner; consumption starts at `fromOffset` (the committed offset) after it returns.
   */
  readonly assign: (partition: number, fromOffset: number) => Promise<PartitionOwner>
}

/** Storage failed. `retryable` says whether the same call may succeed later. */
export class LogError extends Data.TaggedError("LogError")<{
  readonly message: string
  readonly retryable: boolean
  readonly cause?: unknown
}> {}

/** The owner of a partition lost it to another member: its writes are refused. */
export class FencedError extends Data.TaggedError("FencedError")<{
  readonly message: string
}> {}

export interface EventLogService {
  /** `memory`, `sqlite` or `kafka`. */
  readonly backend: string
  /** The URL this log was opened with, for messages. */
  readonly url: string
  /** Creates the topics if missing; returns the partition count of `topic`. */
  readonly ensureTopic: (topic: string, partitions: number) => Effect.Effect<number, LogError>
  /**
   * The partition count of `topic`, `undefined` when it does not exist. Never creates
   * anything: readers (replay, audits) use it so a mistyped queue name leaves no topic behind.
   */
  readonly partitionCount: (topic: string) => Effect.Effect<number | undefined, LogError>
  /** The names of every topic on the log (never creates anything): how readers find the queues. */
  readonly listTopics: () => Effect.Effect<ReadonlyArray<string>, LogError>
  /** Appends durably; records keep their order within a partition. */
  readonly append: (topic: string, records: ReadonlyArray<OutgoingRecord>) => Effect.Effect<void, LogError>
  /** Up to `max` records of a partition starting at `from` (fewer at the end). */
  readonly read: (
    topic: string,
    partition: number,
    from: number,
    max: number
  ) => Effect.Effect<ReadonlyArray<LogRecord>, LogError>
  /**
   * The records of a partition in [from, end), in offset order, in batches: for long reads
   * (replays), read ahead of the caller, on another thread where the backend can (SQLite
   * files). Absent: read with `read` in a loop. Errors are LogErrors, thrown by the iteration.
   */
  readonly scan?: (topic: string, partition: number, from: number, end: number) => AsyncIterable<ScannedBatch> | Iterable<ScannedBatch>
  /** The offset the next record of the partition will get. */
  readonly endOffset: (topic: string, partition: number) => Effect.Effect<number, LogError>
  /**
   * Follows a partition from `from`, calling `onRecords` serially with each new batch, until
   * the scope closes. Records appended by this process arrive without polling.
   */
  readonly follow: (
    topic: string,
    partition: number,
    from: number,
    onRecords: (records: ReadonlyArray<LogRecord>) => Promise<void>
  ) => Effect.Effect<void, LogError, Scope.Scope>
  /** The group's committed offset of a partition (0 when none). */
  readonly committedOffset: (group: string, topic: string, partition: number) => Effect.Effect<number, LogError>
  /** Joins the group until the scope closes; owned partitions are handed to `spec.assign`. */
  readonly join: (spec: GroupSpec) => Effect.Effect<void, LogError, Scope.Scope>
  /** The atomic unit of the engine (see TransactUnit). Fails with FencedError for a zombie. */
  readonly transact: (unit: TransactUnit) => Effect.Effect<void, LogError | FencedError>
  /**
   * The first offset still in a partition: above 0 once a retention deleted its oldest
   * records (Kafka's `?retainMs=`). Logs that never delete a prefix have none (it is 0).
   */
  readonly startOffset?: (topic: string, partition: number) => Effect.Effect<number, LogError>
  /** The latest snapshot of a partition of `topic` (see TransactUnit.snapshot); `undefined` when none. */
  readonly loadSnapshot: (topic: string, partition: number) => Effect.Effect<StoredSnapshot | undefined, LogError>
  /**
   * Every record of `topic` with this key (`null`: the records without one — queue events),
   * by partition and offset: an indexed lookup, so that one job's history costs its own size,
   * not the log's. Only logs with an index by key have it (SQLite, memory); on Kafka finding
   * a job that left memory needs a replay.
   */
  readonly recordsByKey?: (topic: string, key: string | null) => Effect.Effect<ReadonlyArray<LogRecord>, LogError>
  /**
   * What `jobledger prune` deleted from a partition (`undefined`: nothing). Only logs that can
   * be pruned have it (SQLite). A replay from offset 0 adds its counts, so stats stay exact.
   */
  readonly prunedHistory?: (topic: string, partition: number) => Effect.Effect<PrunedHistory | undefined, LogError>
}

/** What pruning deleted from one partition: whole finished jobs, never a live one. */
export interface PrunedHistory {
  /** The latest prune's `--before` (ms since the epoch): only jobs that finished before it went. */
  readonly before: number
  readonly jobs: number
  readonly events: number
  /** Of the pruned jobs, those that had completed resp. failed (a removed job counts nowhere). */
  readonly completed: number
  readonly failed: number
}

/** The EventLog service tag; provided by `MemoryLog.layer`, `SqliteLog.layer`, `KafkaLog.layer`. */
export class EventLog extends Context.Tag("jobledger/EventLog")<EventLog, EventLogService>() {}

/** Topic names of one queue. */
export const topicsOf = (queue: string) => ({
  commands: `jobledger.${queue}.commands`,
  events: `jobledger.${queue}.events`,
  deadLetter: `jobledger.${queue}.dead-letter`,
  /** Kafka only: the partitions' latest state, compacted (local logs keep snapshots in their own table). */
  snapshots: `jobledger.${queue}.snapshots`
})
export type QueueTopics = ReturnType<typeof topicsOf>

/** The consumer group of a queue's engines. */
export const engineGroupOf = (queue: string) => `jobledger.${queue}.engine`
