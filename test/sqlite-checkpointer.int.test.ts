/**
 * The WAL checkpointer (src/log/sqlite-checkpointer.ts), on a real SQLite file: while its
 * thread runs, the writer's connection checkpoints nothing and every commit is followed by a
 * checkpoint on the thread; whenever the thread is missing (it cannot start, it dies, its
 * checkpoints keep failing, it was closed) the writer's connection checkpoints by itself.
 */
import Database from "better-sqlite3"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { AUTO_CHECKPOINT_PAGES, MAX_FAILURES, WalCheckpointer } from "../src/log/sqlite-checkpointer.ts"
import { openSqliteStore, type SqliteStore } from "../src/log/sqlite-store.ts"
import { JobQueue } from "../src/index.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { ROOT } from "./support/children.ts"
import type { WorkerEntry } from "../src/log/worker-entry.ts"

const TOPIC = "t"
const dirs: Array<string> = []
const stores: Array<SqliteStore> = []
afterEach(() => {
  for (const s of stores.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A fresh log file, its store, and every wal_autocheckpoint the checkpointer set on it. */
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-checkpointer-"))
  dirs.push(dir)
  const options = { path: join(dir, "log.db"), synchronous: "NORMAL" as const }
  const store = openSqliteStore(options)
  stores.push(store)
  store.ensureTopic(TOPIC, 1)
  const settings: Array<number> = []
  const autoCheckpoint = (pages: number) => {
    settings.push(pages)
    store.autoCheckpoint(pages)
  }
  return { options, store, settings, autoCheckpoint }
}

const append = (store: SqliteStore, n: number) =>
  store.appendAll([{ topic: TOPIC, records: Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i, pad: "x".repeat(200) }) })) }], Date.now())

/** The database file's own size: it grows only when a checkpoint copies the WAL's pages into it (reading it changes nothing). */
const fileBytes = (path: string): number => statSync(path).size
const autoCheckpointOf = (path: string): number => {
  const db = new Database(path)
  try {
    return db.pragma("wal_autocheckpoint", { simple: true }) as number
  } finally {
    db.close()
  }
}

/** A worker that says ready and then fails (its workerData carries the entry's fields: `fail` tells it how). */
const failing = (fail: "exit" | "error") => () => ({ entry: join(ROOT, "test", "support", "checkpointer-fails.mjs"), fail }) as WorkerEntry
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("WalCheckpointer", () => {
  it("takes the writer's checkpoints while it runs, and checkpoints after every commit", async () => {
    const { options, store, settings, autoCheckpoint } = fresh()
    const checkpointer = new WalCheckpointer(options, autoCheckpoint)
    checkpointer.start()
    await until(() => checkpointer.active, "the checkpointer ready")
    expect(settings).toEqual([0])
    for (let round = 1; round <= 3; round++) {
      const before = { checkpoints: checkpointer.checkpoints, bytes: fileBytes(options.path) }
      // ~250 KB: far below the 1,000 pages at which the writer's connection would checkpoint by itself
      for (let i = 0; i < 20; i++) {
        append(store, 50)
        checkpointer.committed()
      }
      await until(() => checkpointer.checkpoints > before.checkpoints, `checkpoint ${round}`)
      expect(fileBytes(options.path)).toBeGreaterThan(before.bytes + 100_000)
    }
    checkpointer.close()
    expect(settings).toEqual([0, AUTO_CHECKPOINT_PAGES])
    expect(checkpointer.active).toBe(false)
  })

  it("leaves the writer's own checkpoints on when its thread cannot start", async () => {
    const { options, settings, autoCheckpoint } = fresh()
    const checkpointer = new WalCheckpointer(options, autoCheckpoint, () => ({ entry: join(ROOT, "test", "support", "no-such-worker.mjs") }))
    checkpointer.start()
    await sleep(300)
    checkpointer.committed() // nothing to tell: no thread
    expect(checkpointer.active).toBe(false)
    expect(settings).toEqual([])
    expect(autoCheckpointOf(options.path)).toBe(AUTO_CHECKPOINT_PAGES)
  })

  it("gives the checkpoints back to the writer when its thread dies", async () => {
    const { settings, autoCheckpoint, options } = fresh()
    const checkpointer = new WalCheckpointer(options, autoCheckpoint, failing("exit"))
    checkpointer.start()
    await until(() => settings.length === 2, "autocheckpoint restored")
    expect(settings).toEqual([0, AUTO_CHECKPOINT_PAGES])
    expect(checkpointer.active).toBe(false)
  })

  it(`gives the checkpoints back to the writer after ${MAX_FAILURES} failed checkpoints in a row`, async () => {
    const { store, settings, autoCheckpoint, options } = fresh()
    const checkpointer = new WalCheckpointer(options, autoCheckpoint, failing("error"))
    checkpointer.start()
    await until(() => checkpointer.active, "the checkpointer ready")
    for (let i = 1; i <= MAX_FAILURES; i++) {
      append(store, 10)
      checkpointer.committed()
      await sleep(100) // the failing worker answers at once
      expect(settings).toEqual(i < MAX_FAILURES ? [0] : [0, AUTO_CHECKPOINT_PAGES])
    }
    expect(autoCheckpointOf(options.path)).toBe(AUTO_CHECKPOINT_PAGES)
    expect(checkpointer.checkpoints).toBe(0)
  })
})

describe("an engine on a SQLite file", () => {
  it("has its WAL checkpointed beside its writes, before SQLite's own threshold", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobledger-checkpointer-"))
    dirs.push(dir)
    const path = join(dir, "jobs.db")
    const queue = new JobQueue(uniqueQueue("ckpt"), { log: `sqlite:${path}`, concurrency: 10 })
    let done = 0
    queue.process("noop", async () => {
      done++
    })
    await queue.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: "noop", data: { i } })))
    await until(() => done === 300, "300 jobs done")
    // the engine's ~1,200 records fill a few hundred pages, under the 1,000 at which SQLite would checkpoint inside a commit
    await until(() => fileBytes(path) > 200_000, "the database file to take the WAL's pages")
    await queue.close()
  })
})
