/**
 * Job control beyond the seed's API, on every backend: progress, remove, cancel, waitFor.
 * Each is a command or an event in the log, so each is also checked in the job's timeline.
 */
import { afterEach, describe, expect, it } from "vitest"
import { CancelledError, type Job, JobQueue, replayQueue, WaitTimeoutError } from "../src/index.ts"
import { backends, uniqueQueue, until } from "./support/backends.ts"
import { deferred, queueOpener, sleep } from "./fixtures/helpers.ts"

describe.each(backends)("job control on $name", (backend) => {
  const { open, closeAll } = queueOpener(backend)
  afterEach(closeAll)

  const tagsOf = async (q: JobQueue, id: string) =>
    (await replayQueue(q.log, q.name, { jobId: id })).timeline.map((e) => e.envelope.body._tag)

  describe("progress", () => {
    it("updateProgress: progress events and job.progress; bursts are coalesced, the last value is kept", async () => {
      const q = open()
      const seen: Array<unknown> = []
      const views: Array<unknown> = []
      q.on("progress", (view: Job, value: unknown) => {
        seen.push(value)
        views.push(view.progress)
      })
      const gate = deferred()
      q.process("work", async (job) => {
        await job.updateProgress(0)
        for (let i = 1; i <= 5; i++) void job.updateProgress(i * 10) // a burst: one event for it
        await gate.promise
        await job.updateProgress({ step: "done", pct: 100 })
        return "ok"
      })
      const job = await q.add("work", null)
      await until(() => seen.length >= 1, "the first progress event")
      // the event's job carries its value; the store has it, or the burst's last one if that
      // was written since (~100 ms after the first report)
      expect(views[0]).toBe(0)
      expect([0, 50]).toContain((await q.store.get(job.id))?.progress)
      gate.resolve()
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete")
      const done = await q.store.get(job.id)
      expect(done?.progress).toEqual({ step: "done", pct: 100 })
      expect(seen[0]).toBe(0)
      expect(seen).toContainEqual({ step: "done", pct: 100 })
      const tags = await tagsOf(q, job.id)
      const reports = tags.filter((t) => t === "JobProgress").length
      // 0, the burst's last value, the final one: never one event per call
      expect(reports).toBeGreaterThanOrEqual(2)
      expect(reports).toBeLessThanOrEqual(3)
      expect(tags.at(-1)).toBe("JobCompleted")
    })

    it("a value JSON cannot carry is refused; the job goes on", async () => {
      const q = open()
      const refused = deferred<unknown>()
      q.process("work", async (job) => {
        await job.updateProgress(10n).then(
          () => refused.resolve("accepted"),
          (e) => refused.resolve(e)
        )
        return "ok"
      })
      const job = await q.add("work", null)
      expect(await refused.promise).toBeInstanceOf(TypeError)
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete")
    })
  })

  describe("remove", () => {
    it("takes waiting, delayed and finished jobs out of views and counts; the history stays", async () => {
      const q = open()
      q.process("quick", async () => "ok")
      const done = await q.add("quick", null)
      await until(async () => (await q.store.get(done.id))?.state === "completed", "the first job to complete")
      const later = await q.add("quick", null, { delay: 60_000 })
      const waiting = await q.add("nobody-handles-this", null, { delay: 60_000 })
      expect(await q.stats()).toMatchObject({ completed: 1, delayed: 2 })
      await q.remove(later.id)
      await q.remove(done.id)
      await q.remove(waiting.id)
      await until(async () => (await q.stats()).delayed === 0, "the removals to apply")
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
      expect(await q.store.get(later.id)).toBeUndefined()
      expect(await q.store.get(done.id)).toBeUndefined()
      expect(await tagsOf(q, done.id)).toEqual(["JobAdded", "JobStarted", "JobCompleted", "JobRemoved"])
      expect((await replayQueue(q.log, q.name, { verify: true })).verify?.ok).toBe(true)
      await expect(q.remove(later.id)).rejects.toThrow(/not found/)
    })

    it("rejects an unknown id and a running job", async () => {
      const q = open()
      const gate = deferred()
      q.process("slow", async () => gate.promise)
      const job = await q.add("slow", null)
      await until(async () => (await q.store.get(job.id))?.state === "active", "the job to start")
      await expect(q.remove(job.id)).rejects.toThrow(/running; cancel it first/)
      await expect(q.remove("no-such-job")).rejects.toThrow(/not found/)
      gate.resolve()
    })
  })

  describe("cancel", () => {
    it("fires the handler's AbortSignal and fails the job for good with a CancelledError (no retry)", async () => {
      const failed: Array<Error> = []
      const hooked: Array<Error> = []
      const q = open({ retry: { attempts: 3, delay: 10 }, hooks: { onFailed: (_job, e) => void hooked.push(e) } })
      q.on("failed", (_job: Job, e: Error) => void failed.push(e))
      const aborted = deferred<unknown>()
      q.process("slow", async (job, signal) => {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()))
        aborted.resolve(signal.reason)
        await sleep(50) // a handler that takes its time after the abort: the engine does not wait
        return "too late"
      })
      const job = await q.add("slow", null)
      await until(async () => (await q.store.get(job.id))?.state === "active", "the job to start")
      await q.cancel(job.id, "the user gave up")
      const reason = await aborted.promise
      expect(reason).toBeInstanceOf(CancelledError)
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the job to fail")
      const view = await q.store.get(job.id)
      expect(view).toMatchObject({ state: "failed", attemptsMade: 0, error: { name: "CancelledError", message: "the job was cancelled: the user gave up" } })
      await until(() => hooked.length === 1 && failed.length === 1, "onFailed and failed")
      expect(hooked[0]).toBeInstanceOf(CancelledError)
      await sleep(100)
      expect((await q.store.get(job.id))?.state).toBe("failed") // the late result changed nothing
      expect(await tagsOf(q, job.id)).toEqual(["JobAdded", "JobStarted", "JobCancelled"])
    })

    it("rejects an unknown id and a job that is not running", async () => {
      const q = open()
      const job = await q.add("nobody-handles-this", null, { delay: 60_000 })
      await expect(q.cancel(job.id)).rejects.toThrow(/delayed; only a running job can be cancelled/)
      await expect(q.cancel("no-such-job")).rejects.toThrow(/not found/)
    })
  })

  describe("waitFor", () => {
    it("resolves with the result, rejects with the failure, answers at once for a finished job", async () => {
      const q = open()
      const gate = deferred()
      q.process("echo", async (job) => {
        await gate.promise
        if (job.data.fail) throw new Error("it broke")
        return { echo: job.data }
      })
      const ok = await q.add("echo", { n: 1 })
      const bad = await q.add("echo", { fail: true })
      const waitingOk = q.waitFor(ok.id)
      const waitingBad = q.waitFor(bad.id)
      gate.resolve()
      expect(await waitingOk).toEqual({ echo: { n: 1 } })
      await expect(waitingBad).rejects.toThrow("it broke")
      // finished before the call
      expect(await q.waitFor(ok.id)).toEqual({ echo: { n: 1 } })
      await expect(q.waitFor(bad.id)).rejects.toThrow("it broke")
      await expect(q.waitFor("no-such-job")).rejects.toThrow(/not found/)
    })

    it("works from a producer-only queue, and times out with a WaitTimeoutError", async () => {
      const log = backend.freshLog()
      const name = uniqueQueue()
      const engine = open({}, name, log)
      engine.process("echo", async (job) => ({ echo: job.data }))
      const producer = open({}, name, log)
      const job = await producer.add("echo", "hi")
      expect(await producer.waitFor(job.id, { timeoutMs: 20_000 })).toEqual({ echo: "hi" })
      const never = await producer.add("nobody-handles-this", null, { delay: 60_000 })
      await expect(producer.waitFor(never.id, { timeoutMs: 300 })).rejects.toBeInstanceOf(WaitTimeoutError)
      await expect(producer.waitFor(never.id, { timeoutMs: -1 })).rejects.toThrow(/timeoutMs/)
    })
  })
})
