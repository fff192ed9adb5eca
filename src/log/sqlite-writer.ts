/**
 * A SQLite log's writes on a thread of their own (`sqlite-writer-worker.ts`), for processes
 * that run an engine.
 *
 * Why: in a drain, an engine's transactions — inserting its events and their index entries,
 * COMMIT, and the WAL checkpoints SQLite runs inside COMMIT — took ~40% of the main thread.
 * On a worker thread they run on the second core while the main thread decides the next
 * batch. Producer-only processes never start one (it costs a thread and ~40 ms).
 *
 * Invariants:
 * - The worker runs the same store code on its own connection (`openSqliteStore`), so a
 *   transaction there is the one the main thread would have run: the lease check, the
 *   offsets, the snapshot rule and every constraint are the store's.
 * - Requests are answered one at a time, in the order they were sent.
 * - What comes back is each record's partition and offset; the records themselves (with
 *   their `parsed` envelopes) are rebuilt here from what was sent, in the store's append
 *   order. Nothing but keys and values crosses the thread.
 * - A store error crosses as `{ code, message }`, so `toLogError` classifies it exactly as
 *   before (a full disk stays retryable).
 * - A worker that cannot start (before it said `ready`, it ran nothing) fails its requests
 *   with `WriterUnavailable`: the caller runs them on the main thread, and so does every
 *   later write (`available`). A worker that exits after `ready` fails what it had in flight
 *   with a retryable error: the caller retries. (A worker dying between its COMMIT and its
 *   answer would make that retry a duplicate; only a crash of the whole process does that,
 *   and then nothing is retried.)
 * - The worker keeps the process alive only while a request is in flight: an idle engine
 *   does not hold its process open, a pending write does.
 */
import type { Worker } from "node:worker_threads"
import type { LogRecord, OutgoingRecord, TransactUnit } from "./event-log.ts"
import type { PendingAppend } from "./local-store.ts"
import type { SqliteOptions } from "./sqlite-store.ts"
import { type CrossedError, startWorker, workerEntry, type WorkerEntry } from "./worker-entry.ts"

/**
 * Records as they cross to the worker: two arrays of strings (and partitions when chosen),
 * never one object per record. Cloning 1,000 small objects per transaction cost the main
 * thread ~8 µs per job. Joining the values into one string is no better: a string over
 * V8's regular object size (~128 KB, ~900 events of ~142 bytes) goes to large-object space, and
 * building it, cloning it and splitting it on the worker cost ~2 ms of CPU per 1,360-event
 * transaction, where the array of strings costs ~0.4 ms (scratch measurement, both threads).
 */
export interface PackedRecords {
  readonly keys: ReadonlyArray<string | null>
  readonly values: ReadonlyArray<string>
  /** Only when some record chose its partition. */
  readonly partitions?: ReadonlyArray<number | undefined>
}

export const packRecords = (records: ReadonlyArray<OutgoingRecord>): PackedRecords => {
  const keys = new Array<string | null>(records.length)
  const values = new Array<string>(records.length)
  let partitions: Array<number | undefined> | undefined
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    keys[i] = r.key
    values[i] = r.value
    if (r.partition !== undefined) (partitions ??= new Array<number | undefined>(records.length))[i] = r.partition
  }
  return { keys, values, ...(partitions === undefined ? {} : { partitions }) }
}

export const unpackRecords = (packed: PackedRecords): Array<OutgoingRecord> =>
  packed.keys.map((key, i) => {
    const partition = packed.partitions?.[i]
    return partition === undefined ? { key, value: packed.values[i]! } : { key, value: packed.values[i]!, partition }
  })

/** A transaction as it crosses: the unit's records packed, the rest as they are. */
export interface PackedUnit extends Omit<TransactUnit, "events" | "deadLetters" | "commands"> {
  readonly events: PackedRecords
  readonly deadLetters?: PackedRecords
  readonly commands?: PackedRecords
}

/** A request as the worker gets it: records without their envelopes. */
export type WriterRequest =
  | { readonly id: number; readonly op: "transact"; readonly unit: PackedUnit; readonly owner: string; readonly now: number }
  | { readonly id: number; readonly op: "appendAll"; readonly appends: ReadonlyArray<{ readonly topic: string; readonly records: PackedRecords }>; readonly now: number }
  | { readonly id: number; readonly op: "close" }

/** The worker's answer: `placed` holds partition, offset pairs in the store's append order. */
export type WriterReply =
  | { readonly ready: true }
  | { readonly id: number; readonly placed: ReadonlyArray<number> }
  | { readonly id: number; readonly fenced: true }
  | { readonly id: number; readonly error: CrossedError }

/** The worker never started: nothing sent to it ran, so the caller may run it on its own thread. */
export class WriterUnavailable extends Error {
  override readonly name = "WriterUnavailable"
}

interface InFlight {
  readonly resolve: (placed: ReadonlyArray<number> | "fenced") => void
  readonly reject: (error: Error) => void
}

/** Rebuilds the appended records from what was sent and where the store put each one. */
const placedRecords = (groups: ReadonlyArray<readonly [string, ReadonlyArray<OutgoingRecord>]>, placed: ReadonlyArray<number>, now: number): Array<LogRecord> => {
  const out: Array<LogRecord> = []
  let i = 0
  for (const [topic, records] of groups)
    for (const r of records) {
      out.push({ topic, partition: placed[i]!, offset: placed[i + 1]!, key: r.key, value: r.value, timestamp: now, parsed: r.parsed, decided: r.decided })
      i += 2
    }
  return out
}

/** Once per process: slower, not wrong, so a warning rather than an error. */
let warned = false
const warnUnavailable = (why: string): void => {
  if (warned) return
  warned = true
  process.emitWarning(`the SQLite writer thread is not available (${why}); the log writes on the main thread`, { code: "JOBLEDGER_SQLITE_WRITER" })
}

