/**
 * The dashboard's pure parts: the throughput series, what a change says for the metrics,
 * pages of jobs with cursors and search, query parameters, and the security checks.
 */
import type { IncomingMessage } from "node:http"
import { describe, expect, it } from "vitest"
import type { EventEnvelope } from "../machines/schema.ts"
import type { JobView } from "../projections/job-view.ts"
import { HttpError } from "../src/dashboard/http.ts"
import { decodeCursor, encodeCursor, pageOfJobs } from "../src/dashboard/jobs-page.ts"
import { escapeHtml, renderPage } from "../src/dashboard/page.ts"
import { Query } from "../src/dashboard/params.ts"
import { authorized, csrfRefusal, hostOf, isLoopbackHost, parseAuth } from "../src/dashboard/security.ts"
import { queuesOfTopics } from "../src/metrics/log-readers.ts"
import { observe } from "../src/metrics/observe.ts"
import { ThroughputSeries } from "../src/metrics/series.ts"

const view = (id: string, updatedAt: number, over: Partial<JobView> = {}): JobView =>
  ({
    id,
    queue: "q",
    name: `job-${id}`,
    data: null,
    state: "completed",
    attemptsMade: 0,
    maxAttempts: 0,
    stalledCount: 0,
    queuePaused: false,
    runAt: updatedAt,
    priority: 0,
    createdAt: updatedAt,
    updatedAt,
    seq: 2,
    ...over
  }) as JobView

const refusalOf = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(HttpError)
    expect((e as HttpError).status).toBe(400)
    return (e as HttpError).message
  }
  throw new Error("expected a 400")
}

describe("ThroughputSeries", () => {
  it("counts events in fixed buckets, oldest first, and forgets what leaves the window", () => {
    const s = new ThroughputSeries(1_000, 3, 10_500)
    s.record("completed", 10_100, 10_500)
    s.record("completed", 9_999, 10_500)
    s.record("failed", 8_000, 10_500)
    s.record("failed", 7_999, 10_500) // older than the window: dropped
    expect(s.snapshot(10_500)).toEqual({
      start: 8_000,
      bucketMs: 1_000,
      counts: { added: [0, 0, 0], completed: [0, 1, 1], failed: [1, 0, 0], retried: [0, 0, 0] }
    })
    // two seconds later the two oldest buckets are gone, the new ones empty
    expect(s.snapshot(12_000).counts.completed).toEqual([1, 0, 0])
    expect(s.snapshot(12_000).start).toBe(10_000)
    // an event from a clock ahead of ours counts in the newest bucket
    s.record("added", 99_999, 12_000)
    expect(s.snapshot(12_000).counts.added).toEqual([0, 0, 1])
    // a jump beyond the whole window clears everything
    expect(s.snapshot(100_000).counts.completed).toEqual([0, 0, 0])
  })
})

describe("observe", () => {
  const envelope = (tag: string, time: number, body: object = {}): EventEnvelope =>
    ({ v: 1, queue: "q", jobId: "j", time, seq: 1, body: { _tag: tag, ...body } }) as unknown as EventEnvelope

  it("derives the wait from the due time and the handler duration from the active view's updatedAt", () => {
    const waiting = view("j", 1_000, { state: "waiting", runAt: 1_500 })
    const active = view("j", 2_250, { state: "active" })
    expect(observe({ envelope: envelope("JobStarted", 2_250, { attempt: 0 }), before: waiting, after: active })).toMatchObject({ waitSeconds: 0.75, completed: false })
    expect(observe({ envelope: envelope("JobCompleted", 2_750), before: active, after: view("j", 2_750) })).toMatchObject({
      handler: { outcome: "completed", seconds: 0.5 },
      completed: true,
      failed: false
    })
    expect(observe({ envelope: envelope("JobRetrying", 3_250), before: active, after: view("j", 3_250, { state: "delayed" }) })).toMatchObject({
      handler: { outcome: "retrying", seconds: 1 },
      retried: "automatic"
    })
    expect(observe({ envelope: envelope("JobRetried", 4_000), before: view("j", 3_000, { state: "failed" }), after: view("j", 4_000, { state: "waiting" }) })).toMatchObject({
      retried: "manual",
      failed: false
    })
    // a stall that ends the job counts as a failure, not as a handler run
    const stalled = observe({ envelope: envelope("JobStalled", 5_000), before: active, after: view("j", 5_000, { state: "failed" }) })
    expect(stalled).toMatchObject({ failed: true, stalled: true })
    expect(stalled?.handler).toBeUndefined()
    // clocks of two machines: never a negative duration
    expect(observe({ envelope: envelope("JobStarted", 900), before: waiting, after: active })?.waitSeconds).toBe(0)
    // queue events say nothing about jobs
    expect(observe({ envelope: { ...envelope("QueuePaused", 1), jobId: null } as EventEnvelope, before: undefined, after: undefined })).toBeUndefined()
  })
})

