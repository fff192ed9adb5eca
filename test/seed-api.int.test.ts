/**
 * The public API promised by the job-queue seed (docs: /work/shared/SEED-job-queue.md),
 * end to end through `src/index.ts`, on every log backend.
 */
import { afterEach, describe, expect, it } from "vitest"
import {
  InvalidOptionError,
  JobQueue,
  type Job,
  type JobState,
  type QueueOptions,
  type QueueStats,
  type QueueStore,
  replayQueue
} from "../src/index.ts"
import { backends, uniqueQueue, until } from "./support/backends.ts"
import { deferred, listenerChecks, queueOpener, sleep } from "./fixtures/helpers.ts"

const STATS_KEYS = ["active", "completed", "delayed", "failed", "paused", "waiting"]

/** Expects `new JobQueue(...)` to throw an InvalidOptionError whose message matches. */
const expectBadOptions = async (options: unknown, message: RegExp, name = uniqueQueue()) => {
  let queue: JobQueue | undefined
  let thrown: unknown
  try {
    queue = new JobQueue(name, options as QueueOptions)
  } catch (e) {
    thrown = e
  }
  if (queue !== undefined) await queue.close()
  expect(thrown, `options ${String(JSON.stringify(options))} should be refused`).toBeInstanceOf(Error)
  expect(thrown).toBeInstanceOf(InvalidOptionError)
  expect((thrown as Error).message).toMatch(message)
}

