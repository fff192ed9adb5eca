/**
 * The README's dashboard screenshots, taken by the same browser the tests drive:
 *
 *   npx tsx scripts/dashboard-screenshots.ts [outDir=docs]
 *
 * Runs an engine on a fresh SQLite log with two queues under a varying load for about a
 * minute (some jobs retry, some fail), serves the dashboard, and saves PNGs of the queue
 * overview, a job list, a job page with its timeline and a time-travel view.
 */
import { mkdirSync, mkdtempSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { ensureChromium } from "./ensure-chromium.mjs"
import { JobQueue, createDashboard } from "../src/index.ts"
import { launchChromium } from "../test/support/browser.ts"

const out = resolve(process.argv[2] ?? "docs")
mkdirSync(out, { recursive: true })
const found = ensureChromium()
if (found.path === undefined) throw new Error(`no browser: ${found.reason}`)
const log = `sqlite:${join(mkdtempSync(join(tmpdir(), "jobledger-shots-")), "jobs.db")}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const email = new JobQueue("email", { log, concurrency: 4, retry: { attempts: 2, backoff: "exponential", delay: 300 } })
const images = new JobQueue("images", { log, concurrency: 2 })
email.process("send-email", async (job) => {
  await sleep(20 + Math.random() * 60)
  const to = (job.data as { to?: string }).to
  if (to === undefined || to.endsWith("@bounce.test")) throw new Error(`SMTP 550: mailbox unavailable <${to ?? "no address"}>`)
  if (Math.random() < 0.15) throw new Error("SMTP 421: try again later")
  return { messageId: `<${job.id}@example.com>` }
})
images.process("resize", async (job) => {
  await sleep(80 + Math.random() * 120)
  return { width: (job.data as { width: number }).width, bytes: Math.round(10_000 + Math.random() * 50_000) }
})

const board = createDashboard({ log })
const server = createServer(board)
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

// a minute of load that rises and falls, with bounces that fail for good
const started = Date.now()
let n = 0
while (Date.now() - started < 60_000) {
  const t = (Date.now() - started) / 60_000
  const burst = Math.round(4 + 10 * Math.sin(Math.PI * t) ** 2)
  for (let i = 0; i < burst; i++, n++)
    await email.add("send-email", { to: n % 17 === 0 ? `user${n}@bounce.test` : `user${n}@example.com`, subject: `Welcome #${n}` }, { jobId: n === 34 ? "welcome-34" : `mail-${n}` })
  if (n % 3 === 0) await images.add("resize", { url: `https://example.com/photos/${n}.png`, width: [320, 640, 1280][n % 3] })
  await sleep(500)
}
await images.pause()
for (let i = 0; i < 6; i++) await images.add("resize", { url: `https://example.com/later/${i}.png`, width: 640 })
await sleep(3_000)

const browser = await launchChromium({ width: 1280, height: 900 })
const page = await browser.context.newPage()
const shot = async (hash: string, file: string, ready: string) => {
  await page.goto(`${base}/${hash}`)
  await page.locator(ready).first().waitFor()
  await sleep(800)
  await page.screenshot({ path: join(out, file), fullPage: true })
  console.log(`saved ${join(out, file)}`)
}
await shot("#/", "dashboard-overview.png", '[data-testid="queue-card"]')
await shot("#/q/email?state=failed", "dashboard-jobs.png", '[data-testid="job-row"]')
const failed = await (await fetch(`${base}/api/queues/email/jobs?state=failed&limit=1`)).json()
const retried = await (await fetch(`${base}/api/queues/email/jobs?search=welcome-34`)).json()
const jobId: string = retried.jobs[0]?.id ?? failed.jobs[0].id
await shot(`#/q/email/job/${encodeURIComponent(jobId)}`, "dashboard-job.png", '[data-testid="timeline-row"]')
const job = await (await fetch(`${base}/api/queues/email/jobs/${encodeURIComponent(jobId)}`)).json()
await shot(`#/q/email/travel?until=${job.timeline[1].offset}&job=${encodeURIComponent(jobId)}`, "dashboard-time-travel.png", '[data-testid="travel-summary"]')
await browser.close()
server.closeAllConnections()
server.close()
await board.close()
await email.close({ graceMs: 0 })
await images.close({ graceMs: 0 })