describe("pageOfJobs", () => {
  const views = Array.from({ length: 25 }, (_, i) => view(`id-${String(i).padStart(2, "0")}`, 1_000 + Math.floor(i / 2)))

  it("pages newest first with a cursor, every job exactly once", () => {
    const seen: Array<string> = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = pageOfJobs(views, { limit: 7, ...(cursor === undefined ? {} : { cursor }) })
      expect(page.matched).toBe(25)
      seen.push(...page.jobs.map((j) => j.id))
      cursor = page.next
      pages++
    } while (cursor !== undefined)
    expect(pages).toBe(4)
    expect(seen).toHaveLength(25)
    expect(new Set(seen).size).toBe(25)
    const expected = [...views].sort((a, b) => b.updatedAt - a.updatedAt || a.id.localeCompare(b.id)).map((v) => v.id)
    expect(seen).toEqual(expected)
  })

  it("searches ids and names, case-insensitively, and sends no data", () => {
    const mixed = [...views, view("Special-Order", 5, { name: "Invoice" })]
    expect(pageOfJobs(mixed, { limit: 10, search: "special" }).jobs.map((j) => j.id)).toEqual(["Special-Order"])
    expect(pageOfJobs(mixed, { limit: 10, search: "INVOICE" }).matched).toBe(1)
    expect(pageOfJobs(mixed, { limit: 10, search: "job-id-1" }).matched).toBe(10)
    expect(pageOfJobs(mixed, { limit: 10, search: "nothing" })).toEqual({ jobs: [], matched: 0 })
    expect(Object.keys(pageOfJobs(mixed, { limit: 1 }).jobs[0]!)).not.toContain("data")
  })

  it("refuses a cursor it did not give out", () => {
    expect(refusalOf(() => decodeCursor("not-a-cursor"))).toMatch(/cursor is not one this dashboard gave out/)
    expect(decodeCursor(encodeCursor({ updatedAt: 5, id: "a" }))).toEqual({ updatedAt: 5, id: "a" })
  })
})

describe("Query", () => {
  const q = (text: string, allowed: ReadonlyArray<string>) => new Query(new URLSearchParams(text), allowed)

  it("gives a 400 with the reason for every bad parameter", () => {
    expect(refusalOf(() => q("limit=abc", ["limit"]).int("limit", 1, 500, 50))).toBe("limit must be a whole number from 1 to 500 (got 'abc')")
    expect(refusalOf(() => q("limit=0", ["limit"]).int("limit", 1, 500, 50))).toMatch(/from 1 to 500/)
    expect(refusalOf(() => q("limit=9999", ["limit"]).int("limit", 1, 500, 50))).toMatch(/got '9999'/)
    expect(refusalOf(() => q("state=done", ["state"]).state())).toMatch(/state must be one of waiting, active/)
    expect(refusalOf(() => q("until=yesterday", ["until"]).until())).toMatch(/until must be an offset .* or an ISO 8601 time/)
    expect(refusalOf(() => q("verify=maybe", ["verify"]).flag("verify"))).toMatch(/verify must be 1, true, 0 or false/)
    expect(refusalOf(() => q("limt=5", ["limit"]))).toBe("unknown parameter 'limt' (this route takes limit)")
    expect(refusalOf(() => q("limit=5&limit=6", ["limit"]))).toMatch(/more than once/)
  })

  it("reads good parameters", () => {
    expect(q("limit=20", ["limit"]).int("limit", 1, 500, 50)).toBe(20)
    expect(q("", ["limit"]).int("limit", 1, 500, 50)).toBe(50)
    expect(q("until=12", ["until"]).until()).toEqual({ untilOffset: 12 })
    expect(q("until=2025-06-01T12:00:00Z", ["until"]).until()).toEqual({ untilTime: Date.parse("2025-06-01T12:00:00Z") })
    expect(q("state=all", ["state"]).state()).toBeUndefined()
    expect(q("verify=1", ["verify"]).flag("verify")).toBe(true)
  })
})

