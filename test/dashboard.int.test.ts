/**
 * The dashboard over HTTP, on real logs an engine works on: every route's answer, bad
 * parameters (400 with a reason, never a stack), unknown routes (404), the actions and
 * their CSRF/origin checks, authentication, the Host check, read-only views that create
 * nothing, live updates (SSE), and the `jobledger dashboard` command's safety rules.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { JobQueue } from "../src/index.ts"
import { createDashboard, type Dashboard } from "../src/dashboard/dashboard.ts"
import { EventLog } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { run } from "../src/run.ts"
import { ManagedRuntime } from "effect"
import { type Backend, kafkaBackend, memoryBackend, sqliteBackend, uniqueQueue, until } from "./support/backends.ts"
import { csrfOf, runDashboardCli, type Served, serve, startDashboardCli } from "./support/dashboard.ts"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
})

/** An engine on `log` whose `flaky` jobs fail on their first run and succeed on the second. */
const startEngine = (log: string, queue: string) => {
  const runs = new Map<string, number>()
  const q = new JobQueue(queue, { log, concurrency: 4 })
  q.on("error", () => {})
  q.process("flaky", async (job) => {
    const n = (runs.get(job.id) ?? 0) + 1
    runs.set(job.id, n)
    if (n === 1) throw new Error(`first run of ${job.id} fails <b>on purpose</b>`)
    return { run: n }
  })
  q.process("ok", async (job) => ({ echoed: job.data }))
  cleanups.push(() => q.close({ graceMs: 0 }))
  return q
}

const open = async (options: Parameters<typeof createDashboard>[0]): Promise<{ board: Dashboard; served: Served }> => {
  const board = createDashboard({ report: () => {}, ...options })
  cleanups.push(() => board.close())
  await board.ready()
  const served = await serve(board)
  cleanups.push(() => served.close())
  return { board, served }
}

const getJson = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, body: JSON.parse(text) as any, text, headers: res.headers }
}

const topicsOn = async (log: string): Promise<ReadonlyArray<string>> => {
  const runtime = ManagedRuntime.make(layerFromUrl(log))
  try {
    const service = await runtime.runPromise(EventLog)
    return await run(service.listTopics())
  } finally {
    await runtime.dispose()
  }
}

