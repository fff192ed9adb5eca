/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core, headless):
 * the `jobledger dashboard` command on a SQLite log that an engine in this process works on.
 *
 * It watches counts change without a reload, opens a failed job, retries it (the handler
 * succeeds on its second run) and watches it complete, travels back in time, runs verify,
 * and checks that a job whose data and error hold HTML renders it as text, with no script
 * of the job's run (it would set a window flag) and no CSP violation of the page's own.
 *
 * The browser is installed by scripts/ensure-chromium.mjs when missing (as root, with
 * apt-get); where it cannot be, the suite says so loudly and is skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Page } from "playwright-core"
import { ensureChromium } from "../scripts/ensure-chromium.mjs"
import { JobQueue } from "../src/index.ts"
import { sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { type Browser, launchChromium } from "./support/browser.ts"
import { type DashboardChild, startDashboardCli } from "./support/dashboard.ts"

const browserFound = ensureChromium()
if (browserFound.path === undefined)
  console.error(`\n!!! dashboard browser test SKIPPED: ${browserFound.reason}\n!!! the dashboard's page is NOT tested in a browser on this machine\n`)

const EVIL_DATA = `<script>window.__pwned = "data"</script><img src=x onerror="window.__pwned = 'img'">`
const EVIL_ERROR = `<img src=x onerror="window.__pwned = 'error'"> failed`

describe.skipIf(browserFound.path === undefined)("dashboard in a browser", () => {
  const log = sqliteBackend.freshLog()
  const queue = uniqueQueue("browser")
  const runs = new Map<string, number>()
  let engine: JobQueue
  let dashboard: DashboardChild
  let browser: Browser
  let page: Page
  const problems: Array<string> = []

  beforeAll(async () => {
    engine = new JobQueue(queue, { log, concurrency: 4 })
    engine.on("error", () => {})
    engine.process("ok", async () => ({ done: true }))
    engine.process("flaky", async (job) => {
      const n = (runs.get(job.id) ?? 0) + 1
      runs.set(job.id, n)
      if (n === 1) throw new Error("the mail server said no (first run)")
      return { sentOnRun: n }
    })
    engine.process("evil", async () => {
      throw new Error(EVIL_ERROR)
    })
    for (let i = 0; i < 3; i++) await engine.add("ok", { i })
    await engine.add("flaky", { to: "ada@example.com" }, { jobId: "flaky-1" })
    await engine.add("evil", { html: EVIL_DATA }, { jobId: "evil-1" })
    await until(async () => (await engine.stats()).failed === 2 && (await engine.stats()).completed === 3, "3 completed, 2 failed", 30_000)
    dashboard = await startDashboardCli(["--port", "0", "--log", log])
    browser = await launchChromium()
    page = await browser.context.newPage()
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`)
    })
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await dashboard?.stop()
    await engine?.close({ graceMs: 0 })
  })

  const count = (state: string) => page.locator(`[data-testid="count-${state}"] .n`).first()

  it("shows the queue and updates its counts live, without reloading", async () => {
    await page.goto(`${dashboard.url}/#/`)
    const card = page.locator(`[data-testid="queue-card"][data-queue="${queue}"]`)
    await card.waitFor()
    await expect.poll(() => card.locator('[data-testid="count-completed"] .n').textContent()).toBe("3")
    expect(await card.locator('[data-testid="count-failed"] .n').textContent()).toBe("2")
    expect(await card.locator('[data-testid="paused"]').textContent()).toBe("running")
    expect(await card.locator('svg[data-testid="chart"] polyline[data-series="completed"]').count()).toBe(1)
    await expect.poll(() => page.locator('[data-testid="live"]').textContent()).toBe("live")

    await card.locator('[data-testid="queue-link"]').click()
    await page.locator('[data-testid="queue"] [data-testid="job-list"] table').waitFor()
    await page.evaluate(() => ((window as unknown as { __marker: string }).__marker = "same page"))
    const updatesBefore = Number((await page.locator('[data-testid="live"]').getAttribute("data-updates")) ?? 0)
    for (let i = 0; i < 5; i++) await engine.add("ok", { more: i })
    await expect.poll(() => count("completed").textContent(), { timeout: 20_000 }).toBe("8")
    expect(Number(await page.locator('[data-testid="live"]').getAttribute("data-updates"))).toBeGreaterThan(updatesBefore)
    // the list re-read itself too: the newest jobs are on top
    await expect.poll(() => page.locator('[data-testid="job-row"]').count(), { timeout: 10_000 }).toBe(10)
    expect(await page.evaluate(() => (window as unknown as { __marker?: string }).__marker)).toBe("same page")
  })

  it("lists failed jobs, opens one, retries it after confirmation and watches it complete", async () => {
    await page.locator('[data-testid="count-failed"]').first().click()
    const row = page.locator('[data-testid="job-row"][data-job="flaky-1"]')
    await row.waitFor()
    expect(await page.locator('[data-testid="job-row"]').count()).toBe(2)
    await row.locator("a").click()
    await page.locator('[data-testid="job-state"]').waitFor()
    expect(await page.locator('[data-testid="job-state"]').textContent()).toBe("failed")
    expect(await page.locator('[data-testid="job-error"]').textContent()).toBe("the mail server said no (first run)")
    expect(await page.locator('[data-testid="job-stack"]').textContent()).toMatch(/the mail server said no[\s\S]*\n\s+at /)
    expect(JSON.parse((await page.locator('[data-testid="job-data"]').textContent())!)).toEqual({ to: "ada@example.com" })
    expect(await page.locator('[data-testid="timeline-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-event")))).toEqual([
      "JobAdded",
      "JobStarted",
      "JobFailed"
    ])

    // Cancel changes nothing
    await page.locator('[data-testid="retry"]').click()
    await page.locator('[data-testid="confirm"]').waitFor()
    await page.locator('[data-testid="confirm-cancel"]').click()
    expect(await page.locator('[data-testid="confirm"]').count()).toBe(0)
    expect(runs.get("flaky-1")).toBe(1)

    await page.locator('[data-testid="retry"]').click()
    await page.locator('[data-testid="confirm-ok"]').click()
    await expect.poll(() => page.locator('[data-testid="toast"]').first().textContent()).toMatch(/retry of 'flaky-1' requested/)
    await expect.poll(() => page.locator('[data-testid="job-state"]').textContent(), { timeout: 20_000 }).toBe("completed")
    expect(runs.get("flaky-1")).toBe(2)
    expect(JSON.parse((await page.locator('[data-testid="job-result"]').textContent())!)).toEqual({ sentOnRun: 2 })
    await expect
      .poll(() => page.locator('[data-testid="timeline-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-event"))))
      .toEqual(["JobAdded", "JobStarted", "JobFailed", "JobRetried", "JobStarted", "JobCompleted"])
  })

  it("travels back in time to a job's first start, and verifies the log", async () => {
    await page.locator('[data-testid="timeline-row"][data-event="JobStarted"] [data-testid="as-of"]').first().click()
    await page.locator('[data-testid="travel-summary"]').waitFor({ timeout: 20_000 })
    expect(await page.locator('[data-testid="travel-job-state"]').textContent()).toBe("active")
    // as of then: the three first jobs had not all completed yet, and nothing had failed
    expect(await page.locator('[data-testid="then-failed"]').textContent()).toBe("0")
    const completedThen = Number(await page.locator('[data-testid="then-completed"]').textContent())
    expect(completedThen).toBeLessThanOrEqual(3)

    // a time before the job existed
    const added = (await engine.store.get("flaky-1"))!.createdAt
    await page.locator('[data-testid="until"]').fill(new Date(added - 1_000).toISOString())
    await page.locator('[data-testid="travel-go"]').click()
    await expect.poll(() => page.locator('[data-testid="travel-job-state"]').textContent(), { timeout: 20_000 }).toMatch(/did not exist yet/)

    await page.locator('[data-testid="verify"]').click()
    await expect.poll(() => page.locator('[data-testid="verify-summary"]').textContent(), { timeout: 30_000 }).toMatch(/^OK — \d+ events of 10 jobs, every transition legal/)
  })

  it("renders a job's HTML as text and runs none of it", async () => {
    await page.goto(`${dashboard.url}/#/q/${queue}?state=failed`)
    const row = page.locator('[data-testid="job-row"][data-job="evil-1"]')
    await row.waitFor()
    expect(await row.locator("td.err").textContent()).toBe(EVIL_ERROR)
    await row.locator("a").click()
    await page.locator('[data-testid="job-data"]').waitFor()
    expect(JSON.parse((await page.locator('[data-testid="job-data"]').textContent())!)).toEqual({ html: EVIL_DATA })
    expect(await page.locator('[data-testid="job-error"]').textContent()).toBe(EVIL_ERROR)
    expect(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined()
    // the page's own script is the only one; the job's markup made no element
    expect(await page.locator("script").count()).toBe(1)
    expect(await page.locator("main img").count()).toBe(0)
    expect(problems).toEqual([])
  })
})
