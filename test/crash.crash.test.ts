/**
 * Crash recovery: an engine process on a SQLite file is killed with SIGKILL while jobs
 * run; a new engine on the same file finds the jobs left active, returns them to the
 * queue as stalled, and every job ends completed exactly once in the log.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type Job, JobQueue, replayQueue } from "../src/index.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import { type Child, killHard, ROOT, spawnScript } from "./support/children.ts"

const ENGINE = join(ROOT, "test", "fixtures", "crash-engine.ts")

const startEngine = (dbPath: string, queue: string, mode: "slow" | "fast"): Child => spawnScript("engine", ENGINE, [dbPath, queue, mode])

describe("crash recovery (SQLite, SIGKILL)", () => {
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 })))
  })

  it("jobs active in a killed engine are recovered as stalled and each completes exactly once", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "jobledger-crash-")), "jobs.db")
    const log = `sqlite:${dbPath}`
    const name = uniqueQueue("crash")

    // the parent is a producer and an observer: it never calls `process`
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    const stalledSeen: Array<Job> = []
    producer.on("stalled", (job: Job) => stalledSeen.push(job))
    producer.on("error", () => {})

    const first = startEngine(dbPath, name, "slow")
    children.push(first)
    // two quick jobs complete before the crash; the slow ones are mid-run when it comes
    const quick = await producer.addBulk([0, 1].map((i) => ({ name: "slow", data: { i, ms: 20 } })))
    const slow = await producer.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: "slow", data: { i: i + 2, ms: 60_000 } })))
    const all = [...quick, ...slow]

    await until(async () => {
      const s = await producer.stats()
      return s.completed === 2 && s.active === 3
    }, `2 completed and 3 active in the first engine (child output: ${first.out.join(" | ")})`, 20_000)
    const activeAtKill = (await producer.store.list("active")).map((j) => j.id)
    expect(activeAtKill).toHaveLength(3)

    first.proc.kill("SIGKILL")
    expect((await first.exited).signal).toBe("SIGKILL")
    // nothing has moved on: the dead engine's jobs still look active
    expect(await producer.stats()).toMatchObject({ completed: 2, active: 3, waiting: 3 })

    const second = startEngine(dbPath, name, "fast")
    children.push(second)
    await until(async () => (await producer.stats()).completed === all.length, `all ${all.length} jobs completed after recovery (second engine: ${second.out.join(" | ")})`, 30_000)
    expect(await producer.stats()).toEqual({ waiting: 0, active: 0, completed: all.length, failed: 0, delayed: 0, paused: 0 })

    // the stalled jobs went back to waiting before they completed
    expect(stalledSeen.map((j) => j.id).sort()).toEqual([...activeAtKill].sort())
    for (const job of stalledSeen) expect(job.state).toBe("waiting")

    // the log: one JobCompleted per job; a JobStalled exactly for the jobs active at the kill
    for (const job of all) {
      const { timeline } = await replayQueue(log, name, { jobId: job.id })
      const tags = timeline.map((e) => e.envelope.body._tag)
      expect(tags.filter((t) => t === "JobCompleted"), `${job.id}: ${tags.join(",")}`).toHaveLength(1)
      expect(tags.at(-1)).toBe("JobCompleted")
      if (activeAtKill.includes(job.id)) {
        const stalledAt = tags.indexOf("JobStalled")
        expect(stalledAt, `${job.id} should have a JobStalled: ${tags.join(",")}`).toBeGreaterThan(0)
        expect(tags.slice(stalledAt)).toEqual(["JobStalled", "JobStarted", "JobCompleted"])
        expect(tags.filter((t) => t === "JobStalled")).toHaveLength(1)
      } else {
        expect(tags).not.toContain("JobStalled")
      }
    }
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues)).toBe(true)
    expect(replayed.stats).toEqual(await producer.stats())

    // each job's last result came from the engine that completed it
    for (const id of activeAtKill) expect((await producer.store.get(id))?.result).toMatchObject({ mode: "fast" })
    for (const job of quick) expect((await producer.store.get(job.id))?.result).toMatchObject({ mode: "slow" })
    // handler runs: the recovered jobs ran once in each engine, the others once in total
    const runsOf = (child: Child, id: string) => child.out.filter((l) => l.startsWith(`run ${id} `)).length
    for (const id of activeAtKill) expect(runsOf(first, id) + runsOf(second, id)).toBe(2)
    for (const job of all.filter((j) => !activeAtKill.includes(j.id))) expect(runsOf(first, job.id) + runsOf(second, job.id)).toBe(1)
  }, 60_000)

  it("an in-process engine also recovers the jobs of a killed child", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "jobledger-crash-")), "jobs.db")
    const log = `sqlite:${dbPath}`
    const name = uniqueQueue("crash")
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    const child = startEngine(dbPath, name, "slow")
    children.push(child)
    const jobs = await producer.addBulk(Array.from({ length: 4 }, (_, i) => ({ name: "slow", data: { i, ms: 60_000 } })))
    await until(async () => (await producer.stats()).active === 3, `3 active in the child (${child.out.join(" | ")})`, 20_000)
    child.proc.kill("SIGKILL")
    await child.exited

    const recovered: Array<number> = []
    const engine = new JobQueue(name, { log })
    queues.push(engine)
    engine.process("slow", async (job) => {
      recovered.push(job.data.i)
      return "recovered"
    })
    await until(async () => (await producer.stats()).completed === jobs.length, "every job completed in-process", 30_000)
    expect(recovered.sort()).toEqual([0, 1, 2, 3])
    for (const job of jobs) {
      const { timeline } = await replayQueue(log, name, { jobId: job.id })
      expect(timeline.filter((e) => e.envelope.body._tag === "JobCompleted")).toHaveLength(1)
    }
    const stalled = (await Promise.all(jobs.map((j) => replayQueue(log, name, { jobId: j.id })))).filter((r) =>
      r.timeline.some((e) => e.envelope.body._tag === "JobStalled")
    )
    expect(stalled).toHaveLength(3)
  }, 60_000)
})
