/**
 * Seeded, repeatable SIGKILLs: an engine child process on a SQLite file is killed at
 * pseudo-random moments (from JOBLEDGER_SEED) while it works through a batch of jobs,
 * and restarted each time. Afterwards every job has exactly one JobCompleted in the log,
 * the projection equals a fresh replay, and the replay verifies clean.
 *
 * Default: 6 kills over 1,200 jobs (~20 s). JOBLEDGER_LONG=1: 20 kills over 5,000 jobs.
 *
 * The second variant writes a snapshot with every transaction (JOBLEDGER_SNAPSHOT_EVERY=1):
 * each holds the whole backlog, so most of a transaction's time is the snapshot and kills
 * land while one is being written. Then the snapshot must equal the log: a reader restored
 * from it sees what a reader with every snapshot deleted sees, and what a replay sees.
 */
import Database from "better-sqlite3"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type Job, JobQueue, replayQueue } from "../src/index.ts"
import { topicsOf } from "../src/log/event-log.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { type Child, killHard, ROOT, spawnScript } from "./support/children.ts"

const ENGINE = join(ROOT, "test", "fixtures", "kill-engine.ts")
const LONG = process.env.JOBLEDGER_LONG === "1"
const SEED = Number(process.env.JOBLEDGER_SEED ?? 20_250_611)
const KILLS = LONG ? 20 : 6
const JOBS = LONG ? 5_000 : 1_200
const CONCURRENCY = 8

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const startEngine = (dbPath: string, queue: string, env: Record<string, string>): Child =>
  spawnScript("engine", ENGINE, [dbPath, queue, String(CONCURRENCY)], env)

/** Every event of the queue, straight from the file (no decoding shortcuts of our own). */
const eventsOf = (dbPath: string, queue: string): Array<{ jobId: string | null; tag: string }> => {
  const db = new Database(dbPath, { readonly: true })
  try {
    const rows = db.prepare<[string], { value: string }>("SELECT value FROM records WHERE topic = ? ORDER BY partition, offset").all(topicsOf(queue).events)
    return rows.map((r) => {
      const e = JSON.parse(r.value) as { jobId: string | null; body: { _tag: string } }
      return { jobId: e.jobId, tag: e.body._tag }
    })
  } finally {
    db.close()
  }
}

const VARIANTS: ReadonlyArray<{ name: string; env: Record<string, string> }> = [
  { name: "default snapshot cadence", env: {} },
  { name: "a snapshot in every transaction", env: { JOBLEDGER_SNAPSHOT_EVERY: "1" } }
]

