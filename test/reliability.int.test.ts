/**
 * Reliability on the local backends (memory and a SQLite file): per-job timeouts, close()
 * with handlers that ignore their AbortSignal, misbehaving handlers (unhandled rejections
 * included), and hostile input through `add` and straight onto the commands topic.
 * Disk faults need a small filesystem: see disk-faults.int.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest"
import { InvalidOptionError, type Job, JobQueue, replayQueue } from "../src/index.ts"
import { memoryBackend, sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { queueOpener, sleep } from "./fixtures/helpers.ts"

const localBackends = [memoryBackend, sqliteBackend]

describe.each(localBackends)("reliability on $name", (backend) => {
  const { open, closeAll } = queueOpener(backend)
  afterEach(closeAll)

  describe("per-job timeout", () => {
    it("add(…, { timeout }) overrides the queue's timeout for that job only; it fails with a TimeoutError", async () => {
      const q = open({ timeout: 5_000 })
      const aborted: Array<string> = []
      q.process("hangs", (job, signal) => {
        signal.addEventListener("abort", () => aborted.push(job.id))
        return new Promise(() => {})
      })
      q.process("slowish", async () => {
        await sleep(150)
        return "done"
      })
      const failures: Array<[string, Error]> = []
      q.on("failed", (job: Job, error: Error) => failures.push([job.id, error]))
      const started = Date.now()
      const short = await q.add("hangs", {}, { timeout: 80 })
      // the queue's 5 s applies to a job without its own timeout: it finishes in its 150 ms
      const inherits = await q.add("slowish", {})
      // a per-job timeout longer than the work lets it complete
      const roomy = await q.add("slowish", {}, { timeout: 2_000 })
      await until(async () => (await q.store.get(short.id))?.state === "failed", "the short-timeout job to fail")
      const elapsed = Date.now() - started
      expect(elapsed).toBeLessThan(4_000) // far below the queue's 5 s
      const view = await q.store.get(short.id)
      expect(view?.error).toMatchObject({ name: "TimeoutError", message: "job timed out after 80 ms" })
      expect(aborted).toEqual([short.id])
      expect(failures.map(([id]) => id)).toEqual([short.id])
      expect(failures[0]![1].name).toBe("TimeoutError")
      await until(async () => (await q.stats()).completed === 2, "the two slowish jobs")
      expect((await q.store.get(inherits.id))?.result).toBe("done")
      expect((await q.store.get(roomy.id))?.result).toBe("done")
    })

    it("a per-job timeout applies without a queue timeout, follows the retry policy, and is in the log", async () => {
      const q = open({ retry: { attempts: 2, delay: 10 } })
      let runs = 0
      q.process("hangs", () => {
        runs++
        return new Promise(() => {})
      })
      const retries: Array<number> = []
      q.on("retrying", (_job: Job, attempt: number) => retries.push(attempt))
      const job = await q.add("hangs", {}, { timeout: 40 })
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the job to fail after its retries")
      expect(runs).toBe(3)
      expect(retries).toEqual([1, 2])
      expect(await q.store.get(job.id)).toMatchObject({ attemptsMade: 2, error: { name: "TimeoutError" } })
      const { timeline } = await replayQueue(q.log, q.name, { jobId: job.id })
      expect(timeline[0]!.envelope.body).toMatchObject({ _tag: "JobAdded", timeout: 40 })
      const retrying = timeline.filter((e) => e.envelope.body._tag === "JobRetrying")
      expect(retrying).toHaveLength(2)
      for (const e of retrying) expect(e.envelope.body).toMatchObject({ error: { name: "TimeoutError", message: "job timed out after 40 ms" } })
    })

    it("rejects a bad per-job timeout with an InvalidOptionError, adding nothing", async () => {
      const q = open()
      for (const timeout of [0, -1, 1.5, Number.NaN, Infinity, "100", 2 ** 31, null]) {
        const attempt = q.add("x", {}, { timeout } as never)
        await expect(attempt, String(timeout)).rejects.toBeInstanceOf(InvalidOptionError)
        await expect(q.add("x", {}, { timeout } as never)).rejects.toThrow(/timeout must be a whole number of ms between 1 and 2147483647/)
      }
      await expect(q.addBulk([{ name: "a", data: 1 }, { name: "b", data: 2, opts: { timeout: -5 } }])).rejects.toThrow(/addBulk item 1: timeout/)
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
    })
  })

  describe("close() and handlers that ignore their AbortSignal", () => {
    it("close({ graceMs }) returns shortly after the grace period and hands the job back as stalled", async () => {
      const name = uniqueQueue()
      const log = backend.freshLog()
      const q = new JobQueue(name, { log })
      let signalled = false
      q.process("stubborn", (_job, signal) => {
        signal.addEventListener("abort", () => (signalled = true))
        return new Promise(() => {}) // ignores the signal: never settles
      })
      const job = await q.add("stubborn", {})
      await until(async () => (await q.store.get(job.id))?.state === "active", "the job to start")
      const started = Date.now()
      await q.close({ graceMs: 300 })
      const took = Date.now() - started
      expect(signalled).toBe(true)
      expect(took).toBeGreaterThanOrEqual(290)
      expect(took).toBeLessThan(1_500)
      if (backend.name === "sqlite") {
        // the job went back to the queue in the log: the next engine runs it
        const { timeline } = await replayQueue(log, name, { jobId: job.id })
        expect(timeline.map((e) => e.envelope.body._tag)).toEqual(["JobAdded", "JobStarted", "JobStalled"])
        const next = new JobQueue(name, { log })
        try {
          next.process("stubborn", async () => "second run")
          await until(async () => (await next.store.get(job.id))?.state === "completed", "the handed-back job to run again")
        } finally {
          await next.close()
        }
      }
    })

    it("a handler ignoring its signal after a timeout does not hold close(): the job already failed", async () => {
      const q = open()
      q.process("stubborn", () => new Promise(() => {}))
      const job = await q.add("stubborn", {}, { timeout: 50 })
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the timeout")
      const started = Date.now()
      await q.close({ graceMs: 5_000 })
      expect(Date.now() - started).toBeLessThan(1_000)
    })
  })
})
