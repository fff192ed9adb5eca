/**
 * `npm start`: the seed's email queue on the embedded default log (./.jobledger/jobs.db).
 *
 * 300 emails through a flaky mail service (about one send in four fails): retries with
 * exponential backoff, a rate limit, hooks and events — then the final stats, read back
 * from the projection. The log stays in ./.jobledger/, so run it again and the totals grow
 * (replayed on start); `npx jobledger replay email --verify` audits it.
 */
import { JobQueue } from "../src/index.ts"

const EMAILS = 300
const sent: Array<string> = []

/** A mail service that is slow and fails now and then, like real ones. */
const mailService = {
  async send(email: string, subject: string, _message: string) {
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 8))
    if (Math.random() < 0.25) throw new Error(`SMTP 451: temporary failure for ${email}`)
    sent.push(email)
    return { messageId: `<${subject.length}.${Date.now()}@example.com>` }
  }
}

const emailQueue = new JobQueue("email", {
  concurrency: 10,
  retry: { attempts: 3, backoff: "exponential", delay: 20, maxDelay: 1_000 },
  limiter: { max: 200, duration: 1_000 },
  hooks: {
    onRetry: async (job, attempt, delay) => {
      if (attempt === 3) console.log(`  retry ${attempt}/3 of ${job.data.email} in ${delay} ms (${job.error?.message})`)
    },
    onFailed: async (job, error) => console.log(`  gave up on ${job.data.email}: ${error.message}`)
  }
})

emailQueue.process("send-email", async (job) => {
  const { email, subject, message } = job.data
  return mailService.send(email, subject, message)
})

const mine = new Set<string>()
const settled = new Set<string>()
let retries = 0
emailQueue.on("retrying", () => retries++)
const done = new Promise<void>((resolve) => {
  const settle = (job: { id: string }) => {
    if (mine.has(job.id)) settled.add(job.id)
    if (settled.size === EMAILS) resolve()
  }
  emailQueue.on("completed", settle)
  emailQueue.on("failed", settle)
})

console.log(`jobledger demo: ${EMAILS} emails on ${emailQueue.log}`)
const started = performance.now()
const jobs = await emailQueue.addBulk(
  Array.from({ length: EMAILS }, (_, i) => ({
    name: "send-email",
    data: { email: `user${i}@example.com`, subject: "Welcome!", message: "Thanks for signing up" }
  }))
)
for (const job of jobs) mine.add(job.id)
await done
const seconds = (performance.now() - started) / 1000

const stats = await emailQueue.stats()
const failed = (await emailQueue.store.list("failed")).filter((j) => mine.has(j.id)).length
console.log(`\nthis run: ${EMAILS - failed} sent, ${failed} failed for good, ${retries} retries, in ${seconds.toFixed(2)} s (${(EMAILS / seconds).toFixed(0)} jobs/s, rate limit 200/s)`)
console.log("queue totals from the projection (all runs on this log):", stats)
await emailQueue.close()
