/**
 * A long read of one SQLite log partition on a thread of its own (`sqlite-scanner-worker.ts`),
 * batches ahead of the caller: what a replay of a long history reads through.
 *
 * Why: taking a record out of SQLite (better-sqlite3 builds the row and its strings) cost the
 * main thread ~1.5 µs, as much as decoding the record; a replay of 1,000,000 events spent ~30%
 * of its main thread there. On a worker the reads run on the second core while the main
 * thread decodes and applies the batch before.
 *
 * Invariants:
 * - The batches are the partition's records in [from, end), in offset order, each once —
 *   what `read` in a loop would give — whether they came from the worker or from this thread.
 * - At most `ahead` batches are read before the caller takes them: memory stays bounded by
 *   the batch size, whatever the history.
 * - Values cross as an array of strings, their offsets in a transferred Float64Array. (Not
 *   joined into one string, as the writer's records are: here the worker pays for the
 *   serialising, and the main thread's share, measured on 1,000,000 records, was 0.23 µs per
 *   value as an array against 0.77 µs joined and split.)
 * - A worker that cannot start, or fails, costs speed, never records: the scan goes on with
 *   reads on this thread from the first offset not yet delivered.
 * - Leaving the loop early (break, throw) ends the worker.
 */
import type { Worker } from "node:worker_threads"
import type { LogRecord, ScannedBatch } from "./event-log.ts"
import { type CrossedError, startWorker, workerEntry, type WorkerEntry } from "./worker-entry.ts"

/** The scan the worker runs (its `workerData`). */
export interface ScanRequest {
  /** The log's file: the worker opens it read-only. */
  readonly path: string
  readonly topic: string
  readonly partition: number
  readonly from: number
  readonly end: number
  readonly batch: number
  readonly ahead: number
}

/** A batch as it crosses. */
export interface PackedScan {
  readonly offsets: Float64Array
  readonly values: ReadonlyArray<string>
}

export type ScanReply = PackedScan | { readonly done: true } | { readonly error: CrossedError }

/** The range read on this thread instead (the store's `read`). */
export type ReadHere = (from: number, max: number) => ReadonlyArray<LogRecord>

/** Below this many records a scan reads on the caller's thread: a worker costs ~40 ms to start. */
export const SCAN_OFF_THREAD = 20_000
/** Records per batch, and batches read ahead: ~3 × 5,000 × ~200 B of values in flight. */
export const SCAN_BATCH = 5_000
const AHEAD = 3

/** (offset, value) rows as they cross: the offsets in a buffer the worker transfers. */
export const packScanned = (rows: ReadonlyArray<readonly [number, string]>): PackedScan => {
  const offsets = new Float64Array(rows.length)
  const values = new Array<string>(rows.length)
  for (let i = 0; i < rows.length; i++) {
    offsets[i] = rows[i]![0]
    values[i] = rows[i]![1]
  }
  return { offsets, values }
}

const recordsBatch = (records: ReadonlyArray<LogRecord>): ScannedBatch => ({ offsets: records.map((r) => r.offset), values: records.map((r) => r.value) })

/**
 * The records of `partition` in [from, end), in batches, read on a worker thread (reads on
 * this thread through `readHere` where the worker cannot run). `where`: the worker's entry
 * (tests give one that cannot start).
 */
export async function* scanOffThread(
  file: string,
  topic: string,
  partition: number,
  from: number,
  end: number,
  readHere: ReadHere,
  where: () => WorkerEntry | undefined = () => workerEntry("sqlite-scanner-worker")
): AsyncGenerator<ScannedBatch> {
  let next = from
  const worker = next < end ? tryStart(where(), { path: file, topic, partition, from, end, batch: SCAN_BATCH, ahead: AHEAD }) : undefined
  if (worker !== undefined) {
    const replies = inbox(worker)
    try {
      for (;;) {
        const reply = await replies.next()
        if (reply !== undefined && "done" in reply) return // it read [next, end) and found nothing more
        if (reply === undefined || "error" in reply) break
        worker.postMessage(1) // room for one more
        const batch: ScannedBatch = reply
        if (batch.values.length === 0) continue
        next = batch.offsets[batch.offsets.length - 1]! + 1
        yield batch
      }
    } finally {
      void worker.terminate()
    }
  }
  yield* scanHere(next, end, readHere) // what the worker did not deliver
}

/** The same scan with every read on this thread. */
export function* scanHere(from: number, end: number, readHere: ReadHere): Generator<ScannedBatch> {
  let next = from
  while (next < end) {
    const records = readHere(next, Math.min(SCAN_BATCH, end - next))
    if (records.length === 0) return
    next = records[records.length - 1]!.offset + 1
    yield recordsBatch(records)
  }
}

const tryStart = (where: WorkerEntry | undefined, request: ScanRequest): Worker | undefined => {
  if (where === undefined) return undefined
  try {
    return startWorker(where, request)
  } catch {
    return undefined
  }
}

/** The worker's replies in order; `undefined` once it exited or failed (after its last reply). */
const inbox = (worker: Worker) => {
  const queued: Array<ScanReply | undefined> = []
  let wake: (() => void) | undefined
  const push = (reply: ScanReply | undefined) => {
    queued.push(reply)
    wake?.()
  }
  worker.on("message", (reply: ScanReply) => push(reply))
  worker.on("error", () => push(undefined))
  worker.on("exit", () => push(undefined))
  return {
    next: async (): Promise<ScanReply | undefined> => {
      while (queued.length === 0) await new Promise<void>((resolve) => (wake = resolve))
      wake = undefined
      return queued.shift()
    }
  }
}
