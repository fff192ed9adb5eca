/**
 * The Postgres store's tables and statements.
 *
 * Layout: one set of three tables per schema, shared by every queue (a `queue` column), so
 * that one migration and one set of indexes serve any number of queues, queue names need no
 * quoting as identifiers, and a question across queues is one query.
 * - `jobs`: one row per job id (its latest life): the job view as columns. JSON values are
 *   `json`, not `jsonb`: it keeps the text as the log carries it (key order included) and
 *   takes every string JSON can carry (`jsonb` refuses `\u0000`, which a job's data may hold,
 *   and a row the store cannot write would stop its follower). Cast to `jsonb` to query.
 *   Times are ms since the epoch (`double precision`, exact for every value a Job carries).
 * - `job_counts`: per queue, partition and state, the number of jobs: `stats()` reads ≤ 6
 *   rows per partition instead of counting millions (see the README's measurement).
 * - `positions`: per queue and partition, the next offset of the events topic to apply and
 *   the queue's pause state there — written in the same transaction as the rows, so the
 *   table and its position never disagree.
 *
 * Indexes: the primary key (queue, id) serves `get`, the batch's row loads and the upsert's
 * conflict target; (queue, state, updated_at, id) serves `list(state)` pages (keyset order)
 * and a queue event's UPDATE of a state's rows. Nothing else: every index is one more
 * b-tree insert per row version, and a job's row changes about three times.
 */
import type { JobStateName } from "../../../machines/schema.ts"
import type { JobView } from "../../../projections/job-view.ts"
import { PARTITION_STATE_VERSION } from "../../../projections/partition-state.ts"
import type { Counts, Held, PartitionPosition, QueueMove } from "./fold.ts"
import type { PgQueryable } from "./pg.ts"
import { jsonText, type ReadRow, viewOfRow } from "./rows.ts"

/**
 * The version written with every position: the row format of this module and the reducers'
 * version. A table written under another version is rebuilt from the log (views are a
 * projection; the log is the source of truth).
 */
export const STORE_VERSION = `1.${PARTITION_STATE_VERSION}`

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** The schema name, checked (it is spliced into SQL as an identifier). */
export const checkSchemaName = (schema: string): string => {
  if (typeof schema !== "string" || !SCHEMA_NAME.test(schema))
    throw new TypeError(`schema must be 1 to 63 characters of A-Z a-z 0-9 _, not starting with a digit (got ${JSON.stringify(schema)})`)
  return schema
}

const q = (schema: string) => `"${schema}"`

/** Statements that create the tables; run under an advisory lock (see `migrate`). */
const ddl = (schema: string): ReadonlyArray<string> => {
  const s = q(schema)
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.jobs (
      queue text NOT NULL,
      id text NOT NULL,
      partition integer NOT NULL,
      pos bigint NOT NULL,
      life integer NOT NULL,
      seq integer NOT NULL,
      name text NOT NULL,
      state text NOT NULL CHECK (state IN ('waiting', 'delayed', 'active', 'completed', 'failed', 'paused')),
      data json,
      result json,
      error json,
      metadata json,
      timeout integer,
      keep json,
      progress json,
      schedule json,
      attempts_made integer NOT NULL,
      max_attempts double precision NOT NULL,
      stalled_count integer NOT NULL,
      queue_paused boolean NOT NULL,
      run_at double precision NOT NULL,
      priority double precision NOT NULL,
      created_at double precision NOT NULL,
      updated_at double precision NOT NULL,
      PRIMARY KEY (queue, id)
    )`,
    `CREATE INDEX IF NOT EXISTS jobs_by_state ON ${s}.jobs (queue, state, updated_at, id)`,
    `CREATE TABLE IF NOT EXISTS ${s}.job_counts (
      queue text NOT NULL,
      partition integer NOT NULL,
      state text NOT NULL,
      n bigint NOT NULL,
      PRIMARY KEY (queue, partition, state)
    )`,
    `CREATE TABLE IF NOT EXISTS ${s}.positions (
      queue text NOT NULL,
      partition integer NOT NULL,
      next_offset bigint NOT NULL,
      queue_paused boolean NOT NULL,
      queue_seq integer NOT NULL,
      version text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (queue, partition)
    )`
  ]
}

/**
 * A batch's transaction commits without waiting for its WAL flush (`synchronous_commit =
 * off`). Safe because the rows are a projection of the log and move with their position:
 * a server crash can only lose whole latest transactions — rows and position together,
 * never one without the other — and a follower that finds the position below what it
 * committed follows that partition again from there (`follower.ts`).
 */
export const BEGIN_BATCH = "BEGIN; SET LOCAL synchronous_commit TO OFF"

/** One transaction on a client of the pool; rolled back (and the client dropped) on any error. */
export const inTransaction = async <A>(
  pool: { connect(): Promise<PgQueryable & { release(e?: boolean | Error): void }> },
  f: (c: PgQueryable) => Promise<A>,
  begin = "BEGIN"
): Promise<A> => {
  const client = await pool.connect()
  try {
    await client.query(begin)
    const result = await f(client)
    await client.query("COMMIT")
    client.release()
    return result
  } catch (e) {
    // a failed ROLLBACK means the connection is gone: destroy the client either way
    await client.query("ROLLBACK").catch(() => undefined)
    client.release(e instanceof Error ? e : true)
    throw e
  }
}

/**
 * Creates the tables when they are missing. Processes starting together take turns on an
 * advisory lock (CREATE … IF NOT EXISTS races otherwise); when every table exists nothing is
 * created, so a role that may only read and write the tables can use the store.
 */
export const migrate = async (pool: Parameters<typeof inTransaction>[0], schema: string): Promise<void> => {
  const s = q(schema)
  const present = await pool.connect().then(async (c) => {
    try {
      const r = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM unnest(ARRAY[to_regclass($1), to_regclass($2), to_regclass($3)]) AS t(r) WHERE r IS NOT NULL`,
        [`${s}.jobs`, `${s}.job_counts`, `${s}.positions`]
      )
      c.release()
      return Number(r.rows[0]?.n ?? 0)
    } catch (e) {
      c.release(e instanceof Error ? e : true)
      throw e
    }
  })
  if (present === 3) return
  await inTransaction(pool, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`jobledger.store:${schema}`])
    for (const statement of ddl(schema)) await c.query(statement)
  })
}