describe.each([memoryBackend, sqliteBackend] as ReadonlyArray<Backend>)("dashboard API on $name", (backend) => {
  it("answers every view from the log an engine works on", async () => {
    const log = backend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("ok", { n: 1 }, { jobId: "ok-1" })
    await engine.add("flaky", { html: "<script>window.__pwned = 1</script>" }, { jobId: "flaky-1" })
    for (let i = 0; i < 12; i++) await engine.add("ok", { n: i }, { jobId: `bulk-${String(i).padStart(2, "0")}` })
    await until(async () => (await engine.stats()).completed === 13 && (await engine.stats()).failed === 1, "13 completed, 1 failed")
    const { served } = await open({ log })
    const base = served.base

    const overview = await getJson(`${base}/api/overview`)
    expect(overview.status).toBe(200)
    const mine = overview.body.queues.find((q: any) => q.name === queue)
    expect(mine).toMatchObject({ name: queue, partitions: 1, paused: false, deadLetters: 0, stats: await engine.stats() })
    const series = mine.series.counts
    // the chart's past is read back from the log's tail: the jobs just run are in it
    expect(series.completed.reduce((a: number, b: number) => a + b, 0)).toBe(13)
    expect(series.failed.reduce((a: number, b: number) => a + b, 0)).toBe(1)

    const detail = await getJson(`${base}/api/queues/${queue}`)
    expect(detail.body.range.endOffsets[0]).toBeGreaterThan(40)
    expect(detail.body.range.firstTime).toBeLessThanOrEqual(detail.body.range.lastTime)

    // a page of failed jobs, then pages of completed ones through the cursor
    const failed = await getJson(`${base}/api/queues/${queue}/jobs?state=failed`)
    expect(failed.body).toMatchObject({ state: "failed", count: 1, held: 1, matched: 1 })
    expect(failed.body.jobs[0]).toMatchObject({ id: "flaky-1", state: "failed", error: "first run of flaky-1 fails <b>on purpose</b>" })
    expect(failed.body.jobs[0].data).toBeUndefined()
    const ids: Array<string> = []
    let cursor = ""
    do {
      const page = await getJson(`${base}/api/queues/${queue}/jobs?state=completed&limit=5${cursor ? `&cursor=${cursor}` : ""}`)
      expect(page.status).toBe(200)
      expect(page.body.jobs.length).toBeLessThanOrEqual(5)
      ids.push(...page.body.jobs.map((j: any) => j.id))
      cursor = page.body.next ?? ""
    } while (cursor !== "")
    expect(ids).toHaveLength(13)
    expect(new Set(ids).size).toBe(13)
    const search = await getJson(`${base}/api/queues/${queue}/jobs?search=BULK-0`)
    expect(search.body.jobs.map((j: any) => j.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `bulk-0${i}`))

    // the job page: data, error with stack, the timeline from the log
    const job = await getJson(`${base}/api/queues/${queue}/jobs/flaky-1`)
    expect(job.status).toBe(200)
    expect(job.body.source).toBe("index")
    expect(job.body.job).toMatchObject({ id: "flaky-1", state: "failed", data: { html: "<script>window.__pwned = 1</script>" } })
    expect(job.body.job.error.stack).toMatch(/first run of flaky-1 fails/)
    expect(job.body.timeline.map((e: any) => e.type)).toEqual(["JobAdded", "JobStarted", "JobFailed"])
    expect(job.body.timeline.map((e: any) => e.state)).toEqual(["waiting", "active", "failed"])
    const started = job.body.timeline[1]

    // time travel: the job and the queue as of the offset of its JobStarted
    const then = await getJson(`${base}/api/queues/${queue}/replay?until=${started.offset}&job=flaky-1`)
    expect(then.status).toBe(200)
    expect(then.body.events).toBe(started.offset + 1)
    expect(then.body.job.job.state).toBe("active")
    expect(then.body.job.timeline.map((e: any) => e.type)).toEqual(["JobAdded", "JobStarted"])
    const before = await getJson(`${base}/api/queues/${queue}/replay?until=${new Date(job.body.timeline[0].time - 1).toISOString()}&job=flaky-1`)
    expect(before.body.job).toBeNull()
    expect(before.body.stats.failed).toBe(0)
    const verified = await getJson(`${base}/api/queues/${queue}/replay?verify=1`)
    expect(verified.body.verify).toMatchObject({ ok: true, problems: 0, issues: [], jobs: 14 })
    expect(verified.body.stats).toEqual(await engine.stats())
  })

  it("refuses bad parameters with a 400 and a reason, unknown routes with a 404, other methods with a 405", async () => {
    const log = backend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("ok", {}, { jobId: "a" })
    await until(async () => (await engine.stats()).completed === 1, "a completed")
    const { served } = await open({ log })
    const base = served.base
    const cases: Array<[string, number, RegExp]> = [
      [`/api/queues/${queue}/jobs?limit=abc`, 400, /^limit must be a whole number from 1 to 500 \(got 'abc'\)$/],
      [`/api/queues/${queue}/jobs?limit=0`, 400, /limit must be/],
      [`/api/queues/${queue}/jobs?limit=-3`, 400, /limit must be/],
      [`/api/queues/${queue}/jobs?state=finished`, 400, /state must be one of/],
      [`/api/queues/${queue}/jobs?cursor=garbage`, 400, /cursor is not one this dashboard gave out/],
      [`/api/queues/${queue}/jobs?sort=name`, 400, /unknown parameter 'sort'/],
      [`/api/queues/${queue}/replay?until=last-tuesday`, 400, /until must be an offset/],
      [`/api/queues/${queue}/replay?verify=perhaps`, 400, /verify must be/],
      [`/api/queues/%E0%A4%A/jobs`, 400, /malformed path segment/],
      [`/api/queues/no-such-queue`, 404, /no queue 'no-such-queue' on this log/],
      [`/api/queues/${queue}/jobs/no-such-job`, 404, /job 'no-such-job' not found/],
      [`/api/nothing`, 404, /no such API route/],
      [`/admin`, 404, /no such page/],
      [`/api/queues/${queue}/jobs/a/retry`, 405, /GET is not allowed/]
    ]
    for (const [path, status, reason] of cases) {
      const res = await getJson(base + path)
      expect({ path, status: res.status }).toEqual({ path, status })
      expect(res.body.error).toMatch(reason)
      expect(res.text).not.toMatch(/\n\s+at |\.ts:\d+/) // no stack trace, no source path
      expect(res.headers.get("x-content-type-options")).toBe("nosniff")
    }
    expect((await fetch(`${base}/api/overview`, { method: "DELETE" })).status).toBe(405)
  })

  it("runs actions as commands on the log, only with the page's CSRF token from its own origin", async () => {
    const log = backend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("flaky", {}, { jobId: "f" })
    await until(async () => (await engine.stats()).failed === 1, "f failed")
    const { served } = await open({ log })
    const base = served.base
    const token = await csrfOf(base)
    const origin = base
    const post = (path: string, headers: Record<string, string>) => getJson(`${base}${path}`, { method: "POST", headers })

    // refused: no token, a wrong token, another origin, no origin at all — and nothing appended
    const eventsBefore = (await getJson(`${base}/api/queues/${queue}`)).body.range.endOffsets[0]
    const refused: Array<Record<string, string>> = [{ origin }, { origin, "x-jobledger-csrf": "forged" }, { origin: "http://evil.example", "x-jobledger-csrf": token }, { "x-jobledger-csrf": token }]
    for (const headers of refused) {
      const res = await post(`/api/queues/${queue}/jobs/f/retry`, headers)
      expect(res.status).toBe(403)
      expect(res.body.error).toMatch(/CSRF|cross-origin|Origin/)
      expect((await post(`/api/queues/${queue}/pause`, headers)).status).toBe(403)
    }
    expect((await engine.stats()).failed).toBe(1)
    expect((await getJson(`${base}/api/queues/${queue}`)).body.range.endOffsets[0]).toBe(eventsBefore)

    const ok = { origin, "x-jobledger-csrf": token }
    // retry: the engine runs it again, and its second run succeeds
    expect((await post(`/api/queues/${queue}/jobs/f/retry`, ok)).status).toBe(202)
    await until(async () => (await engine.stats()).completed === 1, "f completed after its retry")
    const retried = await getJson(`${base}/api/queues/${queue}/jobs/f`)
    expect(retried.body.timeline.map((e: any) => e.type)).toEqual(["JobAdded", "JobStarted", "JobFailed", "JobRetried", "JobStarted", "JobCompleted"])
    // a job that is not failed cannot be retried; an unknown one is not found
    const again = await post(`/api/queues/${queue}/jobs/f/retry`, ok)
    expect(again.status).toBe(409)
    expect(again.body.error).toBe("job 'f' is completed; only failed jobs can be retried")
    expect((await post(`/api/queues/${queue}/jobs/nope/retry`, ok)).status).toBe(404)
    // an action on a queue that is not on the log creates nothing
    expect((await post(`/api/queues/not-there/pause`, ok)).status).toBe(404)
    expect(await topicsOn(log)).not.toContain("jobledger.not-there.commands")

    // pause and resume
    expect((await post(`/api/queues/${queue}/pause`, ok)).status).toBe(202)
    await until(async () => (await getJson(`${base}/api/queues/${queue}`)).body.paused === true, "the queue paused")
    await engine.add("ok", {}, { jobId: "held" })
    await until(async () => (await engine.stats()).paused === 1, "the new job held as paused")
    expect((await post(`/api/queues/${queue}/resume`, ok)).status).toBe(202)
    await until(async () => (await engine.stats()).completed === 2, "the held job completed after resume")
    expect((await getJson(`${base}/api/queues/${queue}`)).body.paused).toBe(false)

    // remove a finished job: out of the views and counts, its history ends with JobRemoved
    expect((await post(`/api/queues/${queue}/jobs/held/cancel`, ok)).status).toBe(409) // not running
    expect((await post(`/api/queues/${queue}/jobs/held/remove`, ok)).status).toBe(202)
    await until(async () => (await engine.stats()).completed === 1, "the removed job out of the counts")
    expect((await getJson(`${base}/api/queues/${queue}/jobs/held`)).status).toBe(404)
  })

  it("streams counts as they change (Server-Sent Events)", async () => {
    const log = backend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("ok", {}, { jobId: "first" })
    await until(async () => (await engine.stats()).completed === 1, "first completed")
    const { served } = await open({ log })
    const controller = new AbortController()
    cleanups.push(async () => controller.abort())
    const res = await fetch(`${served.base}/api/events`, { signal: controller.signal })
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/)
    const reader = res.body!.getReader()
    let text = ""
    const read = async (until: (t: string) => boolean) => {
      while (!until(text)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`stream ended: ${text}`)
        text += new TextDecoder().decode(value)
      }
    }
    await read((t) => t.includes("event: hello"))
    await engine.add("ok", {}, { jobId: "second" })
    await read((t) => /"completed":2/.test(t))
    const update = text.split("\n\n").find((block) => block.includes('"completed":2') && block.startsWith("event: queues"))!
    const data = JSON.parse(update.split("\n").find((l) => l.startsWith("data: "))!.slice(6))
    const q = data.queues.find((x: any) => x.name === queue)
    expect(q.stats.completed).toBe(2)
    expect(q.jobs === null || q.jobs.includes("second")).toBe(true)
  })
})