export class SqliteWriter {
  private worker: Worker | undefined
  private failed = false
  /** The worker opened its connection: from here on, a request sent may have run. */
  private ready = false
  private nextId = 0
  private readonly inFlight = new Map<number, InFlight>()

  /** `where`: the worker's entry (tests give one that cannot start). */
  constructor(
    private readonly options: SqliteOptions,
    private readonly where: () => WorkerEntry | undefined = () => workerEntry("sqlite-writer-worker")
  ) {}

  /** False once the worker could not start or died: write on the main thread then. */
  get available(): boolean {
    return !this.failed
  }

  /** Whether the worker runs (an engine wrote through it): producers' appends go there too then. */
  get started(): boolean {
    return this.worker !== undefined && !this.failed
  }

  /** The store's `transact`, on the worker; "fenced" when `owner` does not hold the lease. */
  async transact(unit: TransactUnit, owner: string, now: number): Promise<ReadonlyArray<LogRecord> | "fenced"> {
    const { events: _events, deadLetters: _deadLetters, commands: _commands, ...rest } = unit
    const sent: PackedUnit = {
      ...rest,
      events: packRecords(unit.events),
      ...(unit.deadLetters === undefined ? {} : { deadLetters: packRecords(unit.deadLetters) }),
      ...(unit.commands === undefined ? {} : { commands: packRecords(unit.commands) })
    }
    const placed = await this.request((id) => ({ id, op: "transact", unit: sent, owner, now }))
    if (placed === "fenced") return placed
    const groups: Array<readonly [string, ReadonlyArray<OutgoingRecord>]> = [[unit.eventsTopic, unit.events]]
    // the store's order: events, then dead letters, then commands (each only with its topic)
    if (unit.deadLetters !== undefined && unit.deadLetterTopic !== undefined) groups.push([unit.deadLetterTopic, unit.deadLetters])
    if (unit.commands !== undefined && unit.commandsTopic !== undefined) groups.push([unit.commandsTopic, unit.commands])
    return placedRecords(groups, placed, now)
  }

  /** The store's `appendAll`, on the worker. */
  async appendAll(appends: ReadonlyArray<PendingAppend>, now: number): Promise<ReadonlyArray<LogRecord>> {
    const sent = appends.map((a) => ({ topic: a.topic, records: packRecords(a.records) }))
    const placed = await this.request((id) => ({ id, op: "appendAll", appends: sent, now }))
    if (placed === "fenced") throw new Error("engine bug: an append cannot be fenced")
    return placedRecords(
      appends.map((a) => [a.topic, a.records] as const),
      placed,
      now
    )
  }

  /** Closes the worker's connection after everything sent before (no wait: the worker ends by itself). */
  close(): void {
    const worker = this.worker
    this.worker = undefined
    if (worker === undefined || this.failed) return
    worker.postMessage({ id: this.nextId++, op: "close" } satisfies WriterRequest)
    worker.unref()
  }

  private request(make: (id: number) => WriterRequest): Promise<ReadonlyArray<number> | "fenced"> {
    const worker = this.worker ?? this.start()
    if (worker === undefined) return Promise.reject(new WriterUnavailable("the SQLite writer thread is not available"))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (this.inFlight.size === 0) worker.ref()
      this.inFlight.set(id, { resolve, reject })
      worker.postMessage(make(id))
    })
  }

  private start(): Worker | undefined {
    if (this.failed) return undefined
    const where = this.where()
    if (where === undefined) {
      this.failed = true
      warnUnavailable("its entry, sqlite-writer-worker, was not found next to sqlite-writer")
      return undefined
    }
    let worker: Worker
    try {
      worker = startWorker(where, { options: this.options })
    } catch (e) {
      this.failed = true
      warnUnavailable(e instanceof Error ? e.message : String(e))
      return undefined
    }
    worker.on("message", (reply: WriterReply) => this.answer(reply))
    worker.on("error", (error) => this.fail(worker, error))
    worker.on("exit", () => this.fail(worker, new Error("the SQLite writer thread exited")))
    this.worker = worker
    return worker
  }

  private answer(reply: WriterReply): void {
    if ("ready" in reply) {
      this.ready = true
      return
    }
    const waiting = this.inFlight.get(reply.id)
    if (waiting === undefined) return
    this.inFlight.delete(reply.id)
    if (this.inFlight.size === 0) this.worker?.unref()
    if ("placed" in reply) waiting.resolve(reply.placed)
    else if ("fenced" in reply) waiting.resolve("fenced")
    else waiting.reject(Object.assign(new Error(reply.error.message), reply.error.code === undefined ? {} : { code: reply.error.code }))
  }

  /** The worker is gone: what it held fails (callers retry on the main thread). */
  private fail(worker: Worker, cause: unknown): void {
    if (this.worker !== worker && this.worker !== undefined) return
    const closing = this.worker === undefined
    this.worker = undefined
    if (closing && this.inFlight.size === 0) return // the exit after close()
    this.failed = true
    const detail = cause instanceof Error ? cause.message : String(cause)
    const error = this.ready
      ? // SQLITE_IOERR: toLogError makes it retryable; the retry runs on the main thread
        Object.assign(new Error(`the SQLite writer thread ended with writes in flight (${detail}); they are retried on the main thread`), { code: "SQLITE_IOERR" })
      : new WriterUnavailable(`the SQLite writer thread could not start (${detail})`)
    if (!this.ready) warnUnavailable(`it could not start: ${detail}`)
    for (const waiting of this.inFlight.values()) waiting.reject(error)
    this.inFlight.clear()
  }
}