// ---------------------------------------------------------------- positions

export interface StoredPosition extends PartitionPosition {
  readonly version: string
}

const positionOf = (r: { next_offset: string; queue_paused: boolean; queue_seq: number; version: string }): StoredPosition => ({
  next: Number(r.next_offset),
  paused: r.queue_paused,
  queueSeq: r.queue_seq,
  version: r.version
})

/** Every stored position of a queue, by partition. */
export const loadPositions = async (db: PgQueryable, schema: string, queue: string): Promise<Map<number, StoredPosition>> => {
  const r = await db.query<{ partition: number; next_offset: string; queue_paused: boolean; queue_seq: number; version: string }>(
    `SELECT partition, next_offset::text, queue_paused, queue_seq, version FROM ${q(schema)}.positions WHERE queue = $1`,
    [queue]
  )
  return new Map(r.rows.map((row) => [row.partition, positionOf(row)]))
}

/** Creates the positions of partitions that have none (offset 0, not paused). */
export const ensurePositions = async (db: PgQueryable, schema: string, queue: string, partitions: number): Promise<void> => {
  await db.query(
    `INSERT INTO ${q(schema)}.positions (queue, partition, next_offset, queue_paused, queue_seq, version)
     SELECT $1, p, 0, false, -1, $3 FROM generate_series(0, $2::int - 1) AS p
     ON CONFLICT (queue, partition) DO NOTHING`,
    [queue, partitions, STORE_VERSION]
  )
}

/** Drops everything of a queue (rows, counts, positions): it is rebuilt from the log. */
export const resetQueue = async (db: PgQueryable, schema: string, queue: string): Promise<void> => {
  const s = q(schema)
  for (const table of ["jobs", "job_counts", "positions"]) await db.query(`DELETE FROM ${s}.${table} WHERE queue = $1`, [queue])
}

/** A partition's position, locked until the transaction ends: its batches take turns, whoever runs them. */
export const lockPosition = async (db: PgQueryable, schema: string, queue: string, partition: number): Promise<StoredPosition | undefined> => {
  const r = await db.query<{ next_offset: string; queue_paused: boolean; queue_seq: number; version: string }>(
    `SELECT next_offset::text, queue_paused, queue_seq, version FROM ${q(schema)}.positions WHERE queue = $1 AND partition = $2 FOR UPDATE`,
    [queue, partition]
  )
  const row = r.rows[0]
  return row === undefined ? undefined : positionOf(row)
}

// ---------------------------------------------------------------- rows of a batch

/** What a transition needs of a stored row (never its data or metadata). */
export interface LoadedRow {
  readonly id: string
  readonly pos: string
  readonly life: number
  readonly seq: number
  readonly name: string
  readonly state: JobStateName
  readonly result: string | null
  readonly error: string | null
  readonly progress: string | null
  readonly attempts_made: number
  readonly max_attempts: number
  readonly stalled_count: number
  readonly queue_paused: boolean
  readonly run_at: number
  readonly priority: number
  readonly created_at: number
  readonly updated_at: number
}

