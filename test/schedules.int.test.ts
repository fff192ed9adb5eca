/**
 * Schedules on every backend: `every` and cron ticks add one job each, upserts replace in
 * place, removal stops them, bad expressions are refused, and ticks missed while no engine
 * ran are added once (not once per missed tick). Each is checked in the log too.
 */
import { afterEach, describe, expect, it } from "vitest"
import { InvalidOptionError, type Job, replayQueue } from "../src/index.ts"
import { backends, uniqueQueue, until } from "./support/backends.ts"
import { queueOpener, sleep } from "./fixtures/helpers.ts"

describe.each(backends)("schedules on $name", (backend) => {
  const { open, closeAll } = queueOpener(backend)
  afterEach(closeAll)

  /** The jobs the log holds for a schedule, as (job id, JobAdded's schedule tick). */
  const scheduled = async (log: string, queue: string, id: string) => {
    const { projection } = await replayQueue(log, queue)
    return projection
      .list()
      .filter((v) => v.schedule?.id === id)
      .map((v) => ({ id: v.id, tick: v.schedule!.tick, state: v.state }))
      .sort((a, b) => a.tick - b.tick)
  }

  it("every: one job per tick, ids <schedule>:<tick>, up to its limit", async () => {
    const q = open()
    const seen: Array<Job> = []
    q.process("report", async (job) => {
      seen.push(job)
      return { tick: job.schedule?.tick }
    })
    await q.upsertSchedule("reports", { every: 150, limit: 3 }, { name: "report", data: { kind: "daily" } })
    await until(() => seen.length === 3, "three scheduled jobs", 10_000)
    await sleep(400) // the limit holds: no fourth
    const jobs = await scheduled(q.log, q.name, "reports")
    expect(jobs).toHaveLength(3)
    for (const j of jobs) expect(j.id).toBe(`reports:${j.tick}`)
    expect(jobs[1]!.tick - jobs[0]!.tick).toBe(150)
    expect(jobs[2]!.tick - jobs[1]!.tick).toBe(150)
    expect(seen.map((j) => j.data)).toEqual([{ kind: "daily" }, { kind: "daily" }, { kind: "daily" }])
    const [info] = await q.schedules()
    expect(info).toMatchObject({ id: "reports", repeat: { every: 150, limit: 3 }, count: 3, lastTick: jobs[2]!.tick })
    expect(info?.nextTick).toBeUndefined()
    const audit = await replayQueue(q.log, q.name, { verify: true })
    expect(audit.verify?.ok, JSON.stringify(audit.verify?.issues)).toBe(true)
  })

  it("upsert with the same id replaces in place; removeSchedule stops it; unknown ids are refused", async () => {
    const q = open()
    const data: Array<unknown> = []
    q.process("tick", async (job) => void data.push(job.data))
    await q.upsertSchedule("s", { every: 100 }, { name: "tick", data: 1 })
    await until(() => data.length >= 2, "two ticks")
    await q.upsertSchedule("s", { every: 100 }, { name: "tick", data: 2 })
    await until(() => data.includes(2), "a tick of the new template")
    const infos = await q.schedules()
    expect(infos.map((s) => s.id)).toEqual(["s"])
    expect(infos[0]!.template).toEqual({ name: "tick", data: 2 })
    await q.removeSchedule("s")
    await until(async () => (await q.schedules()).length === 0, "the removal")
    const count = data.length
    await sleep(350)
    expect(data.length).toBeLessThanOrEqual(count + 1) // a tick already in flight may still run
    await expect(q.removeSchedule("s")).rejects.toThrow(/schedule 's' not found/)
    // the updated schedule kept counting its ticks from the same anchor: every 100 ms, no repeat
    const ticks = (await scheduled(q.log, q.name, "s")).map((j) => j.tick)
    expect(new Set(ticks).size).toBe(ticks.length)
    for (let i = 1; i < ticks.length; i++) expect((ticks[i]! - ticks[0]!) % 100).toBe(0)
  })

  it("cron with a time zone ticks on the expression's times", async () => {
    const q = open()
    const ticks: Array<number> = []
    q.process("cron", async (job) => void ticks.push(job.schedule!.tick))
    await q.upsertSchedule("each-second", { cron: "* * * * * *", tz: "Asia/Jakarta", limit: 2 }, { name: "cron", data: null })
    await until(() => ticks.length === 2, "two cron ticks", 10_000)
    for (const t of ticks) expect(t % 1000).toBe(0)
    expect(ticks[1]! - ticks[0]!).toBe(1000)
  })

  it("a bad cron expression or time zone throws an InvalidOptionError naming it", async () => {
    const q = open()
    await expect(q.upsertSchedule("x", { cron: "every day at 8" }, { name: "n", data: null })).rejects.toThrow(/cron expression 'every day at 8' is not valid/)
    await expect(q.upsertSchedule("x", { cron: "0 8 * * *", tz: "Mars/Olympus" }, { name: "n", data: null })).rejects.toThrow(/time zone 'Mars\/Olympus'/)
    await expect(q.upsertSchedule("x", { every: 0 }, { name: "n", data: null })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(q.upsertSchedule("x", { every: 10, cron: "* * * * *" } as never, { name: "n", data: null })).rejects.toThrow(/exactly one of every/)
    await expect(q.upsertSchedule("x", { every: 10 }, { name: "n", data: null, opts: { delay: 5 } as never })).rejects.toThrow(/delay or jobId/)
  })

  it("ticks missed while no engine ran are added once, when an engine starts", async () => {
    const log = backend.freshLog()
    const name = uniqueQueue()
    const watcher = open({}, name, log) // reads the schedule (and holds a memory log open between the engines)
    const first = open({}, name, log)
    first.process("beat", async () => null)
    await first.upsertSchedule("beat", { every: 200 }, { name: "beat", data: null })
    const info = async () => (await watcher.schedules())[0]
    await until(async () => ((await info())?.count ?? 0) >= 1, "a first beat")
    await first.close()
    const before = (await info())!
    await sleep(1_300) // about six ticks with no engine
    const second = open({}, name, log)
    const restartedAt = Date.now()
    second.process("beat", async () => null)
    await until(async () => (await info())!.count > before.count, "the catch-up tick", 20_000)
    const after = (await info())!
    // every tick has exactly one job, <schedule>:<tick> (a tick's AddJob may still be on its
    // way to an engine when the one that ticked stops)
    await until(async () => (await scheduled(log, name, "beat")).length >= after.count, "a job for every tick", 20_000)
    const ticks = (await scheduled(log, name, "beat")).map((j) => j.tick)
    expect(new Set(ticks).size).toBe(ticks.length)
    expect(ticks).toContain(before.lastTick)
    // one tick stands for all the missed ones: the first after the stop is the latest one
    // due when the engine started, nothing in between
    const catchUp = ticks.find((t) => t > before.lastTick!)!
    expect(catchUp).toBeGreaterThan(restartedAt - 400)
    expect(catchUp - before.lastTick!).toBeGreaterThanOrEqual(1_000)
    const audit = await replayQueue(log, name, { verify: true })
    expect(audit.verify?.ok, JSON.stringify(audit.verify?.issues)).toBe(true)
  })
})
