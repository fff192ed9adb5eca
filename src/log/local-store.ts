/**
 * The synchronous storage under a LocalLog: a SQLite file or process memory.
 *
 * A store is used by one LocalLog per process; several processes may open the same SQLite
 * file (the producer/engine split), so every write computes offsets inside its own write
 * transaction and the group lease is checked inside the transaction that appends events.
 */
import type { LogRecord, OutgoingRecord, PrunedHistory, TransactUnit } from "./event-log.ts"

/** One append of a group commit: records for one topic. */
export interface PendingAppend {
  readonly topic: string
  readonly records: ReadonlyArray<OutgoingRecord>
}

/** One transaction of a prune: per partition, the offsets to delete and what they were. */
export interface PruneBatch {
  /** The prune's `--before`. */
  readonly before: number
  readonly partitions: ReadonlyMap<number, { readonly offsets: ReadonlyArray<number>; readonly jobs: number; readonly completed: number; readonly failed: number }>
}

/** Who holds a group's partitions on a local log (one lease per group). */
export interface Lease {
  readonly group: string
  readonly owner: string
  readonly pid: number
  readonly expires: number
}

export interface LocalStore {
  /** Partition count of a topic, creating it with `partitions` when missing. */
  ensureTopic(topic: string, partitions: number): number
  /** Partition count of a topic, `undefined` when missing (never creates it). */
  partitionCount(topic: string): number | undefined
  /** The names of every topic. */
  listTopics(): ReadonlyArray<string>
  /** Appends all in one transaction; returns the stored records in append order. */
  appendAll(appends: ReadonlyArray<PendingAppend>, now: number): ReadonlyArray<LogRecord>
  read(topic: string, partition: number, from: number, max: number): ReadonlyArray<LogRecord>
  endOffset(topic: string, partition: number): number
  committed(group: string, topic: string, partition: number): number
  /**
   * Appends events and dead letters, commits the offset and stores the snapshot (covering the
   * events partition's new end) atomically, if `owner` holds the lease.
   */
  transact(unit: TransactUnit, owner: string, now: number): ReadonlyArray<LogRecord> | "fenced"
  /** Takes or renews the group lease unless a live other owner holds it. */
  acquireLease(group: string, owner: string, pid: number, ttlMs: number, now: number, isAlive: (pid: number) => boolean): boolean
  releaseLease(group: string, owner: string): void
  /** Every record of `topic` with `key` (`null`: without a key), by partition and offset (an index lookup). */
  readByKey(topic: string, key: string | null): ReadonlyArray<LogRecord>
  /** Changes whenever another connection commits (SQLite `PRAGMA data_version`). */
  dataVersion(): number
  /** The latest snapshot of a partition (written by `transact`). */
  loadSnapshot(topic: string, partition: number): { readonly offset: number; readonly data: string } | undefined
  /** SQLite only (pruning): up to `limit` distinct keys of `topic` after `after`, in key order. */
  keysAfter?(topic: string, after: string, limit: number): ReadonlyArray<string>
  /** SQLite only: deletes the batch's records and adds it to the pruned history, atomically; returns the records deleted. */
  prune?(topic: string, batch: PruneBatch): number
  /** What pruning deleted from a partition so far (`undefined`: never pruned). */
  prunedHistory?(topic: string, partition: number): PrunedHistory | undefined
  close(): void
}

/** Stable partition choice for keyed records on a local log. */
export const partitionForKey = (key: string | null, partitions: number): number => {
  if (partitions <= 1 || key === null) return 0
  let hash = 0
  for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0
  return Math.abs(hash) % partitions
}