/** The rows of these job ids (the batch's), JSON as text: it is written back untouched. */
export const loadRows = async (db: PgQueryable, schema: string, queue: string, ids: ReadonlyArray<string>): Promise<Array<LoadedRow>> => {
  if (ids.length === 0) return []
  const r = await db.query<LoadedRow>(
    `SELECT id, pos::text, life, seq, name, state, result::text AS result, error::text AS error, progress::text AS progress, attempts_made, max_attempts,
            stalled_count, queue_paused, run_at, priority, created_at, updated_at
       FROM ${q(schema)}.jobs WHERE queue = $1 AND id = ANY($2::text[])`,
    [queue, ids]
  )
  return r.rows
}

/**
 * A batch's rows as one JSON parameter for `json_to_recordset` (one string built natively,
 * parsed once by the server: a third of the client CPU of 20 array parameters). JSON
 * columns travel as strings holding their JSON text, so that JSON `null` (a value) and an
 * absent value (SQL NULL) stay apart, and the text is stored as it is.
 */
const rowsParam = (rows: ReadonlyArray<Held>): string => {
  const out = new Array<unknown>(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const { view: v, pos, life, born } = rows[i]!
    out[i] = {
      i: v.id,
      o: pos,
      l: life,
      s: v.seq,
      n: v.name,
      st: v.state,
      // immutable within a life: sent only when the row is (re)born, else kept by the SET below
      d: born ? jsonText(v.data) : null,
      m: born ? jsonText(v.metadata) : null,
      t: born ? (v.timeout ?? null) : null,
      k: born ? jsonText(v.keep) : null,
      sh: born ? jsonText(v.schedule) : null,
      p: jsonText(v.progress),
      r: jsonText(v.result),
      e: jsonText(v.error),
      am: v.attemptsMade,
      ma: v.maxAttempts,
      sc: v.stalledCount,
      qp: v.queuePaused,
      ra: v.runAt,
      pr: v.priority,
      ca: v.createdAt,
      ua: v.updatedAt
    }
  }
  return JSON.stringify(out)
}

const ROW_TYPES =
  "i text, o bigint, l int, s int, n text, st text, d text, m text, t int, k text, sh text, p text, r text, e text, am int, ma float8, sc int, qp bool, ra float8, pr float8, ca float8, ua float8"

/**
 * The upsert of a batch's rows. A row is only overwritten by a later event of its
 * partition (`pos` is that event's offset), so a stale writer — a second process folding
 * the same partition, a retried batch — can never move a row backwards. Fields fixed within
 * a life (data, metadata, timeout, keep) are written only with a new `life`.
 * Parameters: $1 queue, $2 partition, $p the rows (`rowsParam`).
 */
const upsertSql = (schema: string, p: number) => {
  const keepWithinLife = (col: string) => `${col} = CASE WHEN EXCLUDED.life = j.life THEN j.${col} ELSE EXCLUDED.${col} END`
  return `INSERT INTO ${q(schema)}.jobs AS j (queue, partition, id, pos, life, seq, name, state, data, result, error, metadata, timeout, keep,
      schedule, progress, attempts_made, max_attempts, stalled_count, queue_paused, run_at, priority, created_at, updated_at)
    SELECT $1, $2, u.i, u.o, u.l, u.s, u.n, u.st, u.d::json, u.r::json, u.e::json, u.m::json, u.t, u.k::json, u.sh::json, u.p::json,
      u.am, u.ma, u.sc, u.qp, u.ra, u.pr, u.ca, u.ua
    FROM json_to_recordset($${p}::json) AS u(${ROW_TYPES})
    ON CONFLICT (queue, id) DO UPDATE SET
      partition = EXCLUDED.partition, pos = EXCLUDED.pos, life = EXCLUDED.life, seq = EXCLUDED.seq, name = EXCLUDED.name,
      state = EXCLUDED.state, result = EXCLUDED.result, error = EXCLUDED.error,
      ${keepWithinLife("data")}, ${keepWithinLife("metadata")}, ${keepWithinLife("timeout")}, ${keepWithinLife("keep")}, ${keepWithinLife("schedule")},
      progress = EXCLUDED.progress,
      attempts_made = EXCLUDED.attempts_made, max_attempts = EXCLUDED.max_attempts, stalled_count = EXCLUDED.stalled_count,
      queue_paused = EXCLUDED.queue_paused, run_at = EXCLUDED.run_at, priority = EXCLUDED.priority, created_at = EXCLUDED.created_at,
      updated_at = EXCLUDED.updated_at
    WHERE j.pos < EXCLUDED.pos`
}

/**
 * A removed job leaves the table (its history stays in the log): the rows of a batch whose
 * last state is `removed` are deleted, the others upserted. Returns the rows to upsert.
 */
const deleteRemoved = async (db: PgQueryable, schema: string, queue: string, rows: ReadonlyArray<Held>): Promise<ReadonlyArray<Held>> => {
  const removed = rows.filter((r) => r.view.state === "removed")
  if (removed.length === 0) return rows
  await db.query(`DELETE FROM ${q(schema)}.jobs WHERE queue = $1 AND id = ANY($2::text[])`, [queue, removed.map((r) => r.view.id)])
  return rows.filter((r) => r.view.state !== "removed")
}

