/**
 * What holds for the whole queue on Kafka, across partitions and engines: the rate limit
 * (two engines together never pass `max` starts in a window) and the causal order of events
 * (a listener sees `resumed` before the `active` of a job the resume released).
 */
import { afterEach, describe, expect, it } from "vitest"
import { maxInAnyWindow } from "./support/windows.ts"
import { type Job, JobQueue } from "../src/index.ts"
import { engineGroupOf, topicsOf } from "../src/log/event-log.ts"
import { kafkaBrokers, uniqueQueue, until } from "./support/backends.ts"
import { eventsOf, groupMembers, kafkaBrokerList } from "./support/kafka.ts"


describe.skipIf(kafkaBrokers === undefined)("the queue as a whole on Kafka", () => {
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
  })
  const open = (name: string, options: ConstructorParameters<typeof JobQueue>[1] = {}) => {
    const q = new JobQueue(name, { log: `kafka://${kafkaBrokers}?partitions=4`, ...options })
    q.on("error", () => {})
    queues.push(q)
    return q
  }

  it("two engines together start at most limiter.max jobs in any window", async () => {
    const name = uniqueQueue("limit")
    const limiter = { max: 4, duration: 800 }
    const starts: Array<{ engine: string; at: number }> = []
    for (const engine of ["a", "b"]) {
      const q = open(name, { concurrency: 10, limiter })
      q.process("call", async () => void starts.push({ engine, at: Date.now() }))
    }
    await until(
      async () => {
        const g = await groupMembers(kafkaBrokerList, engineGroupOf(name), topicsOf(name).commands)
        return g.state === "Stable" && g.members.length === 2 && g.members.every((m) => m.partitions.length === 2)
      },
      "two engines owning two partitions each",
      60_000
    )
    const producer = open(name)
    await producer.addBulk(Array.from({ length: 24 }, (_, i) => ({ name: "call", data: { i } })))
    await until(() => starts.length === 24, "every job to start", 60_000)
    // the starts as decided (JobStarted's time in the log): a handler's own clock reading
    // can lag its start by a few ms and crowd two windows into one
    const decided = (await eventsOf(`kafka://${kafkaBrokers}`, name)).filter((e) => e.envelope.body._tag === "JobStarted").map((e) => e.envelope.time)
    expect(decided).toHaveLength(24)
    expect(maxInAnyWindow(decided, limiter.duration)).toBeLessThanOrEqual(limiter.max)
    expect(new Set(starts.map((s) => s.engine)).size).toBe(2) // both engines took their share
    // 24 starts at 4 per window take at least 5 windows
    const span = Math.max(...decided) - Math.min(...decided)
    expect(span).toBeGreaterThanOrEqual(5 * limiter.duration)
  }, 120_000)

  it("a listener sees resumed before the active of any job the resume released", async () => {
    const name = uniqueQueue("order")
    const q = open(name, { concurrency: 8 })
    const events: Array<string> = []
    q.on("paused", () => events.push("paused"))
    q.on("resumed", () => events.push("resumed"))
    q.on("active", (job: Job) => events.push(`active ${job.id}`))
    q.process("work", async () => null)
    await q.pause()
    await until(() => events.includes("paused"), "the paused event", 30_000)
    const jobs = await q.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: "work", data: { i } })))
    await until(async () => (await q.stats()).paused === 12, "12 paused jobs", 30_000)
    await q.resume()
    await until(async () => (await q.stats()).completed === 12, "every job to complete", 30_000)
    const resumedAt = events.indexOf("resumed")
    expect(resumedAt).toBeGreaterThan(-1)
    for (const job of jobs) expect(events.indexOf(`active ${job.id}`), `${job.id} in ${events.join(", ")}`).toBeGreaterThan(resumedAt)
    expect(events.filter((e) => e === "resumed")).toHaveLength(1)
  }, 120_000)
})
