/**
 * Reliability on the local backends (memory and a SQLite file): per-job timeouts, close()
 * with handlers that ignore their AbortSignal, misbehaving handlers (unhandled rejections
 * included), and hostile input through `add` and straight onto the commands topic.
 * Disk faults need a small filesystem: see disk-faults.int.test.ts.
 */
import { ManagedRuntime } from "effect"
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import fc from "fast-check"
import { afterEach, describe, expect, it } from "vitest"
import { InvalidOptionError, type Job, type JobOptions, JobQueue, QueueLogError, replayQueue } from "../src/index.ts"
import { engineGroupOf, EventLog, type EventLogService, topicsOf } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { run } from "../src/run.ts"
import { memoryBackend, sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { queueOpener, sleep } from "./fixtures/helpers.ts"

/** fast-check seed of this file (set FC_SEED to replay a failure); runs are in the test names. */
const FC_SEED = Number(process.env.FC_SEED ?? 424_242)
const ADD_RUNS = 300
const RAW_RUNS = 300

/** Everything own-enumerable or not on Object.prototype, to see that nothing was added. */
const prototypeShape = () => Object.getOwnPropertyNames(Object.prototype).sort().join(",")

/** Hostile keys: prototype pollution attempts and names that shadow Object methods. */
const hostileKey = fc.oneof(fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf"), fc.string({ maxLength: 8 }))

/** Values that JSON can or cannot carry, with hostile keys, huge strings and deep nesting. */
const hostileValue = fc.oneof(
  { weight: 6, arbitrary: fc.anything({ key: hostileKey, maxDepth: 4, withBigInt: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withObjectString: true, withTypedArray: true, withSparseArray: true, withBoxedValues: true }) },
  { weight: 1, arbitrary: fc.integer({ min: 400_000, max: 1_200_000 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 400, max: 3_000 }).map((depth) => nest(depth)) },
  { weight: 1, arbitrary: fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}')) }
)

/** A value nested `depth` levels deep (arrays and objects alternating). */
function nest(depth: number): unknown {
  let v: unknown = "core"
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v }
  return v
}

/** The log service of a URL (shared with the queues of this process that use it). */
const openLog = async (url: string) => {
  const runtime = ManagedRuntime.make(layerFromUrl(url))
  const log = await runtime.runPromise(EventLog)
  return { log, dispose: () => runtime.dispose() }
}

const readAll = async (log: EventLogService, topic: string) => {
  const end = await run(log.endOffset(topic, 0))
  return end === 0 ? [] : run(log.read(topic, 0, 0, end))
}

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

  describe("misbehaving handlers (beyond the seed suite)", () => {
    it("a promise rejected and not awaited inside a handler fails that job's attempt (retry policy applies); other jobs are untouched", async () => {
      const q = open({ retry: { attempts: 1, delay: 5 }, concurrency: 3 })
      let runs = 0
      q.process("leaks", async () => {
        runs++
        void Promise.reject(new Error("lost in the background"))
        return "looked fine"
      })
      q.process("leaks-later", async () => {
        await sleep(5)
        void (async () => {
          await sleep(1)
          throw new TypeError("thrown in a detached async function")
        })()
        await sleep(20)
        return "also looked fine"
      })
      q.process("fine", async () => "fine")
      const failures: Array<Error> = []
      q.on("failed", (_job: Job, error: Error) => failures.push(error))
      const leaky = await q.add("leaks", {})
      const later = await q.add("leaks-later", {})
      const fine = await Promise.all([1, 2, 3].map((i) => q.add("fine", { i })))
      await until(async () => (await q.stats()).failed === 2 && (await q.stats()).completed === 3, "two leaky jobs failed, three fine ones completed")
      expect(runs).toBe(2) // the first run and one retry
      const leakyView = await q.store.get(leaky.id)
      expect(leakyView?.error?.name).toBe("UnhandledRejectionError")
      expect(leakyView?.error?.message).toBe(`unhandled rejection in the handler of job ${leaky.id} ('leaks') on queue '${q.name}': Error: lost in the background`)
      expect((await q.store.get(later.id))?.error?.message).toMatch(/TypeError: thrown in a detached async function/)
      for (const f of fine) expect((await q.store.get(f.id))?.state).toBe("completed")
      for (const e of failures) expect(e.name).toBe("UnhandledRejectionError")
    })

    it("an unhandled rejection from a handler after its job completed is reported as 'error', and changes nothing", async () => {
      const q = open()
      const errors: Array<Error> = []
      q.on("error", (e: Error) => errors.push(e))
      q.process("late", async () => {
        setTimeout(() => void Promise.reject(new Error("too late")), 30)
        return "done"
      })
      const job = await q.add("late", {})
      await until(async () => (await q.store.get(job.id))?.state === "completed", "the job to complete")
      await until(() => errors.length === 1, "the late rejection to be reported")
      expect(errors[0]!.message).toMatch(/too late.*after the attempt had ended/)
      expect((await q.store.get(job.id))?.state).toBe("completed")
    })

    it("huge error messages are cut to fit the log; errors with throwing getters and deep or huge results fail clearly", async () => {
      const q = open({ concurrency: 4 })
      q.process("huge-message", async () => {
        throw new Error("m".repeat(3_000_000))
      })
      q.process("hostile-error", async () => {
        const e = new Error("x")
        Object.defineProperty(e, "message", { get: () => { throw new Error("no message for you") } })
        throw e
      })
      q.process("deep-result", async () => nest(2_000))
      q.process("huge-result", async () => ({ s: "r".repeat(700_000) }))
      const jobs = await Promise.all(["huge-message", "hostile-error", "deep-result", "huge-result"].map((n) => q.add(n, {})))
      await until(async () => (await q.stats()).failed === 4, "all four to fail")
      const [huge, hostile, deep, big] = await Promise.all(jobs.map((j) => q.store.get(j.id)))
      expect(huge?.error?.message.length).toBeLessThan(20_000)
      expect(huge?.error?.message).toMatch(/\(3000000 characters, cut\)$/)
      expect(hostile?.error?.message).toMatch(/cannot be read/)
      expect(deep?.error?.message).toMatch(/nested deeper than 512 levels/)
      expect(big?.error?.message).toMatch(/bytes of JSON; the limit is 524288/)
      // every event decodes when read back (a record over 1 MiB would not)
      const replayed = await replayQueue(q.log, q.name, { verify: true })
      expect(replayed.undecodable).toEqual([])
      expect(replayed.verify?.ok).toBe(true)
      expect(replayed.stats.failed).toBe(4)
    })
  })

  describe("hostile input", () => {
    it(`queue.add with ${ADD_RUNS} generated (name, data, opts): each rejects with a clear error or is stored as JSON carries it; nothing pollutes Object.prototype`, async () => {
      const shape = prototypeShape()
      const q = open({ concurrency: 4 })
      q.process("ok", async (job) => ({ got: typeof job.data }))
      const accepted: Array<{ job: Job; expected: unknown }> = []
      const refusals = new Map<string, number>()
      const name = fc.oneof({ weight: 4, arbitrary: fc.constant("ok") }, { weight: 1, arbitrary: hostileValue })
      const opts = fc.oneof(
        fc.constant(undefined),
        fc.record({ priority: fc.oneof(fc.integer(), hostileValue), delay: fc.constantFrom(0, -1, Number.NaN), timeout: fc.oneof(fc.constant(1_000), hostileValue) }, { requiredKeys: [] }),
        fc.record({ metadata: hostileValue, jobId: fc.oneof(fc.uuid(), hostileValue) }, { requiredKeys: [] }),
        hostileValue
      )
      await fc.assert(
        fc.asyncProperty(name, hostileValue, opts, async (n, data, o) => {
          let job: Job | undefined
          try {
            job = await q.add(n as string, data, o as JobOptions)
          } catch (e) {
            expect(e).toBeInstanceOf(InvalidOptionError)
            expect((e as Error).message.length).toBeGreaterThan(10)
            const kind = (e as Error).message.replace(/\(got .*$|\(known: .*$/s, "").replace(/'[^']*'/g, "'…'").replace(/\d+/g, "N").slice(0, 40).trim()
            refusals.set(kind, (refusals.get(kind) ?? 0) + 1)
            return
          }
          expect(job.name).toBe(n)
          if (job.state !== "delayed") accepted.push({ job, expected: JSON.parse(JSON.stringify(data ?? null)) })
        }),
        { numRuns: ADD_RUNS, seed: FC_SEED }
      )
      expect(prototypeShape()).toBe(shape)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(accepted.length).toBeGreaterThan(ADD_RUNS / 10)
      const settled = async () => {
        const s = await q.stats()
        return s.completed + s.failed
      }
      await until(async () => (await settled()) >= new Set(accepted.map((a) => a.job.id)).size, "every accepted job to settle", 30_000)
      for (const { job, expected } of accepted) {
        const view = await q.store.get(job.id)
        // jobs named other than 'ok' have no handler: they fail saying so
        expect(view?.state, job.id).toBe(job.name === "ok" ? "completed" : "failed")
        if (job.name !== "ok") expect(view?.error?.message).toMatch(/no handler registered for job name/)
        expect(view?.data).toEqual(expected)
      }
      const replayed = await replayQueue(q.log, q.name, { verify: true })
      expect(replayed.undecodable).toEqual([])
      expect(replayed.verify?.ok).toBe(true)
      expect(prototypeShape()).toBe(shape)
      console.log(`[hostile add ${backend.name}] ${ADD_RUNS} generated adds: ${accepted.length} accepted and completed, ${ADD_RUNS - accepted.length} refused or delayed; refusals: ${JSON.stringify(Object.fromEntries(refusals))}`)
    }, 120_000)

    it(`${RAW_RUNS} generated records written straight onto the commands topic: each bad one is dead-lettered with a reason, existing jobs are unchanged, the engine goes on`, async () => {
      const shape = prototypeShape()
      const q = open({ retry: { attempts: 0 } })
      q.process("ok", async (job) => {
        if (job.data?.fail === true) throw new Error("planned failure")
        return "ok"
      })
      // existing jobs in every settled state: completed, failed, and delayed far ahead
      const added = new Set<string>()
      q.on("added", (job) => void added.add(job.id))
      const done = await q.add("ok", { i: 1 })
      const failed = await q.add("ok", { fail: true })
      const delayed = await q.add("ok", { i: 2 }, { delay: 3_600_000 })
      await until(async () => (await q.stats()).completed === 1 && (await q.stats()).failed === 1, "the existing jobs to settle")
      // the delayed job as the engine decided it (JobAdded read), not as its add left it pending
      await until(() => added.has(delayed.id), "the delayed job's JobAdded to be read")
      const before = await Promise.all([done, failed, delayed].map((j) => q.store.get(j.id)))
      const ids = [done.id, failed.id, delayed.id]

      const { log, dispose } = await openLog(q.log)
      try {
        const topics = topicsOf(q.name)
        const base = { v: 1, queue: q.name, jobId: done.id, time: Date.now(), body: { _tag: "AddJob", name: "ok", data: {}, priority: 0, delay: 0 } }
        // a mutated envelope: one field (or the body) replaced or dropped. Existing ids only get
        // AddJob bodies (idempotent when well-formed), RetryJob goes to an unknown id.
        const field = fc.constantFrom("v", "queue", "jobId", "time", "body", "body._tag", "body.name", "body.data", "body.priority", "body.delay", "body.metadata", "body.timeout")
        const mutated = fc.tuple(field, fc.oneof(hostileValue, fc.constant(undefined)), fc.constantFrom(...ids, "not-a-job")).map(([path, value, jobId]) => {
          const envelope = JSON.parse(JSON.stringify({ ...base, jobId, body: { ...base.body, _tag: jobId === "not-a-job" ? "RetryJob" : "AddJob" } }))
          const [head, tail] = path.split(".")
          const target = tail === undefined ? envelope : envelope[head!]
          Object.defineProperty(target, tail ?? head!, { value, enumerable: true, configurable: true, writable: true })
          try {
            return JSON.stringify(envelope) ?? "undefined"
          } catch (e) {
            return `{"unserializable": ${JSON.stringify(String(e))}`
          }
        })
        const raw = fc.oneof(
          { weight: 5, arbitrary: mutated },
          { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
          { weight: 1, arbitrary: fc.json() },
          { weight: 1, arbitrary: fc.constant(`{"v":1,"queue":"${q.name}","jobId":"${done.id}","time":1,"body":{"_tag":"AddJob","name":"ok","data":${JSON.stringify(nest(600))},"priority":0,"delay":0}}`) },
          { weight: 1, arbitrary: fc.constant(`{"__proto__":{"polluted":true},"v":1,"queue":"${q.name}","jobId":"p","time":1,"body":{"__proto__":{"polluted":true},"_tag":"RetryJob"}}`) },
          { weight: 1, arbitrary: fc.constant(`{"v":1,"queue":"${q.name}","jobId":"${delayed.id}","time":1,"body":{"_tag":"AddJob","name":"ok","data":{},"priority":0,"delay":0,"metadata":{"__proto__":{"polluted":true}}}}`) }
        )
        const records = fc.sample(raw, { numRuns: RAW_RUNS, seed: FC_SEED })
        const start = await run(log.endOffset(topics.commands, 0))
        await run(log.append(topics.commands, records.map((value) => ({ key: null, value }))))
        const end = start + records.length
        await until(async () => (await run(log.committedOffset(engineGroupOf(q.name), topics.commands, 0))) >= end, "the engine to consume every record", 30_000)

        const letters = (await readAll(log, topics.deadLetter)).map((r) => JSON.parse(r.value) as { reason: string; offset: number; raw: string })
        const lettered = new Map(letters.map((l) => [l.offset, l]))
        for (const l of letters) expect(l.reason.length, JSON.stringify(l).slice(0, 300)).toBeGreaterThan(5)
        // every record is either dead-lettered or a well-formed command for this queue
        const events = (await readAll(log, topics.events)).map((r) => JSON.parse(r.value) as { jobId: string | null; body: { _tag: string } })
        let acceptedCount = 0
        for (let i = 0; i < records.length; i++) {
          if (lettered.has(start + i)) continue
          acceptedCount++
          const envelope = JSON.parse(records[i]!) as { queue: string; body: { _tag: string } }
          expect(envelope.queue, records[i]!.slice(0, 200)).toBe(q.name)
          expect(["AddJob", "RetryJob", "PauseQueue", "ResumeQueue"]).toContain(envelope.body._tag)
        }
        // no rejected command changed an existing job (idempotent adds of their ids changed nothing either)
        const after = await Promise.all([done, failed, delayed].map((j) => q.store.get(j.id)))
        expect(after).toEqual(before)
        for (const id of ids) expect(events.filter((e) => e.jobId === id && e.body._tag === "JobAdded")).toHaveLength(1)
        expect(prototypeShape()).toBe(shape)
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()

        // the engine is alive: a new job runs (resume first, in case a generated PauseQueue was valid)
        await q.resume()
        const canary = await q.add("ok", { canary: true })
        await until(async () => (await q.store.get(canary.id))?.state === "completed", "a job added after the barrage")
        const replayed = await replayQueue(q.log, q.name, { verify: true })
        expect(replayed.undecodable).toEqual([])
        expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 3))).toBe(true)
        const reasons = new Map<string, number>()
        for (const l of letters) {
          const first = l.reason.split("\n")[0]!
          const kind = first.startsWith("not JSON") ? "not JSON" : first.startsWith("record of") ? "too big" : first.includes("readonly v: 1") ? "schema mismatch" : first.replace(/'[^']*'/g, "'…'").slice(0, 40)
          reasons.set(kind, (reasons.get(kind) ?? 0) + 1)
        }
        console.log(`[hostile raw ${backend.name}] ${records.length} raw records: ${letters.length} dead-lettered, ${acceptedCount} well-formed; reasons: ${JSON.stringify(Object.fromEntries(reasons))}`)
      } finally {
        await dispose()
      }
    }, 120_000)

    // Schema itself threw on such JSON (printing a value with `toString: null`): a reader of the
    // events topic must report the record, not throw out of its loop.
    it("an event that Schema cannot even print, written onto the events topic: readers report it, the engine and stats go on", async () => {
      const q = open()
      q.process("ok", async () => "ok")
      await q.add("ok", { i: 1 })
      await until(async () => (await q.stats()).completed === 1, "the first job to complete")
      const { log, dispose } = await openLog(q.log)
      try {
        const topic = topicsOf(q.name).events
        const hostile = [
          `{"v":{"toString":null},"queue":"${q.name}","jobId":null,"time":0,"seq":0,"body":{"_tag":"QueuePaused"}}`,
          `{"v":1,"queue":"${q.name}","jobId":null,"time":0,"seq":0,"body":{"_tag":{"toString":null}}}`,
          `{"v":1,"queue":"${q.name}","jobId":"x","time":0,"seq":1,"body":{"_tag":{"toString":null}}}`
        ]
        await run(log.append(topic, hostile.map((value) => ({ key: null, value, partition: 0 }))))
        const second = await q.add("ok", { i: 2 })
        await expect(q.waitFor(second.id, { timeoutMs: 20_000 })).resolves.toBe("ok")
        expect((await q.stats()).completed).toBe(2)
        const replayed = await replayQueue(q.log, q.name)
        expect(replayed.undecodable.map((u) => u.reason)).toEqual(hostile.map(() => expect.stringMatching(/schema|Expected/)))
        expect(replayed.stats.completed).toBe(2)
      } finally {
        await dispose()
      }
    }, 60_000)
  })
})

describe("unhandled rejections in an engine process of its own (no test runner listening)", () => {
  const fixture = join(import.meta.dirname, "fixtures", "rejecting-engine.ts")
  const runFixture = (mode: string) =>
    spawnSync(process.execPath, ["--import", "tsx", fixture, mode], { cwd: join(import.meta.dirname, ".."), encoding: "utf8", timeout: 30_000 })

  it("rejections leaked by handlers fail their jobs; the process keeps running and exits normally", () => {
    const result = runFixture("handler")
    expect(result.status, result.stderr).toBe(0)
    const [states, closed] = result.stdout.trim().split("\n")
    expect(JSON.parse(states!)).toEqual([
      { name: "leaks", state: "failed", error: "UnhandledRejectionError" },
      { name: "leaks", state: "failed", error: "UnhandledRejectionError" },
      { name: "leaks", state: "failed", error: "UnhandledRejectionError" },
      { name: "fine", state: "completed" }
    ])
    expect(closed).toBe("closed")
  }, 40_000)

  it("a rejection outside any handler keeps Node's behaviour: the process dies with it", () => {
    const result = runFixture("outside")
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("not from any handler")
    expect(result.stdout).not.toContain("closed")
  }, 40_000)
})
