/**
 * Prometheus metrics (`metrics()` and the dashboard's `/metrics`) on a SQLite log an engine
 * works on: the text parses, gauges equal `stats()`, counters count what happened since the
 * metrics opened, histograms have their buckets, dead letters and snapshot lag come from the
 * log. And `listTopics`, which finds the queues, on every backend.
 */
import { ManagedRuntime } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { ENVELOPE_VERSION } from "../machines/schema.ts"
import { JobQueue, metrics } from "../src/index.ts"
import { EventLog, topicsOf } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { run } from "../src/run.ts"
import { HANDLER_BUCKETS } from "../src/metrics/metrics.ts"
import { backends, sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { createDashboard } from "../src/dashboard/dashboard.ts"
import { parseMetrics, sampleValue, serve } from "./support/dashboard.ts"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
})

const withLog = async <T>(url: string, use: (log: import("../src/log/event-log.ts").EventLogService) => Promise<T>): Promise<T> => {
  const runtime = ManagedRuntime.make(layerFromUrl(url))
  try {
    return await use(await runtime.runPromise(EventLog))
  } finally {
    await runtime.dispose()
  }
}

describe("metrics()", () => {
  it("exposes jobs by state equal to stats(), totals, histograms, dead letters and snapshot lag", async () => {
    const log = sqliteBackend.freshLog()
    const queue = uniqueQueue("metrics")
    const engine = new JobQueue(queue, { log, concurrency: 2, retry: { attempts: 1, delay: 5 } })
    engine.on("error", () => {})
    cleanups.push(() => engine.close({ graceMs: 0 }))
    await engine.waitUntilReady()
    // metrics open before the work: their counters see all of it
    const m = metrics({ log, report: () => {} })
    cleanups.push(() => m.close())
    await m.ready()
    engine.process("work", async (job) => {
      await new Promise((r) => setTimeout(r, 20))
      if (job.data.fail) throw new Error("no")
      return {}
    })
    for (let i = 0; i < 6; i++) await engine.add("work", { fail: i % 3 === 0 })
    await engine.add("work", {}, { delay: 60_000 })
    await until(async () => (await engine.stats()).completed === 4 && (await engine.stats()).failed === 2, "4 completed, 2 failed")
    // a command the engine refuses goes to the dead-letter topic
    await withLog(log, (l) => run(l.append(topicsOf(queue).commands, [{ key: "x", value: JSON.stringify({ v: ENVELOPE_VERSION, queue, jobId: "x", time: Date.now(), body: { _tag: "Nonsense" } }) }])))
    await until(async () => parseMetrics(await m.text()).samples.some((s) => s.name === "jobledger_dead_letters" && s.value === 1), "one dead letter")

    const stats = await engine.stats()
    const { samples, types } = parseMetrics(await m.text())
    for (const state of ["waiting", "active", "completed", "failed", "delayed", "paused"] as const)
      expect(sampleValue(samples, "jobledger_jobs", { queue, state })).toBe(stats[state])
    expect(stats.delayed).toBe(1)
    expect(sampleValue(samples, "jobledger_queue_paused", { queue })).toBe(0)
    expect(sampleValue(samples, "jobledger_jobs_added_total", { queue })).toBe(7)
    expect(sampleValue(samples, "jobledger_jobs_completed_total", { queue })).toBe(stats.completed)
    expect(sampleValue(samples, "jobledger_jobs_failed_total", { queue })).toBe(stats.failed)
    expect(sampleValue(samples, "jobledger_jobs_retried_total", { queue, kind: "automatic" })).toBe(2)
    expect(sampleValue(samples, "jobledger_jobs_retried_total", { queue, kind: "manual" })).toBe(0)
    expect(sampleValue(samples, "jobledger_jobs_stalled_total", { queue })).toBe(0)
    expect(sampleValue(samples, "jobledger_dead_letters", { queue })).toBe(1)

    // histograms: every bucket, +Inf, _sum and _count; 8 runs (4 completed, 2 retried, 2 failed)
    const bucketsOf = (outcome: string) =>
      samples.filter((s) => s.name === "jobledger_handler_duration_seconds_bucket" && s.labels.queue === queue && s.labels.outcome === outcome)
    expect(bucketsOf("completed").map((s) => s.labels.le)).toEqual([...HANDLER_BUCKETS.map(String), "+Inf"])
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_count", { queue, outcome: "completed" })).toBe(4)
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_count", { queue, outcome: "retrying" })).toBe(2)
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_count", { queue, outcome: "failed" })).toBe(2)
    // the engine runs in this process: its transactions are timed (each job is ≥ 3 events, some per transaction)
    const appends = sampleValue(samples, "jobledger_log_append_seconds_count", { queue, result: "ok" })
    expect(appends).toBeGreaterThanOrEqual(3)
    expect(sampleValue(samples, "jobledger_log_append_seconds_bucket", { queue, result: "ok", le: "+Inf" })).toBe(appends)
    expect(sampleValue(samples, "jobledger_log_append_seconds_sum", { queue, result: "ok" })).toBeGreaterThan(0)
    // handlers sleep 20 ms: none is under 10 ms, every one under 10 s
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_bucket", { queue, outcome: "completed", le: "0.01" })).toBe(0)
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_bucket", { queue, outcome: "completed", le: "10" })).toBe(4)
    expect(sampleValue(samples, "jobledger_handler_duration_seconds_sum", { queue, outcome: "completed" })).toBeGreaterThanOrEqual(4 * 0.019)
    expect(sampleValue(samples, "jobledger_job_wait_seconds_count", { queue })).toBe(8)
    expect(sampleValue(samples, "jobledger_job_wait_seconds_bucket", { queue, le: "+Inf" })).toBe(8)

    // snapshots: the lag is the events after the latest one (all of them while there is none)
    const events = await withLog(log, (l) => run(l.endOffset(topicsOf(queue).events, 0)))
    const snapshot = await withLog(log, (l) => run(l.loadSnapshot(topicsOf(queue).events, 0)))
    expect(sampleValue(samples, "jobledger_snapshot_lag_events", { queue, partition: "0" })).toBe(events - (snapshot?.offset ?? 0))

    expect(types.get("jobledger_jobs")).toBe("gauge")
    expect(types.get("jobledger_jobs_completed_total")).toBe("counter")
    expect(types.get("jobledger_handler_duration_seconds")).toBe("histogram")
    expect(types.get("jobledger_job_wait_seconds")).toBe("histogram")
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
  })

  it("reports a snapshot's time and the events after it once the engine wrote one", async () => {
    const log = sqliteBackend.freshLog()
    const queue = uniqueQueue("metrics")
    const previous = process.env.JOBLEDGER_SNAPSHOT_EVERY
    process.env.JOBLEDGER_SNAPSHOT_EVERY = "1"
    cleanups.push(async () => (previous === undefined ? delete process.env.JOBLEDGER_SNAPSHOT_EVERY : (process.env.JOBLEDGER_SNAPSHOT_EVERY = previous)))
    const engine = new JobQueue(queue, { log })
    engine.on("error", () => {})
    cleanups.push(() => engine.close({ graceMs: 0 }))
    engine.process("work", async () => ({}))
    const startedAt = Date.now()
    for (let i = 0; i < 5; i++) await engine.add("work", {})
    await until(async () => (await engine.stats()).completed === 5, "5 completed")
    await until(async () => (await withLog(log, (l) => run(l.loadSnapshot(topicsOf(queue).events, 0)))) !== undefined, "a snapshot")
    const m = metrics({ log, queues: [queue], report: () => {} })
    cleanups.push(() => m.close())
    const { samples } = parseMetrics(await m.text())
    const events = await withLog(log, (l) => run(l.endOffset(topicsOf(queue).events, 0)))
    const snapshot = (await withLog(log, (l) => run(l.loadSnapshot(topicsOf(queue).events, 0))))!
    expect(sampleValue(samples, "jobledger_snapshot_lag_events", { queue, partition: "0" })).toBe(events - snapshot.offset)
    const takenAt = sampleValue(samples, "jobledger_snapshot_timestamp_seconds", { queue, partition: "0" })
    expect(takenAt * 1000).toBeGreaterThanOrEqual(startedAt - 1)
    expect(takenAt * 1000).toBeLessThanOrEqual(Date.now())
  })

  it("is served by the dashboard at /metrics with the same values", async () => {
    const log = sqliteBackend.freshLog()
    const queue = uniqueQueue("metrics")
    const engine = new JobQueue(queue, { log })
    engine.on("error", () => {})
    cleanups.push(() => engine.close({ graceMs: 0 }))
    engine.process("work", async () => ({}))
    await engine.add("work", {})
    await until(async () => (await engine.stats()).completed === 1, "1 completed")
    const board = createDashboard({ log, report: () => {} })
    cleanups.push(() => board.close())
    const served = await serve(board)
    cleanups.push(() => served.close())
    const res = await fetch(`${served.base}/metrics`)
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
    const { samples } = parseMetrics(await res.text())
    expect(sampleValue(samples, "jobledger_jobs", { queue, state: "completed" })).toBe(1)
  })
})

describe.each(backends)("listTopics on $name", (backend) => {
  it("names every topic, creating none", async () => {
    const log = backend.freshLog()
    const queue = uniqueQueue("topics")
    const q = new JobQueue(queue, { log })
    cleanups.push(() => q.close({ graceMs: 0 }))
    await q.waitUntilReady()
    await withLog(log, async (l) => {
      const topics = await run(l.listTopics())
      const t = topicsOf(queue)
      for (const name of [t.commands, t.events, t.deadLetter]) expect(topics).toContain(name)
      expect(await run(l.listTopics())).toEqual(topics)
      expect(await run(l.partitionCount(topicsOf(`${queue}-not-there`).events))).toBeUndefined()
    })
  }, 60_000)
})