/** Writes rows changed before a queue event (see `FoldOp`). */
export const upsertRows = async (db: PgQueryable, schema: string, queue: string, partition: number, rows: ReadonlyArray<Held>): Promise<void> => {
  const kept = await deleteRemoved(db, schema, queue, rows)
  if (kept.length === 0) return
  await db.query(upsertSql(schema, 3), [queue, partition, rowsParam(kept)])
}

/** A queue event on every row of the partition in `move.from`; returns how many moved. */
export const applyQueueMove = async (
  db: PgQueryable,
  schema: string,
  queue: string,
  partition: number,
  move: QueueMove,
  op: { readonly offset: number; readonly time: number; readonly paused: boolean }
): Promise<number> => {
  const r = await db.query(
    `UPDATE ${q(schema)}.jobs SET state = $4, queue_paused = $5, updated_at = $6, pos = $7
      WHERE queue = $1 AND state = $3 AND partition = $2 AND pos < $7`,
    [queue, partition, move.from, move.to, op.paused, op.time, op.offset]
  )
  return r.rowCount ?? 0
}

/**
 * The end of a batch in one statement: its last rows, the count changes and the new
 * position (three writable CTEs run exactly once each, in one snapshot).
 */
export const finishBatch = async (
  db: PgQueryable,
  schema: string,
  queue: string,
  partition: number,
  rows: ReadonlyArray<Held>,
  delta: Counts,
  position: PartitionPosition
): Promise<void> => {
  const s = q(schema)
  const kept = await deleteRemoved(db, schema, queue, rows)
  const states = (Object.keys(delta) as Array<keyof Counts>).filter((k) => delta[k] !== 0)
  // $1 queue, $2 partition, $3 states, $4 deltas, $5 next, $6 paused, $7 queue seq, $8 version, $9 rows
  await db.query(
    `WITH rows AS (${upsertSql(schema, 9)} RETURNING 1),
          counts AS (
            INSERT INTO ${s}.job_counts AS c (queue, partition, state, n)
            SELECT $1, $2, t.state, t.n FROM unnest($3::text[], $4::bigint[]) AS t(state, n)
            ON CONFLICT (queue, partition, state) DO UPDATE SET n = c.n + EXCLUDED.n
            RETURNING 1)
     UPDATE ${s}.positions SET next_offset = $5, queue_paused = $6, queue_seq = $7, version = $8, updated_at = now()
      WHERE queue = $1 AND partition = $2`,
    [queue, partition, states, states.map((k) => delta[k]), position.next, position.paused, position.queueSeq, STORE_VERSION, rowsParam(kept)]
  )
}

/** Moves the position only (a batch whose events changed nothing). */
export const advancePosition = async (db: PgQueryable, schema: string, queue: string, partition: number, position: PartitionPosition): Promise<void> => {
  await db.query(
    `UPDATE ${q(schema)}.positions SET next_offset = $3, queue_paused = $4, queue_seq = $5, updated_at = now() WHERE queue = $1 AND partition = $2`,
    [queue, partition, position.next, position.paused, position.queueSeq]
  )
}

// ---------------------------------------------------------------- reads

/** Every column of a job row, plus its partition's pause flag (to sync a stale row flag on read). */
// JSON as text: \`pg\` would parse SQL NULL (absent) and JSON null alike to null
export const READ_COLUMNS = `j.id, j.queue, j.partition, j.seq, j.name, j.state, j.data::text AS data, j.result::text AS result,
  j.error::text AS error, j.metadata::text AS metadata, j.timeout, j.keep::text AS keep, j.progress::text AS progress, j.schedule::text AS schedule,
  j.attempts_made, j.max_attempts, j.stalled_count, j.queue_paused, j.run_at, j.priority, j.created_at, j.updated_at,
  p.queue_paused AS partition_paused`

export const fromJobs = (schema: string) => `${q(schema)}.jobs j LEFT JOIN ${q(schema)}.positions p ON p.queue = j.queue AND p.partition = j.partition`

export const countsSql = (schema: string) => `SELECT state, sum(n)::text AS n FROM ${q(schema)}.job_counts WHERE queue = $1 GROUP BY state`

/** Every job view of a queue, by id (for audits and tests: unbounded). */
export const readViews = async (db: PgQueryable, schema: string, queue: string): Promise<Array<JobView>> => {
  const r = await db.query<ReadRow>(`SELECT ${READ_COLUMNS} FROM ${fromJobs(schema)} WHERE j.queue = $1 ORDER BY j.id`, [queue])
  return r.rows.map(viewOfRow)
}