describe("time travel", () => {
  it("gives a job's view and timeline equal to jobledger replay --until --job, at every offset", async () => {
    const log = sqliteBackend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("flaky", {}, { jobId: "t-1" })
    await until(async () => (await engine.stats()).failed === 1, "t-1 failed")
    await engine.pause()
    await until(async () => (await engine.store.get("t-1")) !== undefined && (await engine.stats()).failed === 1, "paused")
    await engine.add("ok", {}, { jobId: "t-2" }) // held paused, then released
    await until(async () => (await engine.stats()).paused === 1, "t-2 paused")
    await engine.retry("t-1")
    await until(async () => (await engine.stats()).paused === 2, "t-1 retried into the paused queue")
    await engine.resume()
    await until(async () => (await engine.stats()).completed === 2, "both completed")
    const { served } = await open({ log })
    const { replayQueue } = await import("../src/read/replay.ts")
    const { jobReport } = await import("../src/read/job-timeline.ts")
    const end = (await getJson(`${served.base}/api/queues/${queue}`)).body.range.endOffsets[0] as number
    const runtime = ManagedRuntime.make(layerFromUrl(log))
    cleanups.push(() => runtime.dispose())
    const service = await runtime.runPromise(EventLog)
    let seen = 0
    for (let offset = 0; offset < end; offset++) {
      for (const id of ["t-1", "t-2"]) {
        const answer = (await getJson(`${served.base}/api/queues/${queue}/replay?until=${offset}&job=${id}`)).body
        const expected = await jobReport(service, queue, id, await replayQueue(log, queue, { untilOffset: offset, jobId: id }), { untilOffset: offset })
        if (expected === undefined) expect(answer.job).toBeNull()
        else {
          seen++
          expect(answer.job).toEqual({ job: JSON.parse(JSON.stringify(expected.job)), partition: expected.timeline.partition, timeline: JSON.parse(JSON.stringify(expected.timeline.entries)) })
        }
      }
    }
    expect(seen).toBeGreaterThan(end) // both jobs exist over most of the log
  }, 120_000)
})

