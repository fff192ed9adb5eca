/**
 * The SQLite scanner (src/log/sqlite-scanner.ts): a long read of one partition on a worker
 * thread, what a replay reads through. It must yield exactly what `read` in a loop gives —
 * the records in [from, end), in offset order, each once — whether the worker delivers them,
 * cannot start, fails at once, or dies halfway; and a replay through it must equal a replay
 * through `read`.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { JobQueue } from "../src/index.ts"
import { type LogRecord, type ScannedBatch, topicsOf } from "../src/log/event-log.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import { SCAN_BATCH, SCAN_OFF_THREAD, type ReadHere, scanOffThread } from "../src/log/sqlite-scanner.ts"
import { openSqliteStore } from "../src/log/sqlite-store.ts"
import { replayFromLog } from "../src/read/replay.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { ROOT } from "./support/children.ts"

const TOPIC = "t"
const RECORDS = 12_345

const dirs: Array<string> = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const freshPath = () => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-scanner-"))
  dirs.push(dir)
  return join(dir, "log.db")
}

/** A log file whose partition 0 holds `RECORDS` records (partition 1 some more, which no scan of 0 may see). */
const filledStore = () => {
  const path = freshPath()
  const store = openSqliteStore({ path, synchronous: "NORMAL" })
  store.ensureTopic(TOPIC, 2)
  const now = Date.now()
  for (let i = 0; i < RECORDS; i += 1_000) {
    const n = Math.min(1_000, RECORDS - i)
    store.appendAll([{ topic: TOPIC, records: Array.from({ length: n }, (_, k) => ({ key: `k${i + k}`, value: `{"i":${i + k},"text":"\\u00e9 ${"x".repeat((i + k) % 50)}"}`, partition: 0 })) }], now)
  }
  store.appendAll([{ topic: TOPIC, records: Array.from({ length: 50 }, (_, k) => ({ key: `other${k}`, value: `{"other":${k}}`, partition: 1 })) }], now)
  return { path, store }
}

/** A `read` on this thread that counts where it was asked from. */
const countingRead = (store: ReturnType<typeof openSqliteStore>) => {
  const asked: Array<number> = []
  const read: ReadHere = (from, max) => {
    asked.push(from)
    return store.read(TOPIC, 0, from, max)
  }
  return { asked, read }
}

const refusingRead: ReadHere = () => {
  throw new Error("read on the main thread: the worker was to deliver every record")
}

/** The (offset, value) pairs of a scan, and its batch sizes. */
const drain = async (batches: AsyncIterable<ScannedBatch> | Iterable<ScannedBatch>) => {
  const rows: Array<[number, string]> = []
  const sizes: Array<number> = []
  for await (const { offsets, values } of batches) {
    expect(offsets.length).toBe(values.length)
    sizes.push(values.length)
    for (let i = 0; i < values.length; i++) rows.push([offsets[i]!, values[i]!])
  }
  return { rows, sizes }
}

const expected = (store: ReturnType<typeof openSqliteStore>, from: number, end: number): Array<[number, string]> =>
  store.read(TOPIC, 0, from, end - from).map((r: LogRecord) => [r.offset, r.value])

