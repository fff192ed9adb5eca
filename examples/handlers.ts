/**
 * A handlers module for `jobledger engine`:
 *
 *   npx jobledger engine --handlers examples/handlers.ts
 *   npx jobledger add email send-email --data '{"to":"ada@example.com","subject":"Welcome"}'
 *   npx jobledger add images resize --data '{"url":"https://example.com/a.png","width":320}'
 *   npx jobledger stats email
 *
 * The default export maps queue → job name → handler; `options` (optional) maps queue →
 * JobQueue options. A handler gets the job and an AbortSignal (fired on timeout or when a
 * shutdown's grace period runs out); what it returns becomes `job.result` (JSON).
 */
import type { Job, QueueOptions } from "../src/index.ts"

interface Email {
  to: string
  subject: string
  body?: string
}

interface Resize {
  url: string
  width: number
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener("abort", () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })

export default {
  email: {
    "send-email": async (job: Job<Email>, signal: AbortSignal) => {
      if (typeof job.data?.to !== "string") throw new Error("data.to is required")
      await sleep(20, signal) // a real handler would call the mail service here, with job.id as idempotency key
      return { messageId: `<${job.id}@example.com>`, to: job.data.to }
    }
  },
  images: {
    resize: async (job: Job<Resize>, signal: AbortSignal) => {
      await sleep(50, signal)
      return { url: job.data.url.replace(/(\.\w+)$/, `-${job.data.width}w$1`) }
    }
  }
}

export const options: Record<string, QueueOptions> = {
  email: { concurrency: 10, retry: { attempts: 3, backoff: "exponential", delay: 1_000 }, limiter: { max: 100, duration: 1_000 } },
  images: { concurrency: 2, timeout: 30_000 }
}