describe("dashboard safety", () => {
  it("asks for authentication when configured, and answers only loopback Host names when told", async () => {
    const log = sqliteBackend.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("ok", {}, { jobId: "a" })
    await until(async () => (await engine.stats()).completed === 1, "a completed")
    const { served } = await open({ log, auth: "admin:correct-horse", allowedHosts: "loopback" })
    const noAuth = await fetch(`${served.base}/api/overview`)
    expect(noAuth.status).toBe(401)
    expect(noAuth.headers.get("www-authenticate")).toMatch(/^Basic realm=/)
    expect((await fetch(`${served.base}/metrics`)).status).toBe(401)
    const wrong = { authorization: `Basic ${Buffer.from("admin:wrong-horse").toString("base64")}` }
    expect((await fetch(`${served.base}/api/overview`, { headers: wrong })).status).toBe(401)
    const right = { authorization: `Basic ${Buffer.from("admin:correct-horse").toString("base64")}` }
    expect((await fetch(`${served.base}/api/overview`, { headers: right })).status).toBe(200)
    // actions need the token as well as the credentials
    const token = await csrfOf(served.base, right)
    expect((await fetch(`${served.base}/api/queues/${queue}/pause`, { method: "POST", headers: { ...right, origin: served.base } })).status).toBe(403)
    expect((await fetch(`${served.base}/api/queues/${queue}/pause`, { method: "POST", headers: { ...right, origin: served.base, "x-jobledger-csrf": token } })).status).toBe(202)
    // a rebinding site's name pointed at 127.0.0.1: no answer (fetch cannot set Host; node:http can)
    const { request } = await import("node:http")
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${served.base}/api/overview`, { headers: { ...right, host: "evil.example:80" } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end()
    })
    expect(status).toBe(421)
  })

  it("serves the page with a CSP that allows only its own nonce'd script", async () => {
    const log = memoryBackend.freshLog()
    startEngine(log, uniqueQueue("dash"))
    const { served } = await open({ log })
    const res = await fetch(`${served.base}/`)
    const html = await res.text()
    const csp = res.headers.get("content-security-policy")!
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]
    expect(csp).toMatch(/default-src 'none'/)
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    expect(html.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`])
    expect(res.headers.get("x-frame-options")).toBe("DENY")
  })

  it("creates nothing: no file for a SQLite log that does not exist, no topics for queues that do not", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jobledger-dash-")), "missing.db")
    const board = createDashboard({ log: `sqlite:${path}`, report: () => {} })
    cleanups.push(() => board.close())
    await expect(board.ready()).rejects.toThrow(`no log at ${path}`)
    const served = await serve(board)
    cleanups.push(() => served.close())
    const res = await getJson(`${served.base}/api/overview`)
    expect(res.status).toBe(503)
    expect(res.body.error).toMatch(/no log at/)
    expect(existsSync(path)).toBe(false)

    const log = sqliteBackend.freshLog()
    startEngine(log, uniqueQueue("dash"))
    await until(async () => (await topicsOn(log)).length >= 3, "the engine's topics")
    const before = await topicsOn(log)
    const { served: s2 } = await open({ log })
    for (const path of ["/api/queues/ghost", "/api/queues/ghost/jobs", "/api/queues/ghost/jobs/x", "/api/queues/ghost/replay?verify=1"])
      expect((await fetch(s2.base + path)).status).toBe(404)
    expect(await topicsOn(log)).toEqual(before)
  })

  it("jobledger dashboard: refuses a non-loopback --host without auth; with auth it listens and asks for it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jobledger-dash-cli-"))
    const log = `sqlite:${join(dir, "jobs.db")}`
    const engine = startEngine(log, uniqueQueue("dash"))
    await engine.add("ok", {}, { jobId: "a" })
    await until(async () => (await engine.stats()).completed === 1, "a completed")

    const refused = await runDashboardCli(["--host", "0.0.0.0", "--port", "0", "--log", log])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/--host 0\.0\.0\.0 exposes the dashboard .* give --auth/)
    expect(refused.stderr).not.toMatch(/dashboard ready/)
    const weak = await runDashboardCli(["--host", "0.0.0.0", "--port", "0", "--log", log], { JOBLEDGER_DASHBOARD_AUTH: "admin:short" })
    expect(weak.code).toBe(2)
    expect(weak.stderr).toMatch(/at least 8/)
    const missing = await runDashboardCli(["--port", "0", "--log", `sqlite:${join(dir, "nothing-here.db")}`])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no log at/)
    expect(existsSync(join(dir, "nothing-here.db"))).toBe(false)

    // the token from a file; bound to every address, reached over loopback
    const tokenFile = join(dir, "token")
    writeFileSync(tokenFile, "bearer:0123456789abcdef0123456789\n")
    const child = await startDashboardCli(["--host", "0.0.0.0", "--port", "0", "--auth-file", tokenFile, "--log", log])
    cleanups.push(() => child.stop())
    expect(child.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/)
    const port = new URL(child.url).port
    expect((await fetch(`http://127.0.0.1:${port}/api/overview`)).status).toBe(401)
    expect((await fetch(`http://127.0.0.1:${port}/api/overview`, { headers: { authorization: "Bearer 0123456789abcdef0123456789" } })).status).toBe(200)
    expect(await child.stop()).toBe(0)
  }, 180_000)
})