describe.each(backends)("seed API on $name", (backend) => {
  const { open, closeAll } = queueOpener(backend)
  afterEach(closeAll)

  describe("options", () => {
    it("refuses bad queue options at construction, saying what to fix", async () => {
      const log = backend.freshLog()
      await expectBadOptions({ log, concurrency: -1 }, /concurrency/)
      await expectBadOptions({ log, concurrency: 0 }, /concurrency/)
      await expectBadOptions({ log, concurrency: 2.5 }, /concurrency/)
      await expectBadOptions({ log, concurrency: "3" }, /concurrency/)
      await expectBadOptions({ log, retry: { attempts: 3, backoff: "linear" } }, /backoff.*'fixed'.*'exponential'|fixed|exponential/)
      await expectBadOptions({ log, retry: { attempts: -1 } }, /attempts/)
      await expectBadOptions({ log, limiter: { duration: 1000 } }, /limiter\.max|max/)
      await expectBadOptions({ log, limiter: { max: 5 } }, /duration/)
      await expectBadOptions({ log, concurency: 2 }, /concurency/)
      await expectBadOptions({ log, hooks: { onComplete: "yes" } }, /onComplete/)
      await expectBadOptions({ log, hooks: { onDone: () => {} } }, /onDone/)
      await expectBadOptions({ log, store: { get: () => undefined } }, /store/)
      await expectBadOptions({ log, timeout: -5 }, /timeout/)
      await expectBadOptions({ log: "postgres://localhost/jobs" }, /log|memory:|sqlite:|kafka:/)
      await expectBadOptions({ log: "kafka://" }, /broker|host:port|kafka/)
      await expectBadOptions({ log }, /queue name/, "")
    })

    it("accepts the seed's own option shapes", async () => {
      const q = open({
        concurrency: 5,
        retry: { attempts: 3, backoff: "exponential", delay: 1000, maxDelay: 60000 },
        limiter: { max: 5, duration: 60000 },
        hooks: { onComplete: async () => {}, onFailed: async () => {}, onRetry: async () => {} }
      })
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
    })

    it("rejects bad add input with a clear message, and the queue keeps working", async () => {
      const q = open()
      const cycle: Record<string, unknown> = { a: 1 }
      cycle.self = cycle
      const bad: Array<[() => Promise<unknown>, RegExp]> = [
        [() => q.add("", {}), /name/],
        [() => q.add("job", {}, { priority: Number.NaN }), /priority/],
        [() => q.add("job", {}, { delay: -1 }), /delay/],
        [() => q.add("job", { n: 10n }), /BigInt|serializ|JSON/i],
        [() => q.add("job", 10n as unknown), /bigint|serializ|JSON/i],
        [() => q.add("job", cycle), /circular|cycle|serializ|JSON/i],
        [() => q.add("job", {}, { jobId: "" }), /jobId/],
        [() => q.add("job", {}, { prio: 1 } as never), /prio/]
      ]
      for (const [call, message] of bad) {
        let promise: Promise<unknown> | undefined
        expect(() => {
          promise = call()
        }, "add must reject, not throw synchronously").not.toThrow()
        const error = await promise!.then(
          () => undefined,
          (e: unknown) => e
        )
        expect(error, `expected a rejection matching ${message}`).toBeInstanceOf(InvalidOptionError)
        expect((error as Error).message).toMatch(message)
      }
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
      q.process("job", async () => "ok")
      const job = await q.add("job", { fine: true })
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the good job to complete")
    })
  })

  describe("add, jobs and the store", () => {
    it("add returns the job as the seed's Job interface describes it", async () => {
      const q = open({ retry: { attempts: 2, delay: 10 } })
      const before = Date.now()
      const job = await q.add("task", { x: 1 }, { priority: 7, metadata: { userId: "u1" } })
      const after = Date.now()
      expect(typeof job.id).toBe("string")
      expect(job.id.length).toBeGreaterThan(0)
      expect(job).toMatchObject({ name: "task", data: { x: 1 }, state: "waiting", attemptsMade: 0, maxAttempts: 2, priority: 7, metadata: { userId: "u1" } })
      expect(job.result).toBeUndefined()
      expect(job.error).toBeUndefined()
      for (const t of [job.createdAt, job.runAt, job.updatedAt]) {
        expect(t).toBeGreaterThanOrEqual(before)
        expect(t).toBeLessThanOrEqual(after)
      }
      const delayed = await q.add("task", { x: 2 }, { delay: 60_000 })
      expect(delayed.state).toBe("delayed")
      expect(delayed.priority).toBe(0)
      expect(delayed.runAt - delayed.createdAt).toBe(60_000)
      const plain = await q.add("task", undefined)
      expect(plain.metadata).toBeUndefined()
      expect(plain.state).toBe("waiting")
      expect(await q.store.get("no-such-job")).toBeUndefined()
    })

    it("the job add returns is the job the store shows (same id, fields and timestamps)", async () => {
      const q = open({ concurrency: 1, retry: { attempts: 2, delay: 10 } })
      const gate = deferred()
      q.process("task", async () => {
        await gate.promise
        return "ok"
      })
      const first = await q.add("task", { x: 1 }, { priority: 7, metadata: { userId: "u1" } })
      // The one permit is taken before the second add, so the second job stays waiting on every
      // backend (on Kafka an engine just joining can meet the two jobs in either partition first).
      await until(async () => (await q.store.get(first.id))?.state === "active", "the first job to start")
      const second = await q.add("task", { x: 2 }, { priority: 1 })
      const delayed = await q.add("task", { x: 3 }, { delay: 60_000 })
      await until(async () => (await q.store.get(delayed.id)) !== undefined, "the jobs to reach the store")
      for (const job of [first, second, delayed]) {
        const stored = await q.store.get(job.id)
        const { state: _s, updatedAt: _u, ...fields } = job
        expect.soft(stored, `job ${JSON.stringify(job.data)}`).toMatchObject(fields)
      }
      expect((await q.store.get(second.id))?.state).toBe("waiting")
      expect((await q.store.get(delayed.id))?.state).toBe("delayed")
      gate.resolve()
      await until(async () => (await q.stats()).completed === 2, "2 completions")
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 2, failed: 0, delayed: 1, paused: 0 })
    })

    it("with no engine running anywhere, added jobs still show in stats and the store as waiting/delayed", async () => {
      // A producer-only JobQueue (it never calls `process`), e.g. a web process whose
      // workers are down: its stats must count what it queued.
      const q = open()
      const job = await q.add("task", { x: 1 })
      const later = await q.add("task", { x: 2 }, { delay: 60_000 })
      await until(async () => (await q.stats()).waiting === 1, "stats to count the waiting job", 3_000)
      expect(await q.stats()).toEqual({ waiting: 1, active: 0, completed: 0, failed: 0, delayed: 1, paused: 0 })
      expect((await q.store.get(job.id))?.state).toBe("waiting")
      expect((await q.store.get(later.id))?.state).toBe("delayed")
    })

    it("the handler sees the job's fields; the result lands in the store and the completed event", async () => {
      const q = open({ retry: { attempts: 4, delay: 10 } })
      const { check, settled } = listenerChecks()
      const seen: Array<Job> = []
      q.process("task", async (job) => {
        seen.push(structuredClone(job))
        return { doubled: job.data.n * 2 }
      })
      const completed = deferred<[Job, unknown]>()
      q.on("completed", (job, result) => completed.resolve([job, result]))
      const job = await q.add("task", { n: 21 }, { priority: 3, metadata: { campaignId: "c9" } })
      const [doneJob, result] = await completed.promise
      expect(result).toEqual({ doubled: 42 })
      expect(doneJob).toMatchObject({ id: job.id, state: "completed", result: { doubled: 42 } })
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({
        id: job.id,
        name: "task",
        data: { n: 21 },
        state: "active",
        attemptsMade: 0,
        maxAttempts: 4,
        priority: 3,
        metadata: { campaignId: "c9" }
      })
      const stored = await q.store.get(job.id)
      expect(stored).toMatchObject({ state: "completed", result: { doubled: 42 }, attemptsMade: 0 })
      expect(stored!.updatedAt).toBeGreaterThanOrEqual(stored!.createdAt)
      check(async () => expect(await q.stats()).toMatchObject({ completed: 1, waiting: 0, active: 0 }))
      await settled()
    })

    it("jobId makes add idempotent: the second add returns the first job and the handler runs once", async () => {
      const q = open()
      const runs: Array<unknown> = []
      q.process("charge", async (job) => {
        runs.push(job.data)
        return "charged"
      })
      const first = await q.add("charge", { amount: 10 }, { jobId: "order-1" })
      const second = await q.add("charge", { amount: 99 }, { jobId: "order-1" })
      expect(first.id).toBe("order-1")
      expect(second.id).toBe("order-1")
      expect.soft(second.data, "the second add must return the first job, not its own data").toEqual({ amount: 10 })
      await until(async () => (await q.store.get("order-1"))?.state === "completed", "order-1 to complete")
      const third = await q.add("charge", { amount: 5 }, { jobId: "order-1" })
      expect(third).toMatchObject({ id: "order-1", state: "completed", data: { amount: 10 }, result: "charged" })
      // a later job, to give any duplicate time to run before we count
      const sentinel = await q.add("charge", { amount: 0 })
      await until(async () => (await q.store.get(sentinel.id))?.state === "completed", "the sentinel to complete")
      expect(runs).toEqual([{ amount: 10 }, { amount: 0 }])
      expect((await q.stats()).completed).toBe(2)
      expect((await q.store.list()).filter((j) => j.id === "order-1")).toHaveLength(1)
    })

    it("jobId: concurrent adds of the same id create one job", async () => {
      const q = open()
      let runs = 0
      q.process("charge", async () => {
        runs++
        return "ok"
      })
      const added = await Promise.all([1, 2, 3].map((n) => q.add("charge", { n }, { jobId: "same" })))
      expect(added.map((j) => j.id)).toEqual(["same", "same", "same"])
      await until(async () => (await q.store.get("same"))?.state === "completed", "the job to complete")
      const sentinel = await q.add("charge", {})
      await until(async () => (await q.store.get(sentinel.id))?.state === "completed", "the sentinel to complete")
      expect(runs).toBe(2)
      expect(await q.stats()).toMatchObject({ completed: 2, waiting: 0, failed: 0 })
    })

    it("addBulk adds every job (the seed's bulk shape) and they all run", async () => {
      const q = open()
      const emails: Array<string> = []
      q.process("send-email", async (job) => {
        emails.push(job.data.email)
        return { sent: true }
      })
      const jobs = [
        { name: "send-email", data: { email: "user1@ex.com" } },
        { name: "send-email", data: { email: "user2@ex.com" } },
        { name: "send-email", data: { email: "user3@ex.com" } }
      ]
      const added = await q.addBulk(jobs)
      expect(added).toHaveLength(3)
      expect(new Set(added.map((j) => j.id)).size).toBe(3)
      expect(added.map((j) => j.data.email)).toEqual(["user1@ex.com", "user2@ex.com", "user3@ex.com"])
      await until(async () => (await q.stats()).completed === 3, "3 completions")
      expect(emails.sort()).toEqual(["user1@ex.com", "user2@ex.com", "user3@ex.com"])
      expect(await q.addBulk([])).toEqual([])
    })

    it("addBulk with a bad item rejects and adds none", async () => {
      const q = open()
      await expect(q.addBulk([{ name: "a", data: 1 }, { name: "", data: 2 }])).rejects.toThrow(/item 1|name/)
      await expect(q.addBulk([{ name: "a", data: 1 }, { name: "b", data: { big: 1n } }])).rejects.toThrow(/BigInt|serializ|JSON/i)
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 })
    })

    it("store.get, store.list(state) and store.stats answer from the job views", async () => {
      const q = open()
      q.process("ok", async (job) => job.data)
      q.process("bad", async () => {
        throw new Error("nope")
      })
      const oks = await q.addBulk([1, 2, 3].map((n) => ({ name: "ok", data: n })))
      const bad = await q.add("bad", {})
      const later = await q.add("ok", 9, { delay: 60_000 })
      await until(async () => {
        const s = await q.stats()
        return s.completed === 3 && s.failed === 1 && s.delayed === 1
      }, "3 completed, 1 failed, 1 delayed")
      const completed = await q.store.list("completed")
      expect(completed.map((j) => j.id).sort(), JSON.stringify({ oks, all: await q.store.list(), stats: await q.stats() })).toEqual(oks.map((j) => j.id).sort())
      expect(completed.every((j) => j.state === "completed")).toBe(true)
      expect((await q.store.list("failed")).map((j) => j.id)).toEqual([bad.id])
      expect((await q.store.list("delayed")).map((j) => j.id)).toEqual([later.id])
      expect(await q.store.list("waiting")).toEqual([])
      expect((await q.store.list()).length).toBe(5)
      const stats = await q.stats()
      expect(Object.keys(stats).sort()).toEqual(STATS_KEYS)
      expect(stats).toEqual({ waiting: 0, active: 0, completed: 3, failed: 1, delayed: 1, paused: 0 })
      expect(await q.store.stats()).toEqual(stats)
      expect((await q.store.get(bad.id))?.error?.message).toBe("nope")
    })
  })

  describe("retry(jobId)", () => {
    it("rejects for an unknown id and for a job that is not failed", async () => {
      const q = open({ concurrency: 1 })
      await expect(q.retry("does-not-exist")).rejects.toThrow(/not found|does-not-exist/)
      const gate = deferred()
      q.process("slow", async () => {
        await gate.promise
        return 1
      })
      const pair = [await q.add("slow", {}), await q.add("slow", {})]
      const delayed = await q.add("slow", {}, { delay: 60_000 })
      // concurrency 1: one of the pair runs (and waits on the gate), the other waits
      let job!: Job
      let waiting!: Job
      await until(async () => {
        const states = await Promise.all(pair.map(async (j) => (await q.store.get(j.id))?.state))
        const a = states.indexOf("active")
        if (a < 0 || states[1 - a] !== "waiting") return false
        job = pair[a]!
        waiting = pair[1 - a]!
        return true
      }, "one job active and one waiting")
      await until(async () => (await q.store.get(delayed.id))?.state === "delayed", "the third job to be delayed")
      await expect(q.retry(job.id)).rejects.toThrow(/active/)
      await expect(q.retry(waiting.id)).rejects.toThrow(/waiting/)
      await expect(q.retry(delayed.id)).rejects.toThrow(/delayed/)
      await expect(q.retry(job.id)).rejects.toBeInstanceOf(Error)
      gate.resolve()
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete")
      await expect(q.retry(job.id)).rejects.toThrow(/completed/)
      await until(async () => (await q.stats()).completed === 2, "both to complete")
      expect((await q.store.get(job.id))?.attemptsMade).toBe(0)
    })

    it("re-runs a failed job with attemptsMade reset to 0", async () => {
      const q = open({ retry: { attempts: 1, delay: 10 } })
      let broken = true
      const runs: Array<number> = []
      q.process("flaky", async (job) => {
        runs.push(job.attemptsMade)
        if (broken) throw new Error("still broken")
        return "fixed"
      })
      const failed = deferred<Job>()
      q.on("failed", (job) => failed.resolve(job))
      const job = await q.add("flaky", {})
      const failedJob = await failed.promise
      expect(failedJob).toMatchObject({ id: job.id, state: "failed", attemptsMade: 1 })
      expect(runs).toEqual([0, 1])
      broken = false
      await q.retry(job.id)
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the retried job to complete")
      expect(runs).toEqual([0, 1, 0])
      expect(await q.store.get(job.id)).toMatchObject({ state: "completed", attemptsMade: 0, result: "fixed" })
      expect(await q.stats()).toMatchObject({ completed: 1, failed: 0 })
    })

    it("a manually retried job gets the full retry budget again", async () => {
      const q = open({ retry: { attempts: 2, delay: 5 } })
      const runs: Array<number> = []
      q.process("always-fails", async (job) => {
        runs.push(job.attemptsMade)
        throw new Error("fail")
      })
      const job = await q.add("always-fails", {})
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the job to fail")
      await q.retry(job.id)
      await until(async () => runs.length === 6 && (await q.store.get(job.id))?.state === "failed", "the job to fail again")
      expect(runs).toEqual([0, 1, 2, 0, 1, 2])
    })
  })

  describe("pause and resume", () => {
    it("pause() without await: nothing starts, waiting jobs are 'paused'; resume() runs them", async () => {
      const q = open()
      const events: Array<string> = []
      q.on("paused", () => events.push("paused"))
      q.on("resumed", () => events.push("resumed"))
      let started = 0
      q.process("task", async () => {
        started++
        return "done"
      })
      q.pause()
      await until(() => events.includes("paused"), "the paused event")
      const jobs = await Promise.all([1, 2, 3].map((n) => q.add("task", { n })))
      for (const job of jobs) expect(["waiting", "paused"]).toContain(job.state)
      await until(async () => (await q.stats()).paused === 3, "3 paused jobs in stats")
      await sleep(200)
      expect(started).toBe(0)
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 3 })
      for (const job of jobs) expect((await q.store.get(job.id))?.state).toBe("paused")
      expect((await q.store.list("paused")).length).toBe(3)
      q.resume()
      await until(async () => (await q.stats()).completed === 3, "3 completions after resume")
      expect(started).toBe(3)
      expect(events).toEqual(["paused", "resumed"])
      expect(await q.stats()).toEqual({ waiting: 0, active: 0, completed: 3, failed: 0, delayed: 0, paused: 0 })
    })

    it("pause lets running jobs finish and starts no new one", async () => {
      const q = open({ concurrency: 1 })
      const gate = deferred()
      const started: Array<number> = []
      q.process("task", async (job) => {
        started.push(job.data.n)
        if (started.length === 1) await gate.promise // the first job to start holds the only slot
        return job.data.n
      })
      const jobs = await q.addBulk([1, 2, 3].map((n) => ({ name: "task", data: { n } })))
      await until(() => started.length === 1, "a job to start")
      const first = jobs.find((j) => j.data.n === started[0])!
      await until(async () => (await q.store.get(first.id))?.state === "active", "the first job to be active")
      await q.pause()
      await until(async () => (await q.stats()).paused === 2, "2 paused jobs")
      gate.resolve()
      await until(async () => (await q.store.get(first.id))?.state === "completed", "the first job to complete")
      await sleep(150)
      expect(started).toHaveLength(1)
      expect(await q.stats()).toMatchObject({ completed: 1, paused: 2, waiting: 0, active: 0 })
      await q.resume()
      await until(async () => (await q.stats()).completed === 3, "all 3 to complete")
      expect([...started].sort()).toEqual([1, 2, 3])
    })

    it("a delayed job that comes due while paused waits for resume", async () => {
      const q = open()
      let started = 0
      q.process("task", async () => {
        started++
      })
      await q.pause()
      const job = await q.add("task", {}, { delay: 50 })
      expect(job.state).toBe("delayed")
      await until(async () => (await q.store.get(job.id))?.state === "paused", "the due job to be paused", 5_000)
      await sleep(100)
      expect(started).toBe(0)
      await q.resume()
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete")
    })
  })

  describe("events", () => {
    it("emits added, active, completed, failed with stats and store already reflecting each", async () => {
      const q = open()
      const { check, settled } = listenerChecks()
      const log: Array<string> = []
      const gate = deferred()
      let completedSeen = 0
      let failedSeen = 0
      q.on("added", (job: Job) => {
        log.push(`added:${job.data.kind}`)
        expect(["waiting", "paused"]).toContain(job.state)
        check(async () => {
          expect(await q.store.get(job.id)).toBeDefined()
        })
      })
      q.on("active", (job: Job) => {
        log.push(`active:${job.data.kind}`)
        expect(job.state).toBe("active")
        // handlers wait on `gate`, so the job cannot have moved on yet
        check(async () => {
          expect((await q.store.get(job.id))?.state).toBe("active")
          expect((await q.stats()).active).toBeGreaterThanOrEqual(1)
        })
      })
      q.on("completed", (job: Job, result: unknown) => {
        log.push(`completed:${job.data.kind}`)
        completedSeen++
        const atLeast = completedSeen
        expect(job.state).toBe("completed")
        expect(result).toEqual({ ok: job.data.kind })
        check(async () => {
          expect(await q.store.get(job.id)).toMatchObject({ state: "completed", result: { ok: job.data.kind } })
          expect((await q.stats()).completed).toBeGreaterThanOrEqual(atLeast)
        })
      })
      q.on("failed", (job: Job, error: Error) => {
        log.push(`failed:${job.data.kind}`)
        failedSeen++
        const atLeast = failedSeen
        expect(job.state).toBe("failed")
        expect(error).toBeInstanceOf(Error)
        expect(error.message).toBe("bad kind")
        check(async () => {
          expect(await q.store.get(job.id)).toMatchObject({ state: "failed", error: { message: "bad kind" } })
          expect((await q.stats()).failed).toBeGreaterThanOrEqual(atLeast)
        })
      })
      q.process("task", async (job) => {
        await gate.promise
        if (job.data.kind === "bad") throw new Error("bad kind")
        return { ok: job.data.kind }
      })
      await q.add("task", { kind: "good" })
      await q.add("task", { kind: "bad" })
      await until(() => log.filter((l) => l.startsWith("active")).length === 2, "both jobs active")
      await settled()
      gate.resolve()
      await until(() => completedSeen === 1 && failedSeen === 1, "one completion and one failure")
      await settled()
      expect(log.filter((l) => l.endsWith(":good"))).toEqual(["added:good", "active:good", "completed:good"])
      expect(log.filter((l) => l.endsWith(":bad"))).toEqual(["added:bad", "active:bad", "failed:bad"])
    })

    it("'added' listeners see the job in stats already", async () => {
      const q = open({ concurrency: 1 })
      const gate = deferred()
      q.process("x", async () => gate.promise)
      const { check, settled } = listenerChecks()
      let added = 0
      q.on("added", (job: Job) => {
        added++
        const atLeast = added
        check(async () => {
          const stats = await q.stats()
          expect(stats.waiting + stats.delayed + stats.active).toBeGreaterThanOrEqual(atLeast)
          expect((await q.store.get(job.id))?.id).toBe(job.id)
        })
      })
      await q.add("x", {})
      await q.add("x", {}, { delay: 60_000 })
      await until(() => added === 2, "two added events")
      await settled()
      gate.resolve()
    })

    it("paused and resumed listeners see the queue state already changed", async () => {
      const q = open({ concurrency: 1 })
      const { check, settled } = listenerChecks()
      const seen: Array<string> = []
      const gate = deferred()
      q.process("blocker", async () => gate.promise)
      const first = await q.add("blocker", {})
      const second = await q.add("blocker", {})
      await until(async () => (await q.store.get(first.id))?.state === "active", "the first job active")
      await until(async () => (await q.store.get(second.id))?.state === "waiting", "the second job waiting")
      q.on("paused", () => {
        seen.push("paused")
        check(async () => expect(await q.stats()).toMatchObject({ paused: 1, waiting: 0, active: 1 }))
      })
      q.on("resumed", () => {
        seen.push("resumed")
        check(async () => expect(await q.stats()).toMatchObject({ paused: 0, waiting: 1, active: 1 }))
      })
      q.pause()
      await until(() => seen.length === 1, "paused")
      await settled()
      q.resume()
      await until(() => seen.length === 2, "resumed")
      await settled()
      expect(seen).toEqual(["paused", "resumed"])
      gate.resolve()
      await until(async () => (await q.stats()).completed === 2, "both jobs to complete")
    })
  })

  describe("retry semantics", () => {
    it("exponential: attempts N = N retries, delays delay·2^(k-1) capped by maxDelay; failed once", async () => {
      const retrying: Array<[number, number, JobState]> = []
      const onRetry: Array<[number, number]> = []
      const onFailed: Array<[Job, Error]> = []
      const failedEvents: Array<[Job, Error]> = []
      const q = open({
        retry: { attempts: 3, backoff: "exponential", delay: 40, maxDelay: 100 },
        hooks: {
          onRetry: (_job, attempt, delay) => {
            onRetry.push([attempt, delay])
          },
          onFailed: (job, error) => {
            onFailed.push([job, error])
          }
        }
      })
      const runs: Array<{ at: number; attemptsMade: number; maxAttempts: number }> = []
      q.process("doomed", async (job) => {
        runs.push({ at: Date.now(), attemptsMade: job.attemptsMade, maxAttempts: job.maxAttempts })
        throw new Error(`attempt ${job.attemptsMade} failed`)
      })
      q.on("retrying", (job: Job, attempt: number, delay: number) => retrying.push([attempt, delay, job.state]))
      q.on("failed", (job: Job, error: Error) => failedEvents.push([job, error]))
      const job = await q.add("doomed", {})
      expect(job.maxAttempts).toBe(3)
      await until(() => failedEvents.length === 1 && onFailed.length === 1, "the final failure")
      await sleep(150) // no further run, no second `failed`
      expect(runs.map((r) => r.attemptsMade)).toEqual([0, 1, 2, 3])
      expect(runs.every((r) => r.maxAttempts === 3)).toBe(true)
      expect(retrying.map(([a, d]) => [a, d])).toEqual([
        [1, 40],
        [2, 80],
        [3, 100]
      ])
      for (const [, , state] of retrying) expect(["delayed", "waiting"]).toContain(state)
      expect(onRetry).toEqual([
        [1, 40],
        [2, 80],
        [3, 100]
      ])
      const expectedGaps = [40, 80, 100]
      for (let k = 1; k < runs.length; k++) expect(runs[k]!.at - runs[k - 1]!.at).toBeGreaterThanOrEqual(expectedGaps[k - 1]! - 2)
      expect(failedEvents).toHaveLength(1)
      expect(onFailed).toHaveLength(1)
      const [hookJob, hookError] = onFailed[0]!
      expect(hookJob).toMatchObject({ id: job.id, state: "failed", attemptsMade: 3, maxAttempts: 3 })
      expect(hookError).toBeInstanceOf(Error)
      expect(hookError.message).toBe("attempt 3 failed")
      expect(failedEvents[0]![0]).toMatchObject({ id: job.id, state: "failed" })
      expect(failedEvents[0]![1].message).toBe("attempt 3 failed")
      expect(await q.store.get(job.id)).toMatchObject({ state: "failed", attemptsMade: 3, error: { message: "attempt 3 failed" } })
      expect(await q.stats()).toMatchObject({ failed: 1, delayed: 0, waiting: 0, active: 0 })
    })

    it("fixed backoff waits `delay` before every retry", async () => {
      const q = open({ retry: { attempts: 2, backoff: "fixed", delay: 60 } })
      const runs: Array<number> = []
      const retrying: Array<[number, number]> = []
      q.on("retrying", (_job: Job, attempt: number, delay: number) => retrying.push([attempt, delay]))
      q.process("doomed", async () => {
        runs.push(Date.now())
        throw new Error("no")
      })
      const job = await q.add("doomed", {})
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the failure")
      expect(runs).toHaveLength(3)
      expect(retrying).toEqual([
        [1, 60],
        [2, 60]
      ])
      for (let k = 1; k < runs.length; k++) expect(runs[k]! - runs[k - 1]!).toBeGreaterThanOrEqual(58)
    })

    it("while waiting for a retry the job is delayed in stats and the store", async () => {
      const q = open({ retry: { attempts: 1, delay: 400 } })
      let runs = 0
      q.process("once-bad", async () => {
        if (runs++ === 0) throw new Error("first run fails")
        return "ok"
      })
      const retrying = deferred<Job>()
      q.on("retrying", (job: Job) => retrying.resolve(job))
      const job = await q.add("once-bad", {})
      const retryJob = await retrying.promise
      expect(retryJob.state).toBe("delayed")
      expect(retryJob.runAt).toBeGreaterThan(Date.now() - 50)
      expect(await q.store.get(job.id)).toMatchObject({ state: "delayed", error: { message: "first run fails" } })
      expect((await q.stats()).delayed).toBe(1)
      await until(async () => (await q.store.get(job.id))?.state === "completed", "completion after the retry")
      expect(await q.store.get(job.id)).toMatchObject({ state: "completed", attemptsMade: 1, result: "ok" })
      expect(await q.stats()).toMatchObject({ completed: 1, failed: 0, delayed: 0 })
    })

    it("a job that succeeds on a retry completes; onFailed never fires", async () => {
      let onFailed = 0
      const onComplete: Array<[Job, unknown]> = []
      const q = open({
        retry: { attempts: 3, backoff: "exponential", delay: 10 },
        hooks: {
          onFailed: () => {
            onFailed++
          },
          onComplete: (job, result) => {
            onComplete.push([job, result])
          }
        }
      })
      q.process("flaky", async (job) => {
        if (job.attemptsMade < 2) throw new Error("flaky")
        return { on: job.attemptsMade }
      })
      const job = await q.add("flaky", {})
      await until(() => onComplete.length === 1, "onComplete")
      expect(onComplete[0]![0]).toMatchObject({ id: job.id, state: "completed", attemptsMade: 2 })
      expect(onComplete[0]![1]).toEqual({ on: 2 })
      expect(onFailed).toBe(0)
    })

    it("no retry option means no retries", async () => {
      const q = open()
      let runs = 0
      let retrying = 0
      q.on("retrying", () => retrying++)
      q.process("doomed", async () => {
        runs++
        throw new Error("once")
      })
      const job = await q.add("doomed", {})
      expect(job.maxAttempts).toBe(0)
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the failure")
      await sleep(100)
      expect(runs).toBe(1)
      expect(retrying).toBe(0)
      expect(await q.store.get(job.id)).toMatchObject({ attemptsMade: 0, maxAttempts: 0 })
    })

    it("timeout: a handler that never settles fails its attempt with a timeout error", async () => {
      const q = open({ timeout: 100 })
      let aborted = false
      q.process("hangs", (_job, signal) => {
        signal.addEventListener("abort", () => {
          aborted = true
        })
        return new Promise(() => {})
      })
      q.process("quick", async () => "ok")
      const job = await q.add("hangs", {})
      const quick = await q.add("quick", {})
      await until(async () => (await q.store.get(job.id))?.state === "failed", "the timeout failure")
      expect((await q.store.get(job.id))?.error?.message).toMatch(/time/i)
      expect(aborted).toBe(true)
      await until(async () => (await q.store.get(quick.id))?.state === "completed", "the quick job")
    })
  })

  describe("scheduling", () => {
    /**
     * Checks a start order against the priority rule: higher first, FIFO among equals. The
     * rule is exact per log partition (DESIGN.md), so it is checked per partition, and for
     * the whole queue when the queue has one partition (memory, SQLite). Across the
     * partitions of one engine it is exact once they all hold the jobs (after a resume);
     * jobs still being read from the log at start-up can start in partition order.
     */
    const expectPriorityOrder = async (q: JobQueue, started: ReadonlyArray<Job>, added: ReadonlyArray<Job>) => {
      const expected = (jobs: ReadonlyArray<Job>) =>
        [...jobs].map((j, i) => ({ j, i })).sort((a, b) => b.j.priority - a.j.priority || a.i - b.i).map(({ j }) => j.data.label)
      const partitionOf = new Map<string, number>()
      let partitions = 1
      for (const job of added) {
        const replay = await replayQueue(q.log, q.name, { jobId: job.id })
        partitions = replay.partitions
        partitionOf.set(job.id, replay.timeline[0]!.partition)
      }
      for (let p = 0; p < partitions; p++) {
        const inP = (jobs: ReadonlyArray<Job>) => jobs.filter((j) => partitionOf.get(j.id) === p)
        expect(inP(started).map((j) => j.data.label), `start order in partition ${p}`).toEqual(expected(inP(added)))
      }
      if (partitions === 1) expect(started.map((j) => j.data.label)).toEqual(expected(added))
    }

    it("higher priority first, FIFO among equals (jobs added while paused)", async () => {
      const q = open({ concurrency: 1 })
      const order: Array<Job> = []
      q.process("p", async (job) => {
        order.push(job)
      })
      await q.pause()
      const spec: Array<[string, number]> = [
        ["a0", 0],
        ["b5", 5],
        ["c10", 10],
        ["d5", 5],
        ["e0", 0],
        ["f10", 10],
        ["g-1", -1],
        ["h5", 5]
      ]
      const added: Array<Job> = []
      for (const [label, priority] of spec) added.push(await q.add("p", { label }, { priority }))
      await until(async () => (await q.stats()).paused === spec.length, "all jobs paused")
      await q.resume()
      await until(async () => (await q.stats()).completed === spec.length, "all jobs to run")
      await expectPriorityOrder(q, order, added)
      // One engine owns every partition, and the resume holds starts until all have seen it.
      expect(order.map((j) => j.data.label)).toEqual(["c10", "f10", "b5", "d5", "h5", "a0", "e0", "g-1"])
    })

    it("higher priority first, FIFO among equals (jobs added before process is called)", async () => {
      const q = open({ concurrency: 1 })
      const order: Array<Job> = []
      const spec: Array<[string, number]> = [
        ["a1", 1],
        ["b3", 3],
        ["c1", 1],
        ["d3", 3],
        ["e2", 2]
      ]
      const added = await q.addBulk(spec.map(([label, priority]) => ({ name: "p", data: { label }, opts: { priority } })))
      q.process("p", async (job) => {
        order.push(job)
      })
      await until(async () => (await q.stats()).completed === spec.length, "all jobs to run")
      await expectPriorityOrder(q, order, added)
    })

    it("delayed jobs do not start before their delay and count as delayed meanwhile", async () => {
      const q = open()
      const starts = new Map<string, number>()
      q.process("t", async (job) => {
        starts.set(job.data.label, Date.now())
      })
      const soon = await q.add("t", { label: "soon" })
      const late = await q.add("t", { label: "late" }, { delay: 300 })
      const later = await q.add("t", { label: "later" }, { delay: 500 })
      expect(late.state).toBe("delayed")
      expect(later.runAt - later.createdAt).toBe(500)
      await until(() => starts.has("soon"), "the immediate job")
      await until(async () => (await q.store.get(later.id)) !== undefined, "the delayed jobs to reach the store")
      if (!starts.has("late")) {
        expect((await q.stats()).delayed).toBeGreaterThanOrEqual(1)
        expect((await q.store.get(late.id))?.state).toBe("delayed")
      }
      if (!starts.has("later")) expect((await q.store.get(later.id))?.state).toBe("delayed")
      await until(() => starts.size === 3, "all three jobs", 5_000)
      expect(starts.get("late")!).toBeGreaterThanOrEqual(late.runAt)
      expect(starts.get("later")!).toBeGreaterThanOrEqual(later.runAt)
      expect(starts.get("soon")!).toBeLessThan(late.runAt)
      await until(async () => (await q.stats()).completed === 3, "3 completions")
      expect((await q.stats()).delayed).toBe(0)
      expect((await q.store.get(soon.id))?.state).toBe("completed")
    })

    it("the rate limiter: at most max starts in any window of duration ms", async () => {
      const q = open({ concurrency: 10, limiter: { max: 3, duration: 300 } })
      const entered: Array<number> = []
      q.process("call", async () => {
        entered.push(Date.now())
      })
      const jobs = await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: "call", data: { i } })))
      await until(async () => (await q.stats()).completed === 10, "10 completions", 10_000)
      // when each job started, as the engine recorded it (JobStarted)
      const starts: Array<number> = []
      for (const job of jobs) {
        const { timeline } = await replayQueue(q.log, q.name, { jobId: job.id })
        for (const e of timeline) if (e.envelope.body._tag === "JobStarted") starts.push(e.envelope.time)
      }
      expect(starts).toHaveLength(10)
      starts.sort((a, b) => a - b)
      // sliding window: any 4 consecutive starts span at least `duration`
      for (let i = 0; i + 3 < starts.length; i++)
        expect(starts[i + 3]! - starts[i]!, `starts ${i}..${i + 3} within one 300 ms window: ${starts.map((t) => t - starts[0]!)}`).toBeGreaterThanOrEqual(298)
      expect(starts[2]! - starts[0]!).toBeLessThan(200) // the first `max` start at once
      expect(starts[9]! - starts[0]!).toBeGreaterThanOrEqual(898)
      // (handlers are entered some ms after their start is decided, so `entered` is only a sanity check)
      expect(entered).toHaveLength(10)
    })

    it("never more than `concurrency` handlers at once", async () => {
      const q = open({ concurrency: 3 })
      let running = 0
      let peak = 0
      q.process("work", async () => {
        running++
        peak = Math.max(peak, running)
        await sleep(25)
        running--
      })
      await q.addBulk(Array.from({ length: 15 }, (_, i) => ({ name: "work", data: i })))
      await until(async () => (await q.stats()).completed === 15, "15 completions")
      expect(peak).toBe(3)
      expect(running).toBe(0)
    })

    it("concurrency defaults to 5", async () => {
      const q = open()
      let running = 0
      let peak = 0
      q.process("work", async () => {
        running++
        peak = Math.max(peak, running)
        await sleep(40)
        running--
      })
      await q.addBulk(Array.from({ length: 15 }, (_, i) => ({ name: "work", data: i })))
      await until(async () => (await q.stats()).completed === 15, "15 completions")
      expect(peak).toBe(5)
    })
  })

  describe("misbehaving handlers and hooks", () => {
    it("non-Error throws, sync throws and unserializable results fail the job clearly; the engine goes on", async () => {
      const q = open({ concurrency: 2 })
      const cycle: Record<string, unknown> = {}
      cycle.me = cycle
      q.process("throws-string", async () => {
        throw "plain string failure"
      })
      q.process("throws-undefined", async () => {
        throw undefined
      })
      q.process("throws-object", async () => {
        throw { code: 42, reason: "object failure" }
      })
      q.process("throws-sync", () => {
        throw new Error("synchronous failure")
      })
      q.process("returns-bigint", async () => ({ n: 12n }))
      q.process("returns-cycle", async () => cycle)
      q.process("rejects-null", () => Promise.reject(null))
      q.process("fine", async (job) => ({ ok: job.data.i }))
      const names = ["throws-string", "throws-undefined", "throws-object", "throws-sync", "returns-bigint", "returns-cycle", "rejects-null"]
      const failedEvents: Array<[string, Error]> = []
      q.on("failed", (job: Job, error: Error) => failedEvents.push([job.name, error]))
      const bad = new Map<string, Job>()
      for (const name of names) {
        bad.set(name, await q.add(name, {}))
        await q.add("fine", { i: bad.size })
      }
      await until(async () => {
        const s = await q.stats()
        return s.failed === names.length && s.completed === names.length
      }, "every bad job failed and every fine job completed")
      const messages = new Map<string, string>()
      for (const [name, job] of bad) {
        const view = await q.store.get(job.id)
        expect(view?.state, name).toBe("failed")
        expect(typeof view?.error?.message, name).toBe("string")
        expect(view!.error!.message.length, name).toBeGreaterThan(0)
        messages.set(name, view!.error!.message)
      }
      expect(messages.get("throws-string")).toContain("plain string failure")
      expect(messages.get("throws-undefined")).toMatch(/undefined/)
      expect(messages.get("throws-object")).toMatch(/42|object failure/)
      expect(messages.get("throws-sync")).toBe("synchronous failure")
      expect(messages.get("returns-bigint")).toMatch(/BigInt|serializ|JSON/i)
      expect(messages.get("returns-cycle")).toMatch(/circular|cycle|serializ|JSON/i)
      expect(messages.get("rejects-null")).toMatch(/null/)
      expect(failedEvents.map(([n]) => n).sort()).toEqual([...names].sort())
      for (const [, error] of failedEvents) expect(error).toBeInstanceOf(Error)
    })

    it("throwing or rejecting hooks do not break the engine; the queue emits 'error'", async () => {
      const errors: Array<unknown> = []
      const q = open({
        retry: { attempts: 1, delay: 5 },
        hooks: {
          onComplete: () => {
            throw new Error("onComplete exploded")
          },
          onFailed: async () => {
            throw new Error("onFailed exploded")
          },
          onRetry: () => {
            throw new Error("onRetry exploded")
          }
        }
      })
      q.on("error", (e: unknown) => errors.push(e))
      q.process("ok", async () => "fine")
      q.process("bad", async () => {
        throw new Error("handler failed")
      })
      const oks = await q.addBulk(Array.from({ length: 4 }, (_, i) => ({ name: "ok", data: i })))
      const bad = await q.add("bad", {})
      await until(async () => {
        const s = await q.stats()
        return s.completed === 4 && s.failed === 1
      }, "4 completions and 1 failure despite the hooks")
      await until(() => errors.length >= 6, "an error per hook failure")
      const messages = errors.map((e) => (e instanceof Error ? e.message : String(e)))
      expect(messages.filter((m) => m.includes("onComplete exploded"))).toHaveLength(4)
      expect(messages.filter((m) => m.includes("onRetry exploded"))).toHaveLength(1)
      expect(messages.filter((m) => m.includes("onFailed exploded"))).toHaveLength(1)
      expect((await q.store.get(bad.id))?.attemptsMade).toBe(1)
      for (const job of oks) expect((await q.store.get(job.id))?.state).toBe("completed")
      // and the engine still takes new work
      const after = await q.add("ok", "after")
      await until(async () => (await q.store.get(after.id))?.state === "completed", "a job after the hook failures")
    })

    it("hooks receive the job and result/error as the seed describes", async () => {
      const completed: Array<[Job, unknown]> = []
      const failed: Array<[Job, Error]> = []
      const q = open({
        hooks: {
          onComplete: async (job, result) => {
            completed.push([job, result])
          },
          onFailed: async (job, error) => {
            failed.push([job, error])
          }
        }
      })
      q.process("send", async (job) => {
        if (job.data.fail) throw new Error("smtp down")
        return { sent: job.data.to }
      })
      const good = await q.add("send", { to: "a@b.c" })
      const bad = await q.add("send", { to: "x@y.z", fail: true })
      await until(() => completed.length === 1 && failed.length === 1, "both hooks")
      expect(completed[0]![0]).toMatchObject({ id: good.id, state: "completed", data: { to: "a@b.c" } })
      expect(completed[0]![1]).toEqual({ sent: "a@b.c" })
      expect(failed[0]![0]).toMatchObject({ id: bad.id, state: "failed", data: { to: "x@y.z", fail: true } })
      expect(failed[0]![1]).toBeInstanceOf(Error)
      expect(failed[0]![1].message).toBe("smtp down")
    })
  })

  describe("custom store", () => {
    /** The seed's `class PostgresQueueStore implements QueueStore`, on a Map. */
    class MapQueueStore implements QueueStore {
      readonly jobs = new Map<string, Job>()
      readonly calls = { enqueue: 0, dequeue: 0, update: 0, get: 0, list: 0, stats: 0 }
      readonly transitions: Array<[string, JobState]> = []
      async enqueue(job: Job) {
        this.calls.enqueue++
        this.transitions.push([job.id, job.state])
        this.jobs.set(job.id, structuredClone(job))
      }
      async dequeue(): Promise<Job | undefined> {
        this.calls.dequeue++
        return undefined
      }
      async update(job: Job) {
        this.calls.update++
        this.transitions.push([job.id, job.state])
        this.jobs.set(job.id, structuredClone(job))
      }
      async get(id: string) {
        this.calls.get++
        return this.jobs.get(id)
      }
      async list(state?: JobState) {
        this.calls.list++
        return [...this.jobs.values()].filter((j) => state === undefined || j.state === state)
      }
      async stats(): Promise<QueueStats> {
        this.calls.stats++
        const s: QueueStats = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 }
        for (const j of this.jobs.values()) s[j.state]++
        return s
      }
    }

    it("is fed by the engine (enqueue on add, update on each transition), answers queue.store, and is never dequeued", async () => {
      const store = new MapQueueStore()
      const q = open({ store, retry: { attempts: 1, delay: 10 } })
      expect(q.store).toBe(store)
      let runs = 0
      q.process("task", async (job) => {
        runs++
        if (job.data.flaky && job.attemptsMade === 0) throw new Error("first try fails")
        return { done: job.data.n }
      })
      const a = await q.add("task", { n: 1 })
      const b = await q.add("task", { n: 2, flaky: true })
      await until(async () => (await q.store.get(a.id))?.state === "completed" && (await q.store.get(b.id))?.state === "completed", "both jobs completed in the custom store")
      expect(runs).toBe(3)
      expect(store.calls.enqueue).toBe(2)
      expect(store.calls.dequeue).toBe(0)
      expect(store.transitions.filter(([id]) => id === a.id).map(([, s]) => s)).toEqual(["waiting", "active", "completed"])
      const bStates = store.transitions.filter(([id]) => id === b.id).map(([, s]) => s)
      expect(bStates[0]).toBe("waiting")
      expect(bStates).toContain("delayed")
      expect(bStates.filter((s) => s === "active")).toHaveLength(2)
      expect(bStates.at(-1)).toBe("completed")
      expect(await q.store.get(a.id)).toMatchObject({ state: "completed", result: { done: 1 }, data: { n: 1 } })
      expect(await q.store.get(b.id)).toMatchObject({ state: "completed", attemptsMade: 1 })
      expect(await q.store.stats()).toMatchObject({ completed: 2 })
      expect((await q.store.list("completed")).length).toBe(2)
      expect(await q.stats()).toMatchObject({ completed: 2 })
    })

    it("listeners see the custom store already updated", async () => {
      const store = new MapQueueStore()
      const q = open({ store })
      const { check, settled } = listenerChecks()
      q.on("completed", (job: Job) => {
        check(async () => expect((await store.get(job.id))?.state).toBe("completed"))
      })
      q.process("task", async () => "r")
      await q.addBulk([{ name: "task", data: 1 }, { name: "task", data: 2 }])
      await until(async () => (await q.stats()).completed === 2, "2 completions")
      await settled()
    })
  })

  describe("producer and engine in two JobQueues on one log", () => {
    it("a producer that never calls process sees the engine's completions", async () => {
      const name = uniqueQueue("split")
      const log = backend.freshLog()
      const producer = open({}, name, log)
      const engine = open({ concurrency: 2 }, name, log)
      const handled: Array<number> = []
      engine.process("work", async (job) => {
        handled.push(job.data.n)
        return { n: job.data.n * 10 }
      })
      const producerCompleted: Array<string> = []
      producer.on("completed", (job: Job) => producerCompleted.push(job.id))
      const jobs = await producer.addBulk(Array.from({ length: 5 }, (_, n) => ({ name: "work", data: { n } })))
      const single = await producer.add("work", { n: 5 })
      await until(async () => (await producer.stats()).completed === 6, "the producer to see 6 completions")
      expect(handled.sort()).toEqual([0, 1, 2, 3, 4, 5])
      for (const job of [...jobs, single]) {
        expect(await producer.store.get(job.id)).toMatchObject({ state: "completed", result: { n: job.data.n * 10 } })
      }
      await until(() => producerCompleted.length === 6, "completed events on the producer")
      expect(await engine.stats()).toEqual(await producer.stats())
    })

    it("a producer's pause and retry reach the engine", async () => {
      const name = uniqueQueue("split")
      const log = backend.freshLog()
      const producer = open({}, name, log)
      const engine = open({}, name, log)
      let broken = true
      let runs = 0
      engine.process("work", async () => {
        runs++
        if (broken) throw new Error("broken")
        return "ok"
      })
      const job = await producer.add("work", {})
      await until(async () => (await producer.store.get(job.id))?.state === "failed", "the producer to see the failure")
      broken = false
      await producer.pause()
      await producer.retry(job.id)
      await until(async () => (await producer.store.get(job.id))?.state === "paused", "the retried job to be paused")
      await sleep(100)
      expect(runs).toBe(1)
      await producer.resume()
      await until(async () => (await producer.store.get(job.id))?.state === "completed", "the retried job to complete")
      expect(runs).toBe(2)
    })
  })

  describe("close", () => {
    it("close() waits for running handlers, and the queue refuses work afterwards", async () => {
      const q = new JobQueue(uniqueQueue(), { log: backend.freshLog() })
      try {
        let finished = false
        // held until the test has seen it active (a fixed sleep could end between two polls)
        const gate = deferred()
        q.process("slow", async () => {
          await gate.promise
          await sleep(50)
          finished = true
        })
        const job = await q.add("slow", {})
        await until(async () => (await q.store.get(job.id))?.state === "active", "the job to start")
        const closing = q.close()
        gate.resolve()
        await closing
        expect(finished).toBe(true)
        await expect(q.add("slow", {})).rejects.toThrow(/closed/)
        await expect(q.stats()).rejects.toThrow(/closed/)
      } finally {
        await q.close()
      }
    })
  })
})
