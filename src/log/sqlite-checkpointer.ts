/**
 * The WAL checkpoints of a SQLite writer's connection, on a thread of their own
 * (`sqlite-checkpointer-worker.ts`), started by the writer thread (`sqlite-writer-worker.ts`).
 *
 * Why: SQLite checkpoints inside the COMMIT that takes the WAL past `wal_autocheckpoint`
 * (1,000 pages): here ~4 ms every ~250 one-job transactions, and every write waits behind it.
 * At 1,000 adds/s that was much of an engine's add→start tail (measured in one process, 3
 * alternating pairs without and with this thread: p95 3.3–3.8 → 2.2–2.3 ms, p99 6.2–8.5 →
 * 5.0–6.3 ms; drain speed unchanged). A PASSIVE
 * checkpoint on another connection runs beside the writer's commits (WAL mode lets one
 * checkpointer and one writer go on together), so no write waits for one.
 *
 * Invariants:
 * - The writer's connection checkpoints by itself (SQLite's autocheckpoint) except while its
 *   checkpointer runs: autocheckpoint goes off only once the checkpointer said `ready`, and
 *   back on as soon as it fails, exits, or its checkpoints fail MAX_FAILURES times in a row.
 *   So the WAL is checkpointed as before whenever this thread is missing.
 * - A checkpoint follows every commit: the writer says `due` (one at a time), the checkpointer
 *   waits CHECKPOINT_DELAY_MS, checkpoints and answers; commits made meanwhile, or before the
 *   thread was ready, send the next `due` on the answer (on `ready`). So under a steady load
 *   the WAL is checkpointed every ~CHECKPOINT_DELAY_MS plus a checkpoint's time, and grows by
 *   what the writer commits in that time (frames a reader still needs stay, as with SQLite's
 *   own checkpoints).
 * - It never keeps its thread's process alive (unref'd), and a checkpoint cut short by the
 *   process ending is safe (SQLite checkpoints are crash-safe).
 */
import type { Worker } from "node:worker_threads"
import type { SqliteOptions, WalCheckpointResult } from "./sqlite-store.ts"
import { type CrossedError, startWorker, workerEntry, type WorkerEntry } from "./worker-entry.ts"

/** How long a checkpoint waits after the commit that made it due (more commits join it meanwhile). */
export const CHECKPOINT_DELAY_MS = 50
/** SQLite's own default, restored when the checkpointer is gone. */
export const AUTO_CHECKPOINT_PAGES = 1_000
/** Failed checkpoints in a row after which the writer's connection checkpoints by itself again. */
export const MAX_FAILURES = 3

export type CheckpointerRequest = { readonly op: "due" } | { readonly op: "close" }

export type CheckpointerReply =
  | { readonly ready: true }
  | { readonly checkpointed: WalCheckpointResult }
  | { readonly error: CrossedError }

export class WalCheckpointer {
  private worker: Worker | undefined
  private running = false
  /** A `due` was sent and its checkpoint has not answered. */
  private pending = false
  /** Commits since the last `due` was sent: another one follows the answer. */
  private dirty = false
  private failures = 0
  private done = 0

  /**
   * `autoCheckpoint`: sets the writer connection's `wal_autocheckpoint`.
   * `where`: the worker's entry (tests give one that fails).
   */
  constructor(
    private readonly options: SqliteOptions,
    private readonly autoCheckpoint: (pages: number) => void,
    private readonly where: () => WorkerEntry | undefined = () => workerEntry("sqlite-checkpointer-worker")
  ) {}

  /** Whether the checkpointer thread runs the checkpoints (the writer's connection runs none then). */
  get active(): boolean {
    return this.running
  }

  /** Checkpoints the thread has done (for tests and diagnostics). */
  get checkpoints(): number {
    return this.done
  }

  /** Starts the thread; until it is ready, and if it never is, the writer's connection checkpoints by itself. */
  start(): void {
    if (this.options.path === ":memory:") return // no WAL
    const where = this.where()
    if (where === undefined) return
    let worker: Worker
    try {
      worker = startWorker(where, { options: this.options })
    } catch {
      return
    }
    worker.on("message", (reply: CheckpointerReply) => this.answer(reply))
    worker.on("error", () => this.stop(worker))
    worker.on("exit", () => this.stop(worker))
    worker.unref() // after the listeners: adding a message listener refs the worker again
    this.worker = worker
  }

  /** The writer committed: a checkpoint follows (see the invariants). */
  committed(): void {
    this.dirty = true
    this.ask()
  }

  /** One `due` at a time, for the commits since the last one was sent. */
  private ask(): void {
    if (!this.running || this.pending || !this.dirty) return
    this.dirty = false
    this.pending = true
    this.worker!.postMessage({ op: "due" } satisfies CheckpointerRequest)
  }

  /**
   * Ends the thread after its current checkpoint, its connection closed (held until then, so
   * the thread that owns it waits for that); the writer's connection checkpoints by itself again.
   */
  close(): void {
    const worker = this.worker
    if (worker === undefined) return
    this.stop(worker)
    worker.ref()
    worker.postMessage({ op: "close" } satisfies CheckpointerRequest)
  }

  private answer(reply: CheckpointerReply): void {
    if ("ready" in reply) {
      this.running = true
      this.autoCheckpoint(0)
      return this.ask() // commits made before it was ready
    }
    this.pending = false
    if ("checkpointed" in reply) {
      this.failures = 0
      this.done++
    } else if (++this.failures >= MAX_FAILURES && this.worker !== undefined) return this.close()
    this.ask()
  }

  /** The thread is gone or going: checkpoints are the writer connection's own again. */
  private stop(worker: Worker): void {
    if (this.worker !== worker) return
    this.worker = undefined
    this.pending = false
    if (!this.running) return
    this.running = false
    this.autoCheckpoint(AUTO_CHECKPOINT_PAGES)
  }
}
