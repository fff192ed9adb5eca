/**
 * LocalStore on a SQLite file (better-sqlite3, WAL).
 *
 * Invariants:
 * - Every write runs in a `BEGIN IMMEDIATE` transaction, so offsets computed inside it are
 *   gap-free even when a producer process and an engine process write the same file.
 * - Events are appended only while the writer holds the group lease, checked in the same
 *   transaction (a zombie engine cannot write after a new owner took over).
 * - A partition's snapshot is written in the transaction that appends the events it covers,
 *   with the offset after them: never ahead of the log, and gone with it if it rolls back.
 * - `records_by_key` indexes records by (topic, key): one job's events are found without a
 *   scan (a job's events are keyed by its id). It costs one more b-tree insert per record.
 * - Pruning (`jobledger prune`) deletes whole jobs' records, and only below the record just
 *   under the partition's snapshot offset: offsets are `max(offset) + 1`, and the partition's
 *   last record is never deleted, so an offset is never given twice. `pruned_history` keeps,
 *   per partition, what was deleted (jobs, events, completed and failed counts), committed
 *   in the same transaction as the deletion.
 * - `synchronous=NORMAL` in WAL mode: a commit survives a process crash (SIGKILL); a power
 *   loss may lose the last transactions. `sqlite:path?sync=full` makes every commit fsync.
 */
