/**
 * `jobledger prune` on a real SQLite file: whole ended jobs covered by the snapshot go (to
 * the archive first), live and held jobs, queue events and stats stay, offsets are never
 * reused, and replay --verify still passes and says where the history starts — also for a
 * reader restoring from offset 0 (no snapshot).
 */
import Database from "better-sqlite3"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { JobQueue, replayQueue } from "../src/index.ts"
import { topicsOf } from "../src/log/event-log.ts"
import { pruneQueue } from "../src/maintenance/prune.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { ROOT, runToEnd } from "./support/children.ts"
import { assertBuilt } from "./support/dist.ts"

const BIN = join(ROOT, "bin", "jobledger.mjs")
const cli = (args: ReadonlyArray<string>) => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.JOBLEDGER_LOG
  return runToEnd(process.execPath, [BIN, ...args], { cwd: ROOT, env, timeoutMs: 60_000 })
}

const freshLog = () => join(mkdtempSync(join(tmpdir(), "jobledger-prune-")), "jobs.db")
const queues: Array<JobQueue> = []
const open = (name: string, path: string, options: ConstructorParameters<typeof JobQueue>[1] = {}) => {
  const q = new JobQueue(name, { log: `sqlite:${path}`, ...options })
  q.on("error", () => {})
  queues.push(q)
  return q
}
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()))
  delete process.env.JOBLEDGER_SNAPSHOT_EVERY
})
beforeAll(() => assertBuilt())

const eventCount = (path: string, name: string): number => {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare("SELECT count(*) AS n FROM records WHERE topic = ?").get(topicsOf(name).events) as { n: number }).n
  } finally {
    db.close()
  }
}

/** A queue with 40 completed, 10 failed, 5 removed and 3 delayed jobs, a snapshot after every transaction. */
const history = async (path: string, name: string) => {
  process.env.JOBLEDGER_SNAPSHOT_EVERY = "1"
  const q = open(name, path, { concurrency: 4, keep: { completed: 5, failed: 2 } })
  q.process("ok", async () => "done")
  q.process("bad", async () => {
    throw new Error("no")
  })
  await q.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: "ok", data: { i }, opts: { jobId: `ok-${i}` } })))
  await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: "bad", data: { i }, opts: { jobId: `bad-${i}` } })))
  await q.addBulk(Array.from({ length: 3 }, (_, i) => ({ name: "ok", data: { i }, opts: { jobId: `later-${i}`, delay: 3_600_000 } })))
  await until(async () => {
    const s = await q.stats()
    return s.completed === 40 && s.failed === 10
  }, "40 completed and 10 failed", 30_000)
  await q.pause()
  await q.addBulk(Array.from({ length: 5 }, (_, i) => ({ name: "ok", data: { i }, opts: { jobId: `gone-${i}` } })))
  await until(async () => (await q.stats()).paused === 5, "5 paused", 30_000)
  for (let i = 0; i < 5; i++) await q.remove(`gone-${i}`)
  await q.resume()
  await until(async () => (await q.stats()).paused === 0, "the removals", 30_000)
  // the last record is the end of a job no snapshot holds (keep none): only its being the
  // partition's last record keeps it, so that the next offset is not given again
  await q.add("ok", { last: true }, { jobId: "last", keep: { completed: 0 } })
  await until(async () => (await q.stats()).completed === 41, "the last job", 30_000)
  const stats = await q.stats()
  await q.close()
  return stats
}