describe.each(VARIANTS)("seeded SIGKILLs on SQLite, $name", ({ env }) => {
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 })))
  })

  it(`${KILLS} kills over ${JOBS} jobs (seed ${SEED}): every job completes exactly once, replay verifies clean`, async () => {
    const began = Date.now()
    const random = prng(SEED)
    const dbPath = join(mkdtempSync(join(tmpdir(), "jobledger-kills-")), "jobs.db")
    const log = `sqlite:${dbPath}`
    const name = uniqueQueue("kills")
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})

    // Jobs arrive in KILLS + 1 batches: one up front, one during each engine's life, so
    // commands are consumed (and their offsets committed) across the kills too.
    const batches = KILLS + 1
    const added: Array<Job> = []
    let nextJob = 0
    const addBatch = async () => {
      const size = Math.ceil(JOBS / batches)
      const items = []
      for (; items.length < size && nextJob < JOBS; nextJob++) items.push({ name: "work", data: { i: nextJob, ms: Math.floor(random() * 15) } })
      if (items.length > 0) added.push(...(await producer.addBulk(items)))
    }
    await addBatch()

    const engines: Array<Child> = []
    const killedAfterMs: Array<number> = []
    const completedAtKill: Array<number> = []
    for (let k = 0; k < KILLS; k++) {
      const child = startEngine(dbPath, name, env)
      children.push(child)
      engines.push(child)
      await until(() => child.out.some((l) => l.startsWith("ready")), `engine ${k} to start (${child.out.join(" | ")})`, 30_000)
      await addBatch()
      // the seeded moment: anywhere from right after start (restore, stalled hand-back) to mid-run
      const wait = Math.floor(random() * 900)
      killedAfterMs.push(wait)
      await new Promise((r) => setTimeout(r, wait))
      child.proc.kill("SIGKILL")
      expect((await child.exited).signal, child.out.join(" | ")).toBe("SIGKILL")
      expect(child.out.filter((l) => l.startsWith("stderr:")), "the engine reported nothing on stderr").toEqual([])
      completedAtKill.push((await producer.stats()).completed)
    }
    while (nextJob < JOBS) await addBatch()
    expect(added).toHaveLength(JOBS)

    const last = startEngine(dbPath, name, env)
    children.push(last)
    engines.push(last)
    await until(async () => (await producer.stats()).completed === JOBS, `all ${JOBS} jobs completed (last engine: ${last.out.join(" | ")})`, 120_000)
    // The killed engines may have finished every job already: stop the last one only once it
    // is up, or SIGTERM would land before its handler exists.
    await until(() => last.out.some((l) => l.startsWith("ready")), `the last engine to start (${last.out.join(" | ")})`, 30_000)
    last.proc.kill("SIGTERM")
    expect((await last.exited).code).toBe(0)

    // the log: exactly one JobCompleted per added job, and no job nobody added
    const events = eventsOf(dbPath, name)
    const completed = new Map<string, number>()
    let started = 0
    let stalled = 0
    for (const e of events) {
      if (e.tag === "JobCompleted") completed.set(e.jobId!, (completed.get(e.jobId!) ?? 0) + 1)
      else if (e.tag === "JobStarted") started++
      else if (e.tag === "JobStalled") stalled++
    }
    expect(completed.size).toBe(JOBS)
    for (const job of added) expect(completed.get(job.id), job.id).toBe(1)
    expect(events.filter((e) => e.tag === "JobFailed" || e.tag === "JobRetrying")).toEqual([])

    // the projection equals a fresh replay of the log, which verifies clean
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.undecodable).toEqual([])
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 5))).toBe(true)
    expect(replayed.stats).toEqual({ waiting: 0, active: 0, completed: JOBS, failed: 0, delayed: 0, paused: 0 })
    expect(await producer.stats()).toEqual(replayed.stats)

    // The latest snapshot covers a prefix of the log, and restoring from it is the same as
    // restoring from nothing: a reader from the snapshot, a reader with every snapshot gone
    // and the replay agree on every job.
    const db = new Database(dbPath)
    const snapshots = db.prepare<[string], { offset: number }>("SELECT offset FROM snapshots WHERE topic = ?").all(topicsOf(name).events)
    if ("JOBLEDGER_SNAPSHOT_EVERY" in env) expect(snapshots).toHaveLength(1)
    for (const snap of snapshots) expect(snap.offset).toBeLessThanOrEqual(events.length)
    const views = async (url: string) => {
      const reader = new JobQueue(name, { log: url, keep: { completed: Infinity, failed: Infinity } })
      try {
        const stats = await reader.stats()
        return { stats, jobs: (await reader.store.list()).map((j) => [j.id, j.state, j.attemptsMade]).sort() }
      } finally {
        await reader.close()
      }
    }
    const fromSnapshot = await views(`sqlite:${dbPath}?sync=normal`)
    db.prepare("DELETE FROM snapshots").run()
    db.close()
    const fromNothing = await views(`sqlite:${dbPath}?sync=normal`)
    expect(fromSnapshot.stats).toEqual(fromNothing.stats)
    expect(fromNothing.stats).toEqual(replayed.stats)
    // the snapshot holds what the engine's retention kept (its last 1,000 completed jobs):
    // each of them as the log says, and the rest are completed jobs that left memory
    const all = new Map(fromNothing.jobs.map((j) => [j[0], j]))
    for (const j of fromSnapshot.jobs) expect(all.get(j[0])).toEqual(j)
    for (const [id, j] of all) if (!fromSnapshot.jobs.some((k) => k[0] === id)) expect(j[1]).toBe("completed")

    const reruns = started - JOBS
    // every re-run in the log is a job handed back by the next engine after a kill (stalled)
    expect(reruns).toBe(stalled)
    // handler runs as the engines saw them: at least once per job; a run whose JobStarted
    // was not yet durable at the kill is a re-run the log does not show
    const runs = engines.flatMap((c) => c.out.filter((l) => l.startsWith("r ")).map((l) => l.slice(2)))
    expect(new Set(runs).size).toBe(JOBS)
    expect(runs.length).toBeGreaterThanOrEqual(started)
    expect(completedAtKill.at(-1)!).toBeLessThanOrEqual(JOBS)
    console.log(
      `[sqlite-kills${"JOBLEDGER_SNAPSHOT_EVERY" in env ? ", snapshot every transaction" : ""}] seed ${SEED}: ${snapshots.length} snapshot(s) at offset ${snapshots.map((x) => x.offset).join(",")}; ${KILLS} SIGKILLs over ${JOBS} jobs, ${events.length} events; ` +
        `${started} JobStarted = ${JOBS} jobs + ${reruns} re-runs (${stalled} JobStalled); ` +
        `${runs.length} handler runs seen by the engines (${runs.length - JOBS} re-runs); ` +
        `completed at each kill: ${completedAtKill.join(",")}; kill delays (ms after ready): ${killedAfterMs.join(",")}; ` +
        `${((Date.now() - began) / 1000).toFixed(1)} s`
    )
  }, LONG ? 600_000 : 120_000)
})