import Database from "better-sqlite3"
import { accessSync, constants, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import type { LogRecord, OutgoingRecord, PrunedHistory, TransactUnit } from "./event-log.ts"
import { type LocalStore, type PendingAppend, type PruneBatch, partitionForKey } from "./local-store.ts"

const SCHEMA = `
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  key TEXT, value TEXT NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (grp TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, data TEXT NOT NULL,
  UNIQUE (topic, partition)
);
CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key);
CREATE TABLE IF NOT EXISTS pruned_history (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, before INTEGER NOT NULL,
  jobs INTEGER NOT NULL, events INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
`

/** A records row as read: positional (raw mode), topic and partition are the caller's. */
type Row = [offset: number, key: string | null, value: string, ts: number]

/**
 * SQLite says "unable to open database file" both for a missing directory and for a file it
 * may not write (a read-only filesystem, a read-only -wal/-shm): say which, as a
 * SQLITE_READONLY error when the file or its directory cannot be written.
 */
const explainOpenFailure = (path: string, cause: unknown): unknown => {
  const code = (cause as { code?: unknown } | null)?.code
  if (typeof code !== "string" || !(code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_READONLY"))) return cause
  for (const target of [path, dirname(path)]) {
    try {
      accessSync(target, constants.W_OK)
    } catch (e) {
      const why = (e as { code?: string }).code
      if (why !== "EROFS" && why !== "EACCES" && why !== "EPERM") continue
      const error = new Error(
        `${target} is not writable (${why === "EROFS" ? "read-only filesystem" : "permission denied"}); the log needs to write ${path} and its -wal and -shm files next to it`
      )
      ;(error as { code?: string }).code = "SQLITE_READONLY"
      error.cause = cause
      return error
    }
  }
  return cause
}

export interface SqliteOptions {
  readonly path: string
  readonly synchronous: "NORMAL" | "FULL"
}

/** Offsets and values of one partition, in offset order: what a long scan reads. */
export interface SqliteRangeReader {
  /** Up to `max` records of the partition in [from, end), as (offset, value) rows. */
  readonly range: (topic: string, partition: number, from: number, end: number, max: number) => ReadonlyArray<readonly [number, string]>
  readonly close: () => void
}

/**
 * A read-only connection to an existing log file for long scans (the scanner worker): it
 * writes nothing, not even the schema, and reads only the two columns a replay needs (raw
 * rows of two columns: ~30% cheaper per record than `read`'s four and its record objects).
 */
export const openSqliteRangeReader = (path: string): SqliteRangeReader => {
  const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 10_000 })
  const range = db
    .prepare<[string, number, number, number, number], [number, string]>(
      "SELECT offset, value FROM records WHERE topic = ? AND partition = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?"
    )
    .raw()
  return { range: (topic, partition, from, end, max) => range.all(topic, partition, from, end, max), close: () => db.close() }
}

/**
 * A connection that only checkpoints the WAL (the checkpointer worker): PASSIVE, so it never
 * waits for a reader or a writer, and copies the frames that no reader still needs.
 */
export interface SqliteWalCheckpoint {
  readonly checkpoint: () => WalCheckpointResult
  readonly close: () => void
}

/** One PASSIVE checkpoint: frames in the WAL and frames now in the database file (`busy`: another checkpointer held the lock). */
export interface WalCheckpointResult {
  readonly busy: number
  readonly log: number
  readonly checkpointed: number
}

export const openSqliteWalCheckpoint = (options: SqliteOptions): SqliteWalCheckpoint => {
  const db = new Database(options.path, { fileMustExist: true, timeout: 10_000 })
  db.pragma(`synchronous = ${options.synchronous}`) // a checkpoint syncs as the writer's commits do
  db.pragma("wal_autocheckpoint = 0") // it writes nothing, but stays out of the writer's way regardless
  const checkpoint = db.prepare<[], WalCheckpointResult>("PRAGMA wal_checkpoint(PASSIVE)")
  return { checkpoint: () => checkpoint.get()!, close: () => db.close() }
}

/** The store on a SQLite file, and the WAL checkpoints its connection runs by itself. */
export interface SqliteStore extends LocalStore {
  /** SQLite's `wal_autocheckpoint`: checkpoint inside the COMMIT that took the WAL past `pages` (0: never; SQLite's default 1000). */
  readonly autoCheckpoint: (pages: number) => void
}

export const openSqliteStore = (options: SqliteOptions): SqliteStore => {
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true })
  let opened: Database.Database | undefined
  try {
    opened = new Database(options.path, { timeout: 10_000 })
    opened.pragma("journal_mode = WAL")
    opened.pragma(`synchronous = ${options.synchronous}`)
    opened.exec(SCHEMA)
  } catch (cause) {
    opened?.close() // a half-opened connection would keep the file (and its mount) busy
    throw explainOpenFailure(options.path, cause)
  }
  const db = opened

  const topicPartitions = db.prepare<[string], { partitions: number }>("SELECT partitions FROM topics WHERE name = ?")
  const selectTopics = db.prepare<[], string>("SELECT name FROM topics ORDER BY name").pluck()
  const insertTopic = db.prepare("INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)")
  const nextOffset = db.prepare<[string, number], { next: number }>(
    "SELECT coalesce(max(offset) + 1, 0) AS next FROM records WHERE topic = ? AND partition = ?"
  )
  const insertRecord = db.prepare("INSERT INTO records (topic, partition, offset, key, value, ts) VALUES (?, ?, ?, ?, ?, ?)")
  // Raw rows: better-sqlite3 builds no keyed object per row, and topic/partition are not re-read
  // (measured reading a 1M-event log in batches of 20,000: 4.1–5.3 → 2.5–2.7 µs per record).
  const readRange = db
    .prepare<[string, number, number, number], Row>(
      "SELECT offset, key, value, ts FROM records WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?"
    )
    .raw()
  const selectCommitted = db.prepare<[string, string, number], { offset: number }>(
    "SELECT offset FROM group_offsets WHERE grp = ? AND topic = ? AND partition = ?"
  )
  const upsertCommitted = db.prepare(
    "INSERT INTO group_offsets (grp, topic, partition, offset) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition) DO UPDATE SET offset = excluded.offset"
  )
  const selectLease = db.prepare<[string], { owner: string; pid: number; expires: number }>(
    "SELECT owner, pid, expires FROM leases WHERE grp = ?"
  )
  const upsertLease = db.prepare(
    "INSERT INTO leases (grp, owner, pid, expires) VALUES (?, ?, ?, ?) ON CONFLICT (grp) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, expires = excluded.expires"
  )
  const deleteLease = db.prepare("DELETE FROM leases WHERE grp = ? AND owner = ?")
  const selectSnapshot = db.prepare<[string, number], { offset: number; data: string }>(
    "SELECT offset, data FROM snapshots WHERE topic = ? AND partition = ?"
  )
  const upsertSnapshot = db.prepare(
    "INSERT INTO snapshots (topic, partition, offset, data) VALUES (?, ?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET offset = excluded.offset, data = excluded.data"
  )
  type KeyedRow = [partition: number, offset: number, key: string | null, value: string, ts: number]
  // INDEXED BY: without statistics SQLite prefers the primary key for the ORDER BY and scans
  // the whole topic (measured at 300,000 events: 120 ms per lookup, 0.06 ms with the index)
  const selectByKey = db
    .prepare<[string, string], KeyedRow>("SELECT partition, offset, key, value, ts FROM records INDEXED BY records_by_key WHERE topic = ? AND key = ? ORDER BY partition, offset")
    .raw()
  const selectWithoutKey = db
    .prepare<[string], KeyedRow>("SELECT partition, offset, key, value, ts FROM records INDEXED BY records_by_key WHERE topic = ? AND key IS NULL ORDER BY partition, offset")
    .raw()

  const selectKeysAfter = db
    .prepare<[string, string, number], string>("SELECT DISTINCT key FROM records INDEXED BY records_by_key WHERE topic = ? AND key > ? ORDER BY key LIMIT ?")
    .pluck()
  const deleteRecord = db.prepare("DELETE FROM records WHERE topic = ? AND partition = ? AND offset = ?")
  const selectPruned = db.prepare<[string, number], PrunedHistory>(
    "SELECT before, jobs, events, completed, failed FROM pruned_history WHERE topic = ? AND partition = ?"
  )
  const addPruned = db.prepare(
    `INSERT INTO pruned_history (topic, partition, before, jobs, events, completed, failed) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (topic, partition) DO UPDATE SET before = max(before, excluded.before), jobs = jobs + excluded.jobs,
       events = events + excluded.events, completed = completed + excluded.completed, failed = failed + excluded.failed`
  )

  const partitionCount = (topic: string): number => {
    const row = topicPartitions.get(topic)
    if (row === undefined) throw new Error(`topic ${topic} does not exist`)
    return row.partitions
  }

  /** Appends inside the caller's transaction; next offsets are read once per partition. */
  const appendRecords = (
    topic: string,
    records: ReadonlyArray<OutgoingRecord>,
    fixedPartition: number | undefined,
    now: number,
    next: Map<string, number>,
    out: Array<LogRecord>
  ) => {
    const partitions = partitionCount(topic)
    // `next` is touched only where the partition changes: an engine's events all go to one
    let partition = -1
    let slot = ""
    let offset = 0
    for (const r of records) {
      const p = fixedPartition ?? r.partition ?? partitionForKey(r.key, partitions)
      if (p !== partition) {
        if (partition !== -1) next.set(slot, offset)
        partition = p
        slot = `${topic}\u0000${p}`
        offset = next.get(slot) ?? nextOffset.get(topic, p)!.next
      }
      insertRecord.run(topic, p, offset, r.key, r.value, now)
      out.push({ topic, partition: p, offset, key: r.key, value: r.value, timestamp: now, parsed: r.parsed, decided: r.decided })
      offset++
    }
    if (partition !== -1) next.set(slot, offset)
  }

  const appendAllTx = db.transaction((appends: ReadonlyArray<PendingAppend>, now: number) => {
    const next = new Map<string, number>()
    const out: Array<LogRecord> = []
    for (const a of appends) appendRecords(a.topic, a.records, undefined, now, next, out)
    return out
  })

  const transactTx = db.transaction((unit: TransactUnit, owner: string, now: number): ReadonlyArray<LogRecord> | "fenced" => {
    const lease = selectLease.get(unit.group)
    if (lease === undefined || lease.owner !== owner) return "fenced"
    const next = new Map<string, number>()
    const out: Array<LogRecord> = []
    appendRecords(unit.eventsTopic, unit.events, unit.partition, now, next, out)
    if (unit.deadLetters !== undefined && unit.deadLetterTopic !== undefined)
      appendRecords(unit.deadLetterTopic, unit.deadLetters, undefined, now, next, out)
    if (unit.commands !== undefined && unit.commandsTopic !== undefined)
      appendRecords(unit.commandsTopic, unit.commands, undefined, now, next, out)
    if (unit.commit !== undefined) upsertCommitted.run(unit.group, unit.commit.topic, unit.partition, unit.commit.offset)
    if (unit.snapshot !== undefined) {
      const end = next.get(`${unit.eventsTopic}\u0000${unit.partition}`) ?? nextOffset.get(unit.eventsTopic, unit.partition)!.next
      upsertSnapshot.run(unit.eventsTopic, unit.partition, end, unit.snapshot)
    }
    return out
  })

  const acquireTx = db.transaction(
    (group: string, owner: string, pid: number, ttlMs: number, now: number, isAlive: (pid: number) => boolean) => {
      const lease = selectLease.get(group)
      const heldByOther = lease !== undefined && lease.owner !== owner && lease.expires > now && isAlive(lease.pid)
      if (heldByOther) return false
      upsertLease.run(group, owner, pid, now + ttlMs)
      return true
    }
  )

  const pruneTx = db.transaction((topic: string, batch: PruneBatch): number => {
    let deleted = 0
    for (const [partition, part] of batch.partitions) {
      for (const offset of part.offsets) deleted += deleteRecord.run(topic, partition, offset).changes
      addPruned.run(topic, partition, batch.before, part.jobs, part.offsets.length, part.completed, part.failed)
    }
    return deleted
  })

  return {
    ensureTopic: (topic, partitions) => {
      insertTopic.run(topic, partitions)
      return partitionCount(topic)
    },
    partitionCount: (topic) => topicPartitions.get(topic)?.partitions,
    listTopics: () => selectTopics.all(),
    appendAll: (appends, now) => appendAllTx.immediate(appends, now),
    read: (topic, partition, from, max) =>
      readRange.all(topic, partition, from, max).map(([offset, key, value, ts]): LogRecord => ({ topic, partition, offset, key, value, timestamp: ts })),
    endOffset: (topic, partition) => nextOffset.get(topic, partition)!.next,
    committed: (group, topic, partition) => selectCommitted.get(group, topic, partition)?.offset ?? 0,
    transact: (unit, owner, now) => transactTx.immediate(unit, owner, now),
    acquireLease: (group, owner, pid, ttlMs, now, isAlive) => acquireTx.immediate(group, owner, pid, ttlMs, now, isAlive),
    releaseLease: (group, owner) => void deleteLease.run(group, owner),
    readByKey: (topic, key) =>
      (key === null ? selectWithoutKey.all(topic) : selectByKey.all(topic, key)).map(
        ([partition, offset, k, value, ts]): LogRecord => ({ topic, partition, offset, key: k, value, timestamp: ts })
      ),
    dataVersion: () => db.pragma("data_version", { simple: true }) as number,
    loadSnapshot: (topic, partition) => selectSnapshot.get(topic, partition),
    keysAfter: (topic, after, limit) => selectKeysAfter.all(topic, after, limit),
    prune: (topic, batch) => pruneTx.immediate(topic, batch),
    prunedHistory: (topic, partition) => selectPruned.get(topic, partition),
    autoCheckpoint: (pages) => void db.pragma(`wal_autocheckpoint = ${pages}`),
    close: () => db.close()
  }
}
