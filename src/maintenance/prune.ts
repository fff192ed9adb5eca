/**
 * `jobledger prune`: history retention for operators on a SQLite log. The default stays
 * "keep everything"; pruning is asked for explicitly, with a time.
 *
 * A job's events go only all together, and only when nothing can still need them:
 * - the job has ended (completed, failed or removed) and its last event is older than `before`;
 * - every one of its events is covered by its partition's snapshot, and the snapshot does not
 *   hold the job (so engines and readers, which restore from the snapshot, never miss it);
 * - none of its events is the last one the snapshot covers: offsets are allocated as
 *   `max + 1`, and every record at or past the snapshot's offset is kept, so the partition's
 *   last record always stays and no offset is ever given twice (the metrics also read the
 *   snapshot's age from that record);
 * - every event decodes (an undecodable record is evidence, not history to tidy away).
 * Queue and schedule events are never pruned. What goes is added, per partition, to the
 * pruned history in the same transaction, so a replay from offset 0 still counts it.
 *
 * With `archive`, the records are appended to an NDJSON file and flushed to disk before the
 * transaction that deletes them: a crash in between leaves them in both places, never in
 * neither. Safe while engines run: each page is one short write transaction.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs"
import { isJobEvent, type JobEventEnvelope } from "../../machines/schema.ts"
import { evolveJobView, hasEnded, type JobView } from "../../projections/job-view.ts"
import { decodeEvent } from "../codec.ts"
import { topicsOf, type LogRecord } from "../log/event-log.ts"
import type { LocalStore, PruneBatch } from "../log/local-store.ts"
import { openSqliteStore } from "../log/sqlite-store.ts"

export interface PruneOptions {
  /** Only jobs whose last event is older than this (ms since the epoch) go. */
  readonly before: number
  /** Append the pruned records to this NDJSON file (created if missing) before deleting them. */
  readonly archive?: string
  /** Count what would go, delete nothing. */
  readonly dryRun?: boolean
}

export interface PruneReport {
  readonly queue: string
  readonly before: number
  readonly dryRun: boolean
  /** Jobs looked at, and those pruned with their events. */
  readonly jobsSeen: number
  readonly jobs: number
  readonly events: number
  readonly completed: number
  readonly failed: number
  readonly removed: number
  /** Jobs kept only because no snapshot covered them yet (an engine writes one within 30 s of work). */
  readonly uncovered: number
  readonly archive?: string
}

/** Keys (job ids) looked at per page: one write transaction each. */
const PAGE = 500

interface PartitionBounds {
  /** The snapshot's offset (records below it are covered); 0 without a snapshot. */
  readonly covered: number
  /** The offset never to delete: the snapshot's last covered one. */
  readonly pinned: number
  /** Jobs the snapshot holds. */
  readonly held: ReadonlySet<string>
}

/** Prunes `queue` in the SQLite file at `path`. Throws if the queue does not exist there. */
export const pruneQueue = (path: string, queue: string, options: PruneOptions): PruneReport => {
  const store = openSqliteStore({ path, synchronous: "FULL" })
  try {
    return pruneStore(store, queue, options)
  } finally {
    store.close()
  }
}

export const pruneStore = (store: LocalStore, queue: string, options: PruneOptions): PruneReport => {
  const topic = topicsOf(queue).events
  const partitions = store.partitionCount(topic)
  if (partitions === undefined) throw new Error(`no such queue '${queue}': the log has no ${topic}`)
  if (store.keysAfter === undefined || store.prune === undefined) throw new Error("this log cannot be pruned (SQLite only)")
  const bounds = Array.from({ length: partitions }, (_, p) => boundsOf(store, topic, p))
  const archive = options.archive === undefined || options.dryRun === true ? undefined : openSync(options.archive, "a")
  const totals = { jobsSeen: 0, jobs: 0, events: 0, completed: 0, failed: 0, removed: 0, uncovered: 0 }
  try {
    for (let after = ""; ; ) {
      const keys = store.keysAfter(topic, after, PAGE)
      if (keys.length === 0) break
      after = keys[keys.length - 1]!
      const batch = new Map<number, { offsets: Array<number>; jobs: number; completed: number; failed: number }>()
      const archived: Array<string> = []
      for (const key of keys) {
        totals.jobsSeen++
        const records = store.readByKey(topic, key)
        const verdict = judge(key, records, bounds, options.before)
        if (verdict === "uncovered") totals.uncovered++
        if (verdict === undefined || verdict === "uncovered") continue
        const partition = records[0]!.partition
        const part = batch.get(partition) ?? { offsets: [], jobs: 0, completed: 0, failed: 0 }
        batch.set(partition, part)
        part.jobs++
        for (const r of records) part.offsets.push(r.offset)
        if (verdict === "completed") part.completed++
        if (verdict === "failed") part.failed++
        totals.jobs++
        totals.events += records.length
        totals[verdict]++
        if (archive !== undefined) for (const r of records) archived.push(archiveLine(queue, r))
      }
      if (batch.size > 0 && options.dryRun !== true) {
        if (archive !== undefined) {
          writeSync(archive, archived.join(""))
          fsyncSync(archive)
        }
        const pruneBatch: PruneBatch = { before: options.before, partitions: batch }
        store.prune(topic, pruneBatch)
      }
    }
  } finally {
    if (archive !== undefined) closeSync(archive)
  }
  return {
    queue,
    before: options.before,
    dryRun: options.dryRun === true,
    ...totals,
    ...(options.archive === undefined ? {} : { archive: options.archive })
  }
}

const boundsOf = (store: LocalStore, topic: string, partition: number): PartitionBounds => {
  const snapshot = store.loadSnapshot(topic, partition)
  const covered = snapshot?.offset ?? 0
  let held: ReadonlySet<string> = new Set()
  if (snapshot !== undefined) {
    const jobs = (JSON.parse(snapshot.data) as { jobs?: ReadonlyArray<{ id?: unknown }> }).jobs ?? []
    held = new Set(jobs.flatMap((j) => (typeof j.id === "string" ? [j.id] : [])))
  }
  return { covered, pinned: covered - 1, held }
}

/** How the job with these records ended, if it may be pruned; "uncovered" when only the snapshot stands in the way. */
const judge = (
  key: string,
  records: ReadonlyArray<LogRecord>,
  bounds: ReadonlyArray<PartitionBounds>,
  before: number
): "completed" | "failed" | "removed" | "uncovered" | undefined => {
  const partition = records[0]?.partition
  if (partition === undefined || records.some((r) => r.partition !== partition)) return undefined
  const bound = bounds[partition]
  if (bound === undefined || bound.held.has(key) || records.some((r) => r.offset === bound.pinned)) return undefined
  let view: JobView | undefined
  let last = 0
  for (const r of records) {
    const decoded = decodeEvent(r.value)
    if (!decoded.ok || !isJobEvent(decoded.value) || decoded.value.jobId !== key) return undefined
    view = evolveJobView(view, decoded.value as JobEventEnvelope)
    last = Math.max(last, decoded.value.time)
  }
  if (view === undefined || !hasEnded(view.state) || last >= before) return undefined
  if (records.some((r) => r.offset >= bound.covered)) return "uncovered"
  return view.state as "completed" | "failed" | "removed"
}

const archiveLine = (queue: string, r: LogRecord): string =>
  `${JSON.stringify({ queue, partition: r.partition, offset: r.offset, key: r.key, timestamp: r.timestamp, event: JSON.parse(r.value) })}\n`
