/**
 * Restart on a SQLite file: close a queue, open a new one on the same file, and find
 * everything rebuilt by replay (stats, job views); what the first left waiting or delayed
 * (and what a producer queued while no engine ran) the second one runs.
 */
import Database from "better-sqlite3"
import { afterEach, describe, expect, it } from "vitest"
import { type Job, JobQueue, replayQueue } from "../src/index.ts"
import { sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { deferred, queueOpener, sleep } from "./fixtures/helpers.ts"

const byId = (jobs: ReadonlyArray<Job>) => Object.fromEntries([...jobs].sort((a, b) => a.id.localeCompare(b.id)).map((j) => [j.id, j]))

describe("restart on a SQLite file", () => {
  const { open, closeAll } = queueOpener(sqliteBackend)
  afterEach(closeAll)

  it("a new queue on the same file rebuilds stats and job views, then runs the waiting and delayed jobs", async () => {
    const name = uniqueQueue("restart")
    const log = sqliteBackend.freshLog()

    // ---- first life: 2 completed, 1 failed, 3 left waiting, 1 left delayed
    const first = new JobQueue(name, { log, concurrency: 1 })
    const gate = deferred()
    const firstRuns: Array<string> = []
    let retained: Record<string, Job>
    let firstStats
    try {
      first.process("work", async (job) => {
        firstRuns.push(job.data.label)
        if (job.data.label === "boom") throw new Error("boom")
        if (job.data.label === "blocker") await gate.promise
        return { label: job.data.label }
      })
      await first.add("work", { label: "a" })
      await first.add("work", { label: "boom" })
      await until(async () => (await first.stats()).failed === 1, "the failure")
      await first.add("work", { label: "blocker" })
      await until(() => firstRuns.includes("blocker"), "the blocker to start")
      for (const label of ["w1", "w2", "w3"]) await first.add("work", { label }, { priority: label === "w3" ? 5 : 0 })
      const delayed = await first.add("work", { label: "later" }, { delay: 1_500 })
      await until(async () => (await first.stats()).waiting === 3 && (await first.store.get(delayed.id)) !== undefined, "3 waiting, 1 delayed")
      // close while the blocker runs: it finishes within the grace period, nothing new starts
      const closing = first.close({ graceMs: 5_000 })
      await sleep(50)
      gate.resolve()
      await closing
      expect(firstRuns).toEqual(["a", "boom", "blocker"])
      const view = await replayQueue(log, name)
      firstStats = view.stats
      retained = byId(view.projection.list().map((v) => ({ ...v }) as unknown as Job))
    } finally {
      gate.resolve()
      await first.close()
    }
    expect(firstStats).toEqual({ waiting: 3, active: 0, completed: 2, failed: 1, delayed: 1, paused: 0 })

    // ---- between lives: a producer queues one more job while no engine runs
    const producer = open({}, name, log)
    const queuedMeanwhile = await producer.add("work", { label: "meanwhile" })
    await producer.close()

    // ---- second life
    const second = open({ concurrency: 1 }, name, log)
    // the job queued while no engine ran is part of the backlog (pending until an engine accepts it)
    expect(await second.stats()).toMatchObject({ waiting: 4, completed: 2, failed: 1, delayed: 1, active: 0, paused: 0 })
    const views = await second.store.list()
    expect(views).toHaveLength(8)
    for (const v of views) {
      const before = retained[v.id]
      if (before === undefined) continue
      expect(v).toMatchObject({ state: before.state, attemptsMade: before.attemptsMade, priority: before.priority, data: before.data, createdAt: before.createdAt, runAt: before.runAt })
    }
    const labelled = (label: string) => views.find((v) => v.data.label === label)!
    expect(labelled("a")).toMatchObject({ state: "completed", result: { label: "a" } })
    expect(labelled("blocker")).toMatchObject({ state: "completed", result: { label: "blocker" } })
    expect(labelled("boom")).toMatchObject({ state: "failed", error: { message: "boom" } })
    const later = labelled("later")
    expect(later.state).toBe("delayed")

    const secondRuns: Array<[string, number]> = []
    second.process("work", async (job) => {
      secondRuns.push([job.data.label, Date.now()])
      return { label: job.data.label }
    })
    await until(async () => (await second.stats()).completed === 7, "every job to complete in the second life", 10_000)
    const order = secondRuns.map(([label]) => label)
    // priority then FIFO among what was waiting; the delayed job runs at its time
    expect(order.slice(0, 4)).toEqual(["w3", "w1", "w2", "meanwhile"])
    expect(order).toContain("later")
    expect(secondRuns.find(([label]) => label === "later")![1]).toBeGreaterThanOrEqual(later.runAt)
    expect(order).not.toContain("a")
    expect(order).not.toContain("boom")
    expect(order).not.toContain("blocker")
    expect(await second.stats()).toEqual({ waiting: 0, active: 0, completed: 7, failed: 1, delayed: 0, paused: 0 })
    expect((await second.store.get(queuedMeanwhile.id))?.state).toBe("completed")
  })

  it("a job waiting for a retry when the queue closed is retried by the next one, with its attempt count", async () => {
    const name = uniqueQueue("restart")
    const log = sqliteBackend.freshLog()
    const first = open({ retry: { attempts: 2, delay: 600 } }, name, log)
    first.process("flaky", async () => {
      throw new Error("first life failure")
    })
    const job = await first.add("flaky", {})
    await until(async () => (await first.store.get(job.id))?.state === "delayed", "the job to wait for retry 1")
    await first.close()

    const second = open({ retry: { attempts: 2, delay: 600 } }, name, log)
    expect(await second.store.get(job.id)).toMatchObject({ state: "delayed", attemptsMade: 1, error: { message: "first life failure" } })
    const seen: Array<number> = []
    second.process("flaky", async (j) => {
      seen.push(j.attemptsMade)
      return "second life"
    })
    await until(async () => (await second.store.get(job.id))?.state === "completed", "the retry in the second life")
    expect(seen).toEqual([1])
    expect(await second.store.get(job.id)).toMatchObject({ state: "completed", attemptsMade: 1, result: "second life" })
  })

  it("a paused queue is still paused after a restart, and resume runs its jobs", async () => {
    const name = uniqueQueue("restart")
    const log = sqliteBackend.freshLog()
    const first = open({}, name, log)
    first.process("t", async () => "ran")
    await first.pause()
    const job = await first.add("t", {})
    await until(async () => (await first.stats()).paused === 1, "the job held by the pause")
    await first.close()

    const second = open({}, name, log)
    let runs = 0
    second.process("t", async () => {
      runs++
      return "ran"
    })
    expect(await second.stats()).toMatchObject({ paused: 1, waiting: 0 })
    await sleep(150)
    expect(runs).toBe(0)
    second.resume()
    await until(async () => (await second.store.get(job.id))?.state === "completed", "the job after resume")
  })

  it("many jobs: the rebuilt stats match the first life and a replay of the file", async () => {
    const name = uniqueQueue("restart")
    const log = sqliteBackend.freshLog()
    const first = open({ concurrency: 10 }, name, log)
    first.process("n", async (job) => {
      if (job.data % 7 === 0) throw new Error(`multiple of 7: ${job.data}`)
      return job.data * 2
    })
    await first.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: "n", data: i + 1 })))
    await until(async () => {
      const s = await first.stats()
      return s.completed + s.failed === 300
    }, "300 settled jobs", 20_000)
    const before = await first.stats()
    const listBefore = byId(await first.store.list())
    await first.close()

    const second = open({}, name, log)
    expect(await second.stats()).toEqual(before)
    expect(before).toMatchObject({ completed: 258, failed: 42 })
    expect(byId(await second.store.list())).toEqual(listBefore)
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.stats).toEqual(before)
    expect(replayed.undecodable).toEqual([])
    expect(replayed.verify?.ok).toBe(true)
  })

  it("a clean close writes a snapshot covering the whole log; the next engine restores from it and goes on", async () => {
    const name = uniqueQueue("restart")
    const log = sqliteBackend.freshLog()
    const first = open({ concurrency: 10 }, name, log)
    first.process("n", async (job) => job.data)
    // ~900 events: far below the running cadence (10,000), so only the close can have written one
    await first.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: "n", data: i })))
    await until(async () => (await first.stats()).completed === 300, "300 completed jobs", 20_000)
    await first.close()

    const events = `jobledger.${name}.events`
    const db = new Database(log.slice("sqlite:".length), { readonly: true })
    try {
      const snapshot = db.prepare("SELECT offset, data FROM snapshots WHERE topic = ? AND partition = 0").get(events) as { offset: number; data: string } | undefined
      const { end } = db.prepare("SELECT max(offset) + 1 AS end FROM records WHERE topic = ? AND partition = 0").get(events) as { end: number }
      expect(snapshot?.offset).toBe(end)
      expect((JSON.parse(snapshot!.data) as { counts: unknown }).counts).toMatchObject({ completed: 300, waiting: 0, active: 0 })
    } finally {
      db.close()
    }

    const second = open({}, name, log)
    second.process("n", async (job) => job.data)
    await second.add("n", 300)
    await until(async () => (await second.stats()).completed === 301, "the next engine's job completed", 20_000)
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok).toBe(true)
    expect(replayed.stats).toEqual(await second.stats())
  })
})
