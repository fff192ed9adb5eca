/**
 * Every snippet and numbered example of the seed document (/work/shared/SEED-job-queue.md),
 * written as close to the document as possible, with stub collaborators (db, mailService,
 * storage, app, …) from `fixtures/seed-world.ts`. The only changes: the import path, a
 * `JobQueue` that picks a unique queue name and a fresh log (see `seedJobQueue`), a local
 * `console` that records lines, and the scheduler's `setInterval` body driven directly.
 */
import { afterEach, describe, expect, it } from "vitest"
import type { Job, JobState } from "../src/index.ts"
import type { QueueStore } from "../src/index.ts"
import { backends, until } from "./support/backends.ts"
import { makeWorld, seedJobQueue, z } from "./fixtures/seed-world.ts"
import { sleep } from "./fixtures/helpers.ts"

/** A `console` stand-in that records what the snippets print. */
const recordingConsole = () => {
  const lines: Array<Array<any>> = []
  const errors: Array<Array<any>> = []
  return {
    lines,
    errors,
    console: {
      log: (...args: Array<any>) => void lines.push(args),
      error: (...args: Array<any>) => void errors.push(args)
    },
    printed: (prefix: string) => lines.filter((l) => typeof l[0] === "string" && l[0].startsWith(prefix))
  }
}