describe("security", () => {
  it("parses auth specs and refuses weak or malformed ones", () => {
    expect(parseAuth("admin:correct-horse")).toEqual({ kind: "basic", user: "admin", password: "correct-horse" })
    expect(parseAuth("bearer:0123456789abcdef0123")).toEqual({ kind: "bearer", token: "0123456789abcdef0123" })
    expect(() => parseAuth("admin")).toThrow(/user:password/)
    expect(() => parseAuth("admin:short")).toThrow(/at least 8/)
    expect(() => parseAuth("bearer:short")).toThrow(/at least 16/)
  })

  it("checks Authorization headers", () => {
    const basic = parseAuth("admin:correct-horse")
    const b64 = (s: string) => Buffer.from(s).toString("base64")
    expect(authorized(basic, `Basic ${b64("admin:correct-horse")}`)).toBe(true)
    expect(authorized(basic, `Basic ${b64("admin:wrong-horse")}`)).toBe(false)
    expect(authorized(basic, `Basic ${b64("root:correct-horse")}`)).toBe(false)
    expect(authorized(basic, undefined)).toBe(false)
    expect(authorized(basic, "Bearer correct-horse")).toBe(false)
    const bearer = parseAuth("bearer:0123456789abcdef0123")
    expect(authorized(bearer, "Bearer 0123456789abcdef0123")).toBe(true)
    expect(authorized(bearer, "Bearer 0123456789abcdef0124")).toBe(false)
    // a browser's login prompt: the token as the password of any user
    expect(authorized(bearer, `Basic ${b64("me:0123456789abcdef0123")}`)).toBe(true)
  })

  it("tells loopback hosts from others", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "app.localhost"]) expect(isLoopbackHost(h)).toBe(true)
    for (const h of ["0.0.0.0", "::", "192.168.1.4", "example.com", "localhost.example.com", "10.0.0.1"]) expect(isLoopbackHost(h)).toBe(false)
    expect(hostOf("[::1]:3000")).toBe("[::1]")
    expect(hostOf("Example.com:80")).toBe("example.com")
  })

  it("refuses a POST without the page's token or from another origin", () => {
    const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage
    const ok = { host: "127.0.0.1:3000", origin: "http://127.0.0.1:3000", "x-jobledger-csrf": "tok" }
    expect(csrfRefusal(req(ok), "tok")).toBeUndefined()
    expect(csrfRefusal(req({ ...ok, "x-jobledger-csrf": "other" }), "tok")).toMatch(/CSRF token/)
    const { "x-jobledger-csrf": _, ...noToken } = ok
    expect(csrfRefusal(req(noToken), "tok")).toMatch(/CSRF token/)
    expect(csrfRefusal(req({ ...ok, origin: "http://evil.example" }), "tok")).toMatch(/cross-origin request refused/)
    const { origin: __, ...noOrigin } = ok
    expect(csrfRefusal(req(noOrigin), "tok")).toMatch(/no Origin or Referer/)
    expect(csrfRefusal(req({ ...noOrigin, referer: "http://127.0.0.1:3000/#/q/x" }), "tok")).toBeUndefined()
  })

  it("puts nothing unescaped into the page and allows only its own nonce'd script", () => {
    expect(escapeHtml(`<script>"x"&'y'</script>`)).toBe("&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;")
    const page = renderPage({ csrf: "tok", log: `sqlite:/tmp/"><script>alert(1)</script>` })
    expect(page.html).not.toContain("<script>alert(1)")
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.csp)?.[1]
    expect(nonce).toBeDefined()
    expect(page.csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    // every script element carries the nonce, and there is exactly one
    expect(page.html.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`])
    expect(renderPage({ csrf: "tok", log: "x" }).csp).not.toBe(page.csp) // a fresh nonce per page
  })
})

describe("queuesOfTopics", () => {
  it("finds queues by their events and commands topics", () => {
    expect(
      queuesOfTopics(["jobledger.a.events", "jobledger.a.commands", "jobledger.a.dead-letter", "jobledger.b.c.events", "jobledger.b.c.commands", "jobledger.half.events", "other", "jobledger.a.snapshots"])
    ).toEqual(["a", "b.c"])
  })
})

describe("the page's embedded assets", () => {
  it("assets.generated.ts is what scripts/embed-assets.mjs makes of src/dashboard/assets/", async () => {
    const { readFileSync } = await import("node:fs")
    const { generated } = (await import("../scripts/embed-assets.mjs")) as { generated: () => string }
    expect(readFileSync(new URL("../src/dashboard/assets.generated.ts", import.meta.url), "utf8")).toBe(generated())
  })
})