describe.runIf(kafkaBackend !== undefined)("dashboard API on kafka", () => {
  it("lists the queue and shows a job's timeline by replay", async () => {
    const log = kafkaBackend!.freshLog()
    const queue = uniqueQueue("dash")
    const engine = startEngine(log, queue)
    await engine.add("flaky", { x: 1 }, { jobId: "k-1" })
    await until(async () => (await engine.stats()).failed === 1, "k-1 failed", 60_000)
    const { served } = await open({ log, queues: [queue] })
    const overview = await getJson(`${served.base}/api/overview`)
    expect(overview.body.queues.map((q: any) => q.name)).toEqual([queue])
    expect(overview.body.queues[0].partitions).toBe(3)
    const job = await getJson(`${served.base}/api/queues/${queue}/jobs/k-1`)
    expect(job.body.source).toBe("replay")
    expect(job.body.timeline.map((e: any) => e.type)).toEqual(["JobAdded", "JobStarted", "JobFailed"])
    const token = await csrfOf(served.base)
    expect((await fetch(`${served.base}/api/queues/${queue}/jobs/k-1/retry`, { method: "POST", headers: { origin: served.base, "x-jobledger-csrf": token } })).status).toBe(202)
    await until(async () => (await engine.stats()).completed === 1, "k-1 completed after its retry", 60_000)
  }, 120_000)
})