describe.each(backends)("seed examples on $name", (backend) => {
  const { JobQueue, closeAll } = seedJobQueue(backend)
  afterEach(closeAll)

  describe("Basic Usage", () => {
    it("1-4: create, register a handler, add a job, listen to events", async () => {
      const { sendEmail, callsTo, bouncing } = makeWorld()
      const { console, printed } = recordingConsole()

      // 1. Create Queue
      const emailQueue = new JobQueue("email", {
        concurrency: 2
      })

      // 2. Register Job Handler
      emailQueue.process("send-email", async (job) => {
        const { email, subject, message } = job.data

        // Do work here
        const result = await sendEmail(email, subject, message)

        // Return result
        return result
      })

      // 4. Listen to Events
      emailQueue.on("completed", (job, result) => {
        console.log("Email sent:", result)
      })

      emailQueue.on("failed", (job, error) => {
        console.log("Email failed:", error.message)
      })

      // 3. Add Job to Queue
      const job = await emailQueue.add("send-email", {
        email: "user@example.com",
        subject: "Welcome!",
        message: "Thanks for signing up"
      })

      console.log(job.id) // jobId untuk tracking
      expect(typeof job.id).toBe("string")

      bouncing.add("nobody@example.com")
      await emailQueue.add("send-email", { email: "nobody@example.com", subject: "Hi", message: "..." })

      await until(() => printed("Email sent:").length === 1 && printed("Email failed:").length === 1, "both events")
      expect(printed("Email sent:")).toEqual([["Email sent:", { delivered: "user@example.com" }]])
      expect(printed("Email failed:")).toEqual([["Email failed:", "mailbox nobody@example.com unavailable"]])
      expect(callsTo("sendEmail")).toContainEqual(["user@example.com", "Welcome!", "Thanks for signing up"])
    })
  })

  describe("Configuration", () => {
    it("Retry Configuration: attempts 3, exponential from 1 s → waits 1 s, 2 s, 4 s, then fails for good", async () => {
      const queue = new JobQueue("tasks", {
        retry: {
          attempts: 3, // Retry 3 times max
          backoff: "exponential", // 'fixed' or 'exponential'
          delay: 1000, // Initial delay: 1 second
          maxDelay: 60000 // Max delay: 1 minute
        }
      })
      const runs: Array<number> = []
      const waits: Array<[number, number]> = []
      queue.process("flaky-task", async () => {
        runs.push(Date.now())
        throw new Error("still failing")
      })
      queue.on("retrying", (_job, attempt, delay) => waits.push([attempt, delay]))
      let failedForGood: Job | undefined
      queue.on("failed", (job) => {
        failedForGood = job
      })
      const job = await queue.add("flaky-task", {})
      await until(() => failedForGood !== undefined, "the permanent failure", 15_000)
      // Attempt 1 fails → wait 1s; Attempt 2 fails → wait 2s; Attempt 3 fails → wait 4s; Attempt 4 = FAIL PERMANENT
      expect(waits).toEqual([
        [1, 1000],
        [2, 2000],
        [3, 4000]
      ])
      expect(runs).toHaveLength(4)
      expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(998)
      expect(runs[2]! - runs[1]!).toBeGreaterThanOrEqual(1998)
      expect(runs[3]! - runs[2]!).toBeGreaterThanOrEqual(3998)
      expect(failedForGood).toMatchObject({ id: job.id, state: "failed", attemptsMade: 3, maxAttempts: 3 })
    }, 30_000)

    it("Rate Limiting: concurrency 10 but max 5 jobs per minute", async () => {
      const queue = new JobQueue("api-calls", {
        concurrency: 10, // 10 concurrent jobs
        limiter: {
          max: 5, // But max 5 jobs
          duration: 60000 // Per minute (60 seconds)
        }
      })
      let started = 0
      queue.process("call-api", async (job) => {
        started++
        return { called: job.data.n }
      })
      await queue.addBulk(Array.from({ length: 8 }, (_, n) => ({ name: "call-api", data: { n } })))
      // Result: 5 jobs per minute, even with 10 concurrency
      await until(async () => (await queue.stats()).completed === 5, "the first 5 jobs")
      await sleep(300)
      expect(started).toBe(5)
      expect(await queue.stats()).toMatchObject({ completed: 5, waiting: 3, active: 0 })
    })

    it("Custom Storage: a class implementing QueueStore", async () => {
      const rows = new Map<string, Job>()
      let dequeued = 0
      class PostgresQueueStore implements QueueStore {
        async enqueue(job: Job) {
          rows.set(job.id, { ...job })
        }
        async dequeue(): Promise<Job | undefined> {
          dequeued++
          return undefined
        }
        async update(job: Job) {
          rows.set(job.id, { ...job })
        }
        async get(id: string) {
          return rows.get(id)
        }
        async list(state?: JobState) {
          return [...rows.values()].filter((j) => state === undefined || j.state === state)
        }
        async stats() {
          const s = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, paused: 0 }
          for (const j of rows.values()) s[j.state]++
          return s
        }
      }

      const queue = new JobQueue("email", {
        store: new PostgresQueueStore()
      })
      queue.process("send-email", async (job) => ({ to: job.data.email }))
      const job = await queue.add("send-email", { email: "a@b.c" })
      await until(async () => (await queue.store.get(job.id))?.state === "completed", "the job to complete in the custom store")
      expect(rows.get(job.id)).toMatchObject({ state: "completed", result: { to: "a@b.c" } })
      expect(await queue.store.stats()).toMatchObject({ completed: 1 })
      expect(await queue.store.list("completed")).toHaveLength(1)
      expect(dequeued).toBe(0)
    })
  })

  describe("Job Handlers", () => {
    it("Simple Handler", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("handlers")
      queue.process("simple-job", async (job) => {
        console.log("Processing:", job.data)
        return { success: true }
      })
      const job = await queue.add("simple-job", { hello: "world" })
      await until(async () => (await queue.store.get(job.id))?.state === "completed", "completion")
      expect(lines).toEqual([["Processing:", { hello: "world" }]])
      expect((await queue.store.get(job.id))?.result).toEqual({ success: true })
    })

    it("Handler dengan Error Handling", async () => {
      const { riskyOperation } = makeWorld()
      const queue = new JobQueue("handlers")
      queue.process("risky-job", async (job) => {
        try {
          const result = await riskyOperation(job.data)
          return result
        } catch (error: any) {
          throw new Error(`Failed: ${error.message}`)
        }
      })
      const good = await queue.add("risky-job", { ok: true })
      const bad = await queue.add("risky-job", { ok: false })
      await until(async () => {
        const s = await queue.stats()
        return s.completed === 1 && s.failed === 1
      }, "one completion, one failure")
      expect((await queue.store.get(good.id))?.result).toEqual({ risky: "done" })
      expect((await queue.store.get(bad.id))?.error?.message).toBe("Failed: upstream said no")
    })

    it("Handler dengan Async Operations (db-import)", async () => {
      const { db } = makeWorld()
      const queue = new JobQueue("handlers")
      queue.process("db-import", async (job) => {
        const records = job.data.records

        // Batch insert
        const inserted = await db.users.insert(records)

        // Return count
        return { inserted: inserted.length }
      })
      const job = await queue.add("db-import", { records: [{ name: "a" }, { name: "b" }, { name: "c" }] })
      await until(async () => (await queue.store.get(job.id))?.state === "completed", "completion")
      expect((await queue.store.get(job.id))?.result).toEqual({ inserted: 3 })
    })

    it("Handler Accessing Job Meta", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("handlers", { retry: { attempts: 2 } })
      queue.process("task", async (job) => {
        console.log("Job ID:", job.id)
        console.log("Attempt:", job.attemptsMade)
        console.log("Max retries:", job.maxAttempts)
        console.log("Priority:", job.priority)
        console.log("Metadata:", job.metadata)

        return { done: true }
      })
      const job = await queue.add("task", {}, { priority: 4, metadata: { source: "test" } })
      await until(async () => (await queue.store.get(job.id))?.state === "completed", "completion")
      expect(lines).toEqual([
        ["Job ID:", job.id],
        ["Attempt:", 0],
        ["Max retries:", 2],
        ["Priority:", 4],
        ["Metadata:", { source: "test" }]
      ])
    })
  })

  describe("Job States", () => {
    it("Check Job State: 'waiting' from add, later 'completed' from the store", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("states")
      queue.process("task", async () => "done")
      const data = { n: 1 }

      const job = await queue.add("task", data)
      console.log(job.state) // 'waiting'

      // Later...
      await until(async () => (await queue.store.get(job.id))?.state === "completed", "completion")
      const currentJob = await queue.store.get(job.id)
      console.log(currentJob!.state) // 'completed', 'failed', etc

      expect(lines).toEqual([["waiting"], ["completed"]])
    })

    it("State Transitions: waiting → active → completed, or → delayed (retry) → active → failed", async () => {
      const queue = new JobQueue("states", { retry: { attempts: 1, delay: 20 } })
      const store = queue.store
      const transitions = new Map<string, Array<JobState>>()
      const note = (job: Job) => transitions.set(job.data.label, [...(transitions.get(job.data.label) ?? []), job.state])
      queue.on("added", note)
      queue.on("active", note)
      queue.on("completed", note)
      queue.on("retrying", note)
      queue.on("failed", note)
      queue.process("task", async (job) => {
        if (job.data.label === "bad") throw new Error("bad")
        return "ok"
      })
      await queue.add("task", { label: "good" })
      const bad = await queue.add("task", { label: "bad" })
      await until(async () => (await store.get(bad.id))?.state === "failed", "the bad job to fail")
      await until(() => transitions.get("good")?.at(-1) === "completed", "the good job to complete")
      expect(transitions.get("good")).toEqual(["waiting", "active", "completed"])
      expect(transitions.get("bad")).toEqual(["waiting", "active", "delayed", "active", "failed"])
    })
  })

  describe("Callbacks & Hooks", () => {
    it("Three Types of Callbacks", async () => {
      const called: Array<string> = []
      const queue = new JobQueue("email", {
        retry: { attempts: 1, delay: 10 }, // so that onRetry has something to announce
        hooks: {
          onComplete: async (job, result) => {
            // Called when job succeeds
            called.push(`onComplete ${job.data.to} ${JSON.stringify(result)}`)
          },
          onFailed: async (job, error) => {
            // Called when job fails permanently
            called.push(`onFailed ${job.data.to} ${error.message}`)
          },
          onRetry: async (job, attempt, delay) => {
            // Called before each retry
            called.push(`onRetry ${job.data.to} ${attempt} ${delay}`)
          }
        }
      })
      queue.process("send", async (job) => {
        if (job.data.to === "bad") throw new Error("rejected")
        return { ok: true }
      })
      await queue.add("send", { to: "good" })
      await queue.add("send", { to: "bad" })
      await until(() => called.length === 3, "three hook calls")
      expect(called.sort()).toEqual(['onComplete good {"ok":true}', "onFailed bad rejected", "onRetry bad 1 10"])
    })

    it("Example: Email Callbacks", async () => {
      const { db, webhook, slack, callsTo, sendEmail, bouncing } = makeWorld()
      const queue = new JobQueue("email", {
        retry: { attempts: 1, delay: 10 }, // added so that onRetry runs
        hooks: {
          onComplete: async (job, result) => {
            // Update database: email_logs.status = 'sent'
            await db.emailLogs.update({ jobId: job.id }, { status: "sent", result })

            // Send webhook
            await webhook.post("/events/email-sent", {
              email: job.data.email,
              timestamp: new Date()
            })
          },

          onFailed: async (job, error) => {
            // Update database: email_logs.status = 'failed'
            await db.emailLogs.update(
              { jobId: job.id },
              {
                status: "failed",
                error: error.message,
                failedAt: new Date()
              }
            )

            // Alert admin
            await slack.notify({
              channel: "#alerts",
              text: `Email delivery failed: ${job.data.email}`
            })
          },

          onRetry: async (job, attempt, delay) => {
            // Log retry attempt
            await db.jobRetries.insert({
              jobId: job.id,
              attempt,
              nextRetryIn: delay
            })
          }
        }
      })
      queue.process("send-email", async (job) => sendEmail(job.data.email))
      bouncing.add("gone@example.com")
      const sent = await queue.add("send-email", { email: "ok@example.com" })
      const failed = await queue.add("send-email", { email: "gone@example.com" })
      await until(() => callsTo("webhook.post").length === 1 && callsTo("slack.notify").length === 1, "the webhook and the alert")
      const logUpdates = callsTo("db.emailLogs.update")
      expect(logUpdates).toContainEqual([{ jobId: sent.id }, { status: "sent", result: { delivered: "ok@example.com" } }])
      const failedUpdate = logUpdates.find(([key]) => key.jobId === failed.id)
      expect(failedUpdate?.[1]).toMatchObject({ status: "failed", error: "mailbox gone@example.com unavailable" })
      expect(failedUpdate?.[1].failedAt).toBeInstanceOf(Date)
      expect(callsTo("webhook.post")[0]).toMatchObject(["/events/email-sent", { email: "ok@example.com" }])
      expect(callsTo("slack.notify")).toEqual([[{ channel: "#alerts", text: "Email delivery failed: gone@example.com" }]])
      expect(callsTo("db.jobRetries.insert")).toEqual([[{ jobId: failed.id, attempt: 1, nextRetryIn: 10 }]])
    })
  })

  describe("Advanced Features", () => {
    it("1. Priority Jobs: higher priority executes first", async () => {
      const queue = new JobQueue("email", { concurrency: 1 })
      const order: Array<number> = []
      queue.process("email", async (job) => {
        order.push(job.priority)
      })
      await queue.pause()
      const data = { to: "x@y.z" }

      // Low priority
      await queue.add("email", data, { priority: 0 })

      // Medium priority
      await queue.add("email", data, { priority: 5 })

      // High priority (execute first)
      await queue.add("email", data, { priority: 10 })

      await until(async () => (await queue.stats()).paused === 3, "3 jobs held by the pause")
      await queue.resume()
      await until(() => order.length === 3, "all three")
      expect(order).toEqual([10, 5, 0])
    })

    it("2. Delayed Jobs: scheduled for later", async () => {
      const queue = new JobQueue("reminders")
      let ran = 0
      queue.process("reminder", async () => void ran++)
      queue.process("report", async () => void ran++)
      const data = {}

      // Run 5 minutes from now
      const reminder = await queue.add("reminder", data, {
        delay: 5 * 60 * 1000
      })

      // Run 1 hour from now
      const report = await queue.add("report", data, {
        delay: 60 * 60 * 1000
      })

      expect(reminder.state).toBe("delayed")
      expect(reminder.runAt - reminder.createdAt).toBe(5 * 60 * 1000)
      expect(report.runAt - report.createdAt).toBe(60 * 60 * 1000)
      await until(async () => (await queue.stats()).delayed === 2, "2 delayed jobs")
      await sleep(100)
      expect(ran).toBe(0)
      expect((await queue.store.get(report.id))?.state).toBe("delayed")
    })

    it("3. Bulk Add", async () => {
      const queue = new JobQueue("email")
      const sentTo: Array<string> = []
      queue.process("send-email", async (job) => {
        sentTo.push(job.data.email)
      })
      const jobs = [
        { name: "send-email", data: { email: "user1@ex.com" } },
        { name: "send-email", data: { email: "user2@ex.com" } },
        { name: "send-email", data: { email: "user3@ex.com" } }
      ]

      await queue.addBulk(jobs)

      await until(() => sentTo.length === 3, "3 emails")
      expect(sentTo.sort()).toEqual(["user1@ex.com", "user2@ex.com", "user3@ex.com"])
    })

    it("4. Manual Retry: unknown job → catch; failed job → runs again", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("manual")
      let attempts = 0
      queue.process("once-broken", async () => {
        if (++attempts === 1) throw new Error("broken the first time")
        return "ok"
      })

      let jobId = "no-such-job"
      try {
        await queue.retry(jobId)
      } catch (error) {
        console.log("Job not found")
      }
      expect(lines).toEqual([["Job not found"]])

      jobId = (await queue.add("once-broken", {})).id
      await until(async () => (await queue.store.get(jobId))?.state === "failed", "the failure")
      try {
        await queue.retry(jobId)
      } catch (error) {
        console.log("Job not found")
      }
      expect(lines).toEqual([["Job not found"]])
      await until(async () => (await queue.store.get(jobId))?.state === "completed", "the retried job to complete")
      expect(attempts).toBe(2)
    })

    it("5. Pause & Resume, without await", async () => {
      const queue = new JobQueue("control")
      let ran = 0
      queue.process("task", async () => void ran++)

      const paused = new Promise<void>((resolve) => queue.once("paused", resolve))

      queue.pause() // Stop processing new jobs

      await paused
      await queue.add("task", {})
      await until(async () => (await queue.stats()).paused === 1, "the job held")
      await sleep(100)
      expect(ran).toBe(0)
      queue.resume() // Resume processing
      await until(() => ran === 1, "the job to run after resume")
    })

    it("6. Queue Statistics", async () => {
      const queue = new JobQueue("stats")
      queue.process("ok", async () => "ok")
      queue.process("bad", async () => {
        throw new Error("bad")
      })
      await queue.add("ok", {})
      await queue.add("bad", {})
      await queue.add("ok", {}, { delay: 60_000 })
      await until(async () => {
        const s = await queue.stats()
        return s.completed === 1 && s.failed === 1 && s.delayed === 1
      }, "the counts to settle")

      const stats = await queue.stats()

      expect(stats).toMatchObject({ waiting: 0, active: 0, completed: 1, failed: 1, delayed: 1 })
      expect(Object.values(stats).every((n) => Number.isInteger(n))).toBe(true)
    })
  })

  describe("Event Listeners", () => {
    it("all seven events, as printed by the seed's listeners", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("events", { retry: { attempts: 1, delay: 15 } })
      queue.process("work", async (job) => {
        if (job.data.fail && job.attemptsMade === 0) throw new Error("first attempt fails")
        if (job.data.fatal) throw new Error("fatal")
        return { done: job.data.n }
      })

      // Job added to queue
      queue.on("added", (job) => {
        console.log("Job added:", job.id)
      })

      // Job started processing
      queue.on("active", (job) => {
        console.log("Job processing:", job.id)
      })

      // Job completed successfully
      queue.on("completed", (job, result) => {
        console.log("Job done:", result)
      })

      // Job failed
      queue.on("failed", (job, error) => {
        console.log("Job error:", error.message)
      })

      // Job about to retry
      queue.on("retrying", (job, attempt, delay) => {
        console.log(`Retry ${attempt} in ${delay}ms`)
      })

      // Queue paused
      queue.on("paused", () => {
        console.log("Queue paused")
      })

      // Queue resumed
      queue.on("resumed", () => {
        console.log("Queue resumed")
      })

      const a = await queue.add("work", { n: 1 })
      const b = await queue.add("work", { n: 2, fail: true })
      const c = await queue.add("work", { n: 3, fatal: true })
      await until(async () => {
        const s = await queue.stats()
        return s.completed === 2 && s.failed === 1
      }, "2 completions and 1 failure")
      queue.pause()
      await until(() => lines.some((l) => l[0] === "Queue paused"), "paused")
      queue.resume()
      await until(() => lines.some((l) => l[0] === "Queue resumed"), "resumed")

      const text = lines.map((l) => l.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" "))
      for (const job of [a, b, c]) expect(text).toContain(`Job added: ${job.id}`)
      expect(text.filter((t) => t === `Job processing: ${b.id}`)).toHaveLength(2)
      expect(text).toContain(`Job processing: ${a.id}`)
      expect(text).toContain('Job done: {"done":1}')
      expect(text).toContain('Job done: {"done":2}')
      expect(text).toContain("Retry 1 in 15ms")
      expect(text.filter((t) => t.startsWith("Job error:"))).toEqual(["Job error: fatal"])
      expect(text.slice(-2)).toEqual(["Queue paused", "Queue resumed"])
    })
  })

  describe("Best Practices", () => {
    it("1. Use Meaningful Job Names", async () => {
      const queue = new JobQueue("practices")
      const seen: Array<string> = []
      const handler = async (job: Job) => void seen.push(job.name)
      queue.process("send-welcome-email", handler)
      queue.process("import-users-csv", handler)
      queue.process("generate-report", handler)
      await queue.addBulk(["send-welcome-email", "import-users-csv", "generate-report"].map((name) => ({ name, data: {} })))
      await until(() => seen.length === 3, "all three named jobs")
      expect(seen.sort()).toEqual(["generate-report", "import-users-csv", "send-welcome-email"])
    })

    it("2. Include Metadata for Tracking", async () => {
      const { console, lines } = recordingConsole()
      const queue = new JobQueue("practices")
      const user = { id: "u7" }
      const campaign = { id: "spring-sale" }
      const emailData = { to: "u7@example.com" }

      await queue.add("email", emailData, {
        metadata: {
          userId: user.id,
          campaignId: campaign.id,
          source: "signup-flow"
        }
      })

      // Later in handler
      queue.process("email", async (job) => {
        console.log("From campaign:", job.metadata?.campaignId)
      })

      await until(() => lines.length === 1, "the handler")
      expect(lines).toEqual([["From campaign:", "spring-sale"]])
    })

    it("3. Set Appropriate Concurrency (and it is honoured)", async () => {
      // Email: 2-5 concurrent (don't overwhelm SMTP)
      new JobQueue("email", { concurrency: 3 })

      // API calls: 10-20 concurrent
      new JobQueue("api", { concurrency: 15 })

      // Database: 5-10 concurrent (DB connection limits)
      new JobQueue("db", { concurrency: 8 })

      // CPU intensive: 1-2 concurrent
      const cpu = new JobQueue("cpu-heavy", { concurrency: 1 })
      let running = 0
      let peak = 0
      cpu.process("crunch", async () => {
        peak = Math.max(peak, ++running)
        await sleep(10)
        running--
      })
      await cpu.addBulk(Array.from({ length: 4 }, () => ({ name: "crunch", data: {} })))
      await until(async () => (await cpu.stats()).completed === 4, "4 crunches")
      expect(peak).toBe(1)
    })

    it("4. Use Rate Limiting for External APIs", async () => {
      const queue = new JobQueue("external-api", {
        concurrency: 20,
        limiter: {
          max: 100, // 100 requests
          duration: 60000 // per minute (API rate limit)
        }
      })
      queue.process("get", async () => "ok")
      await queue.addBulk(Array.from({ length: 30 }, () => ({ name: "get", data: {} })))
      await until(async () => (await queue.stats()).completed === 30, "30 calls under the limit")
    })

    it("5. Implement Proper Error Handling: log, then rethrow so the queue retries", async () => {
      const { fetchFromAPI } = makeWorld()
      const { console, errors } = recordingConsole()
      const queue = new JobQueue("api", { retry: { attempts: 3, delay: 5 } })
      queue.process("api-call", async (job) => {
        const maxRetries = 3

        try {
          // Your operation
          const result = await fetchFromAPI(job.data.url)
          return result
        } catch (error: any) {
          // Log detailed error
          console.error({
            jobId: job.id,
            attempt: job.attemptsMade,
            maxAttempts: job.maxAttempts,
            error: error.message,
            stack: error.stack
          })

          throw error // Let queue handle retry
        }
      })
      const job = await queue.add("api-call", { url: "https://down.example.com/x" })
      await until(async () => (await queue.store.get(job.id))?.state === "failed", "the failure after retries")
      expect(errors.map(([e]) => [e.attempt, e.maxAttempts, e.error])).toEqual([
        [0, 3, "GET https://down.example.com/x: 503"],
        [1, 3, "GET https://down.example.com/x: 503"],
        [2, 3, "GET https://down.example.com/x: 503"],
        [3, 3, "GET https://down.example.com/x: 503"]
      ])
      const ok = await queue.add("api-call", { url: "https://up.example.com/y" })
      await until(async () => (await queue.store.get(ok.id))?.state === "completed", "the good call")
      expect((await queue.store.get(ok.id))?.result).toEqual({ url: "https://up.example.com/y", status: 200 })
    })

    it("6. Use Callbacks for Side Effects", async () => {
      const { db, alertService, callsTo } = makeWorld()
      const queue = new JobQueue("notifications", {
        hooks: {
          onComplete: async (job, result) => {
            // Update database
            await db.notifications.update(job.id, {
              status: "sent",
              sentAt: new Date(),
              result
            })
          },
          onFailed: async (job, error) => {
            // Store failure reason
            await db.notifications.update(job.id, {
              status: "failed",
              error: error.message,
              failedAt: new Date()
            })

            // Send alert
            await alertService.notify({
              type: "notification-failed",
              jobId: job.id,
              error: error.message
            })
          }
        }
      })
      queue.process("push", async (job) => {
        if (job.data.token === "expired") throw new Error("token expired")
        return { delivered: job.data.token }
      })
      const good = await queue.add("push", { token: "t1" })
      const bad = await queue.add("push", { token: "expired" })
      await until(() => callsTo("db.notifications.update").length === 2 && callsTo("alertService.notify").length === 1, "both hooks")
      const updates = new Map(callsTo("db.notifications.update").map(([id, patch]) => [id, patch]))
      expect(updates.get(good.id)).toMatchObject({ status: "sent", result: { delivered: "t1" } })
      expect(updates.get(bad.id)).toMatchObject({ status: "failed", error: "token expired" })
      expect(callsTo("alertService.notify")).toEqual([[{ type: "notification-failed", jobId: bad.id, error: "token expired" }]])
    })

    it("7. Validate Job Data", async () => {
      const { sendEmail } = makeWorld()
      const queue = new JobQueue("email")

      const emailSchema = z.object({
        email: z.string().email(),
        subject: z.string().min(5),
        message: z.string().min(10)
      })

      queue.process("send-email", async (job) => {
        // Validate before processing
        const validated = emailSchema.parse(job.data)

        return await sendEmail(validated)
      })

      const good = await queue.add("send-email", { email: "a@b.co", subject: "Hello there", message: "A long enough message" })
      const bad = await queue.add("send-email", { email: "not-an-email", subject: "Hi", message: "short" })
      await until(async () => {
        const s = await queue.stats()
        return s.completed === 1 && s.failed === 1
      }, "one valid, one invalid")
      expect((await queue.store.get(good.id))?.result).toEqual({ delivered: "a@b.co" })
      const error = (await queue.store.get(bad.id))?.error
      expect(error?.message).toMatch(/email: Invalid email/)
      expect(error?.name).toBe("ZodError")
    })
  })

  describe("Examples", () => {
    it("Example 1: Email Queue with Callbacks (incl. a permanent failure after 3 exponential retries)", async () => {
      const { db, analytics, alertService, mailService, app, callsTo, bouncing } = makeWorld()

      const emailQueue = new JobQueue("email", {
        concurrency: 3,
        retry: {
          attempts: 3,
          backoff: "exponential",
          delay: 1000
        },
        hooks: {
          onComplete: async (job, result) => {
            await db.emails.updateStatus(job.id, "sent")
            await analytics.track("email_sent", {
              email: job.data.email
            })
          },
          onFailed: async (job, error) => {
            await db.emails.updateStatus(job.id, "failed")
            await alertService.notify({
              message: `Email failed: ${job.data.email}`,
              error: error.message
            })
          }
        }
      })

      emailQueue.process("send-email", async (job) => {
        const { email, subject, message } = job.data
        await mailService.send(email, subject, message)
        return { sent: true }
      })

      // Usage in endpoint
      app.post("/api/send-email", async (ctx) => {
        const job = await emailQueue.add("send-email", {
          email: ctx.body.email,
          subject: ctx.body.subject,
          message: ctx.body.message
        })

        return { jobId: job.id }
      })

      bouncing.add("bounce@example.com")
      const ok = await app.request("/api/send-email", { body: { email: "hi@example.com", subject: "Hi", message: "Hello" } })
      const bad = await app.request("/api/send-email", { body: { email: "bounce@example.com", subject: "Hi", message: "Hello" } })
      expect(typeof ok.jobId).toBe("string")

      await until(() => callsTo("analytics.track").length === 1, "the sent email")
      expect(callsTo("db.emails.updateStatus")).toContainEqual([ok.jobId, "sent"])
      expect(callsTo("analytics.track")).toEqual([["email_sent", { email: "hi@example.com" }]])
      expect(await emailQueue.store.get(ok.jobId)).toMatchObject({ state: "completed", result: { sent: true } })

      // the bounce: runs 4 times (1 s, 2 s, 4 s apart), then onFailed once
      await until(() => callsTo("alertService.notify").length === 1, "the failure alert", 15_000)
      expect(callsTo("mailService.send").filter(([email]) => email === "bounce@example.com")).toHaveLength(4)
      expect(callsTo("db.emails.updateStatus")).toContainEqual([bad.jobId, "failed"])
      expect(callsTo("alertService.notify")).toEqual([[{ message: "Email failed: bounce@example.com", error: "mailbox bounce@example.com unavailable" }]])
      expect(await emailQueue.store.get(bad.jobId)).toMatchObject({ state: "failed", attemptsMade: 3, maxAttempts: 3 })
    }, 30_000)

    it("Example 2: File Processing Queue (concurrency 2, 10 per minute)", async () => {
      const { storage, imageService, app } = makeWorld()

      const fileQueue = new JobQueue("files", {
        concurrency: 2,
        limiter: {
          max: 10,
          duration: 60000
        }
      })

      let running = 0
      let peak = 0
      fileQueue.process("process-upload", async (job) => {
        peak = Math.max(peak, ++running)
        try {
          const { fileId, fileName } = job.data

          // Download file
          const file = await storage.download(fileId)

          // Process
          const processed = await imageService.optimize(file)
          await sleep(20)

          // Upload result
          const resultId = await storage.upload(processed)

          return { resultId, fileName }
        } finally {
          running--
        }
      })

      // Add to queue from endpoint
      app.post("/api/upload", async (ctx) => {
        const file = ctx.files.file
        const fileId = await storage.save(file)

        const job = await fileQueue.add("process-upload", {
          fileId,
          fileName: file.name
        })

        return {
          fileId,
          jobId: job.id,
          status: "processing"
        }
      })

      const responses = []
      for (let i = 0; i < 11; i++)
        responses.push(await app.request("/api/upload", { files: { file: { name: `photo${i}.png`, bytes: `PNGDATA${i}` } } }))
      expect(responses[0]).toMatchObject({ fileId: "f1", status: "processing" })

      await until(async () => (await fileQueue.stats()).completed === 10, "10 uploads processed")
      await sleep(200)
      expect(await fileQueue.stats()).toMatchObject({ completed: 10, waiting: 1, active: 0 }) // the 11th waits for the next minute
      expect(peak).toBeLessThanOrEqual(2)
      const first = await fileQueue.store.get(responses[0].jobId)
      expect(first?.result.fileName).toBe("photo0.png")
      expect(first?.result.resultId).toMatch(/^f\d+$/)
    })

    it("Example 3: Scheduled Tasks (the setInterval body, driven at 8:00 and at 9:30)", async () => {
      const { db, emailService, generateReport, callsTo } = makeWorld()

      const schedulerQueue = new JobQueue("scheduler", {
        concurrency: 5
      })

      schedulerQueue.process("send-daily-report", async (job) => {
        const { userId } = job.data
        const report = await generateReport(userId)
        await emailService.send(userId, "Daily Report", report)
        return { sent: true }
      })

      // Schedule every day at 8 AM — the body of the seed's setInterval, with `now` injectable
      const everyMinute = async (now = new Date()) => {
        if (now.getHours() === 8 && now.getMinutes() === 0) {
          const users = await db.users.findAll()
          await schedulerQueue.addBulk(
            users.map((u: { id: string }) => ({
              name: "send-daily-report",
              data: { userId: u.id }
            }))
          )
        }
      }
      const timer = setInterval(everyMinute, 60000) // Check every minute
      clearInterval(timer) // (not waited for: the body is driven below)

      await everyMinute(new Date(2030, 0, 1, 9, 30))
      expect(callsTo("db.users.findAll")).toHaveLength(0)
      await everyMinute(new Date(2030, 0, 1, 8, 0))
      await until(async () => (await schedulerQueue.stats()).completed === 3, "a report per user")
      expect(callsTo("emailService.send").map(([userId, subject, report]) => [userId, subject, report]).sort()).toEqual([
        ["u1", "Daily Report", "report for u1"],
        ["u2", "Daily Report", "report for u2"],
        ["u3", "Daily Report", "report for u3"]
      ])
    })

    it("Example 4: Data Import (concurrency 1, 2 retries, a failed listener that emails the user)", async () => {
      const { storage, parseCSV, validateRecord, db, emailService, callsTo, files } = makeWorld()

      const importQueue = new JobQueue("import", {
        concurrency: 1,
        retry: { attempts: 2 }
      })

      importQueue.process("import-csv", async (job) => {
        const { fileId, userId } = job.data

        // Read CSV
        const file = await storage.read(fileId)
        const records = await parseCSV(file)

        // Validate
        const validated = records.map((r: any) => validateRecord(r))

        // Insert
        const inserted = await db.users.insertMany(validated)

        // Notify user
        await emailService.send(userId, "Import Complete", `Successfully imported ${inserted.length} records`)

        return { imported: inserted.length }
      })

      importQueue.on("failed", async (job, error) => {
        const { userId } = job.data
        await emailService.send(userId, "Import Failed", `Error: ${error.message}`)
      })

      files.set("good.csv", { name: "good.csv", bytes: "name,email\nann,ann@x.io\nbob,bob@x.io\n" })
      files.set("bad.csv", { name: "bad.csv", bytes: "name,email\ncat,cat-at-x.io\n" })
      const good = await importQueue.add("import-csv", { fileId: "good.csv", userId: "u1" })
      const bad = await importQueue.add("import-csv", { fileId: "bad.csv", userId: "u2" })

      await until(async () => (await importQueue.store.get(good.id))?.state === "completed", "the good import")
      expect((await importQueue.store.get(good.id))?.result).toEqual({ imported: 2 })
      // retry: { attempts: 2 } with the default 1 s fixed delay: 3 runs, then the failed listener
      await until(() => callsTo("emailService.send").some(([, subject]) => subject === "Import Failed"), "the failure email", 10_000)
      expect(callsTo("emailService.send")).toEqual([
        ["u1", "Import Complete", "Successfully imported 2 records"],
        ["u2", "Import Failed", "Error: invalid email for cat"]
      ])
      expect(callsTo("storage.read").filter(([id]) => id === "bad.csv")).toHaveLength(3)
      expect(await importQueue.store.get(bad.id)).toMatchObject({ state: "failed", attemptsMade: 2, maxAttempts: 2 })
    }, 20_000)
  })
})