describe("a scan of a SQLite partition on a worker thread", () => {
  it("yields the records in [from, end) in offset order, each once, in batches of at most SCAN_BATCH, all from the worker", async () => {
    const { path, store } = filledStore()
    try {
      const { rows, sizes } = await drain(scanOffThread(path, TOPIC, 0, 101, 12_001, refusingRead))
      expect(rows).toEqual(expected(store, 101, 12_001))
      expect(rows).toHaveLength(11_900)
      expect(Math.max(...sizes)).toBeLessThanOrEqual(SCAN_BATCH)
      // a range past the partition's end: what there is
      expect((await drain(scanOffThread(path, TOPIC, 0, RECORDS - 3, RECORDS + 500, refusingRead))).rows).toEqual(expected(store, RECORDS - 3, RECORDS))
      // an empty range starts no worker and yields nothing
      expect((await drain(scanOffThread(path, TOPIC, 0, 7, 7, refusingRead))).rows).toEqual([])
    } finally {
      store.close()
    }
  })

  it("left early, ends there: the batches taken are the first ones, nothing is read on this thread", async () => {
    const { path, store } = filledStore()
    try {
      const taken: Array<number> = []
      for await (const { offsets } of scanOffThread(path, TOPIC, 0, 0, RECORDS, refusingRead)) {
        taken.push(offsets[0]!, offsets.length)
        break
      }
      expect(taken).toEqual([0, SCAN_BATCH])
      // and the file reads on: a second scan gets everything
      expect((await drain(scanOffThread(path, TOPIC, 0, 0, RECORDS, refusingRead))).rows).toEqual(expected(store, 0, RECORDS))
    } finally {
      store.close()
    }
  })

  it("reads on this thread, losing nothing, when the worker cannot start or fails at once", async () => {
    const { path, store } = filledStore()
    try {
      const notFound = countingRead(store)
      expect((await drain(scanOffThread(path, TOPIC, 0, 5, 9_005, notFound.read, () => undefined))).rows).toEqual(expected(store, 5, 9_005))
      expect(notFound.asked[0]).toBe(5)

      const cannotLoad = countingRead(store)
      const bogus = () => ({ entry: join(ROOT, "test", "support", "no-such-worker.mjs") })
      expect((await drain(scanOffThread(path, TOPIC, 0, 5, 9_005, cannotLoad.read, bogus))).rows).toEqual(expected(store, 5, 9_005))
      expect(cannotLoad.asked[0]).toBe(5)

      // the worker opens a file that is not there and reports the error: the range is read here from `from`
      const wrongFile = countingRead(store)
      expect((await drain(scanOffThread(join(freshPath(), "missing.db"), TOPIC, 0, 5, 9_005, wrongFile.read))).rows).toEqual(expected(store, 5, 9_005))
      expect(wrongFile.asked[0]).toBe(5)
    } finally {
      store.close()
    }
  })

  it("goes on from the first record not delivered when the worker dies after one batch", async () => {
    const { path, store } = filledStore()
    try {
      const rest = countingRead(store)
      const dies = () => ({ entry: join(ROOT, "test", "support", "scanner-worker-dies.mjs") })
      const { rows } = await drain(scanOffThread(path, TOPIC, 0, 10, RECORDS, rest.read, dies))
      expect(rows).toEqual(expected(store, 10, RECORDS))
      expect(rest.asked[0]).toBe(10 + SCAN_BATCH)
    } finally {
      store.close()
    }
  })

  it("is the log's scan: off-thread from SCAN_OFF_THREAD records, on this thread below, the same records either way", async () => {
    const { path, store } = filledStore()
    try {
      const log = makeLocalLog("sqlite", `sqlite:${path}`, store, undefined, path).service
      expect(log.scan).toBeDefined()
      const short = log.scan!(TOPIC, 0, 0, 100)
      expect(Symbol.iterator in short).toBe(true) // a short read is not worth a thread
      expect((await drain(short)).rows).toEqual(expected(store, 0, 100))
      expect(SCAN_OFF_THREAD).toBeGreaterThan(RECORDS) // this file's partition is short of it, so:
      expect((await drain(log.scan!(TOPIC, 0, 0, RECORDS))).rows).toEqual(expected(store, 0, RECORDS))
      // without the file's path (`:memory:`) there is no scan: replays read with `read`
      expect(makeLocalLog("sqlite", `sqlite:${path}`, store).service.scan).toBeUndefined()
    } finally {
      store.close()
    }
  })
})

describe("a replay through the scanner", () => {
  it("equals a replay through read: stats, events, a job's timeline, a bounded replay, verify", async () => {
    const path = freshPath()
    const name = uniqueQueue("scan-replay")
    const jobs = 7_500 // three events or more each: past SCAN_OFF_THREAD on one partition
    const q = new JobQueue(name, { log: `sqlite:${path}`, concurrency: 50 })
    q.on("error", () => {})
    q.process("work", async (job) => {
      if ((job.data as { i: number }).i % 9 === 0) throw new Error("every ninth fails")
      return { doubled: (job.data as { i: number }).i * 2 }
    })
    try {
      await q.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: "work", data: { i }, opts: { jobId: `job-${i}` } })))
      await until(async () => {
        const s = await q.stats()
        return s.completed + s.failed === jobs
      }, `${jobs} jobs ended`, 60_000)
    } finally {
      await q.close()
    }

    const store = openSqliteStore({ path, synchronous: "NORMAL" })
    try {
      const viaRead = makeLocalLog("sqlite", `sqlite:${path}`, store).service
      const viaWorker = { ...viaRead, scan: (topic: string, partition: number, from: number, end: number) => scanOffThread(path, topic, partition, from, end, refusingRead) }
      const end = store.endOffset(topicsOf(name).events, 0)
      expect(end).toBeGreaterThan(SCAN_OFF_THREAD)
      for (const options of [{ verify: true, jobId: "job-18" }, { untilOffset: Math.floor(end * 0.6), jobId: "job-4000" }]) {
        const [a, b] = [await replayFromLog(viaRead, name, options), await replayFromLog(viaWorker, name, options)]
        expect(b.stats).toEqual(a.stats)
        expect(b.events).toBe(a.events)
        expect(b.timeline).toEqual(a.timeline)
        expect(b.undecodable).toEqual(a.undecodable)
        expect(b.projection.list()).toEqual(a.projection.list())
        if (options.verify === true) {
          expect(b.verify?.ok, JSON.stringify(b.verify?.issues.slice(0, 3))).toBe(true)
          expect(b.stats).toMatchObject({ completed: jobs - Math.ceil(jobs / 9), failed: Math.ceil(jobs / 9) })
        } else expect(b.events).toBeLessThan(end)
      }
    } finally {
      store.close()
    }
  }, 120_000)
})