describe("prune on SQLite", () => {
  it("deletes whole ended jobs covered by the snapshot; stats, live jobs and verify stay; offsets are not reused", async () => {
    const path = freshLog()
    const name = uniqueQueue("prune")
    const stats = await history(path, name)
    expect(stats).toMatchObject({ completed: 41, failed: 10, delayed: 3, waiting: 0, paused: 0 })
    const before = eventCount(path, name)
    const archive = join(path, "..", "history.ndjson")

    // a reader following the queue across the prune
    const watcher = open(name, path)
    expect(await watcher.stats()).toEqual(stats)
    const dry = pruneQueue(path, name, { before: Date.now() + 1, dryRun: true })
    expect(eventCount(path, name)).toBe(before)
    const report = pruneQueue(path, name, { before: Date.now() + 1, archive })
    expect(report.jobs).toBe(dry.jobs)
    // held by the snapshot (keep: 5 completed, 2 failed per partition), or its last records: kept
    expect(report.completed).toBeGreaterThanOrEqual(40 - 5)
    expect(report.completed).toBeLessThanOrEqual(40)
    expect(report.failed).toBeGreaterThanOrEqual(10 - 2 - 1)
    expect(report.removed).toBeGreaterThanOrEqual(4)
    expect(eventCount(path, name)).toBe(before - report.events)
    const lines = readFileSync(archive, "utf8").trim().split("\n").map((l) => JSON.parse(l))
    expect(lines).toHaveLength(report.events)
    expect(lines.every((l) => l.queue === name && typeof l.offset === "number" && l.event.jobId !== undefined)).toBe(true)
    // a second prune finds nothing more
    expect(pruneQueue(path, name, { before: Date.now() + 1 }).jobs).toBe(0)

    // a fresh reader (snapshot) and a replay (offset 0 plus the pruned counts) agree with the stats
    const reader = open(name, path)
    expect(await reader.stats()).toEqual(stats)
    expect(await reader.store.get("later-0")).toMatchObject({ state: "delayed" })
    const replayed = await replayQueue(`sqlite:${path}`, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 3))).toBe(true)
    expect(replayed.stats).toEqual(stats)
    expect(replayed.pruned.reduce((n, h) => n + h.jobs, 0)).toBe(report.jobs)

    // without the snapshot a reader restores from offset 0 and still counts the pruned jobs
    await reader.close()
    const db = new Database(path)
    db.prepare("DELETE FROM snapshots").run()
    db.close()
    const fromZero = open(name, path)
    expect(await fromZero.stats()).toEqual(stats)

    // the queue goes on: new events get new offsets (the partition's last record was kept)
    const engine = open(name, path)
    engine.process("ok", async () => "done")
    await engine.add("ok", { after: true }, { jobId: "after-prune" })
    await until(async () => (await engine.store.get("after-prune"))?.state === "completed", "a job after the prune", 30_000)
    // were an offset given twice, the watcher (past it) would never see the new job's events
    await until(async () => (await watcher.stats()).completed === stats.completed + 1, "the watcher to see the job after the prune", 10_000)
    const again = await replayQueue(`sqlite:${path}`, name, { verify: true })
    expect(again.verify?.ok, JSON.stringify(again.verify?.issues.slice(0, 3))).toBe(true)
    expect(again.stats.completed).toBe(42)
    // let go by its keep, not pruned: still in the log
    expect(again.projection.get("last")?.state).toBe("completed")
  }, 120_000)

  it("keeps ended jobs no snapshot covers yet, and jobs that ended after --before", async () => {
    const path = freshLog()
    const name = uniqueQueue("prune-nosnap")
    const q = open(name, path)
    q.process("ok", async () => null)
    await q.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: "ok", data: { i } })))
    await until(async () => (await q.stats()).completed === 20, "20 completed", 30_000)
    await q.close()
    const db = new Database(path)
    db.prepare("DELETE FROM snapshots").run()
    db.close()
    const uncovered = pruneQueue(path, name, { before: Date.now() + 1 })
    expect(uncovered).toMatchObject({ jobs: 0, uncovered: 20 })
    expect(pruneQueue(path, name, { before: 0 })).toMatchObject({ jobs: 0, uncovered: 0 })
  }, 60_000)

  it("the CLI prunes (dry run, archive, JSON), refuses Kafka, and replay says where the history starts", async () => {
    const path = freshLog()
    const name = uniqueQueue("prune-cli")
    const stats = await history(path, name)
    const log = `sqlite:${path}`
    const usage = await cli(["prune", name, "--log", log])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/--before/)
    const kafka = await cli(["prune", name, "--before", "1d", "--log", "kafka://127.0.0.1:1"])
    expect(kafka.code).toBe(1)
    expect(kafka.stderr).toMatch(/retainMs/)
    const dry = await cli(["prune", name, "--before", "2999-01-01T00:00:00Z", "--dry-run", "--log", log])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/^would prune \d+ of \d+ jobs/)
    const pruned = await cli(["prune", name, "--before", "2999-01-01T00:00:00Z", "--archive", join(path, "..", "a.ndjson"), "--json", "--log", log])
    expect(pruned.code, pruned.stderr).toBe(0)
    const report = JSON.parse(pruned.stdout)
    expect(report.jobs).toBeGreaterThan(40)
    expect(report.dryRun).toBe(false)
    const replay = await cli(["replay", name, "--verify", "--log", log])
    expect(replay.code, replay.stderr).toBe(0)
    expect(replay.stdout).toMatch(/history of partition 0 pruned: \d+ jobs that ended before 2999-01-01T00:00:00.000Z/)
    expect(replay.stdout).toMatch(/verify: OK .*\(the history left after pruning\)/)
    expect(replay.stdout).toMatch(new RegExp(`completed\\s+${stats.completed}\\b`))
  }, 120_000)
})
