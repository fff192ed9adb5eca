/**
 * `createDashboard`: the web dashboard of the queues on a log, as a Node request handler
 * (mount it in your own `http.createServer`, or run `jobledger dashboard`).
 *
 * Routes (every other path is a 404, another method on a known path a 405):
 *   GET  /                                 the page (HTML; its script and style inline, nonce'd)
 *   GET  /metrics                          Prometheus metrics (text format 0.0.4)
 *   GET  /api/overview                     every queue: counts, paused, dead letters, throughput series
 *   GET  /api/events                       Server-Sent Events: counts of queues as they change
 *   GET  /api/queues/:q                    one queue, with its log range (end offsets, first/last event time)
 *   GET  /api/queues/:q/jobs               ?state=&limit=&cursor=&search= — a page of held jobs
 *   GET  /api/queues/:q/jobs/:id           a job: data, result, error with stack, timeline from the log
 *   GET  /api/queues/:q/replay             ?until=<offset|ISO time>&job=<id>&verify=1 — time travel, audit
 *   POST /api/queues/:q/jobs/:id/retry     retry a failed job            (CSRF token + same origin)
 *   POST /api/queues/:q/jobs/:id/remove    take a job that is not running out of the queue
 *   POST /api/queues/:q/jobs/:id/cancel    stop a running job (it fails, no retry)
 *   POST /api/queues/:q/pause | resume     pause / resume the queue      (CSRF token + same origin)
 *
 * Invariants:
 * - Reading never writes: views come from `LogReaders` (read models and replays); the only
 *   writes are the three actions, each one command appended through a `JobQueue`, exactly
 *   what `queue.retry(id)`, `pause()` and `resume()` append.
 * - Checks run before any route: Host (when `allowedHosts` is set), then authentication
 *   (when `auth` is set), then for POST the CSRF token and the origin.
 * - Nothing from a job is ever put into HTML by the server: the page is a fixed shell, and its
 *   script renders data as text nodes.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Registry } from "prom-client"
import { InvalidOptionError } from "../options.ts"
import { JobQueue } from "../queue.ts"
import { LogReaders, type LogReadersOptions } from "../metrics/log-readers.ts"
import { instrument, promClient } from "../metrics/metrics.ts"
import { DashboardData } from "./data.ts"
import { HttpError, badRequest, notFound, sendError, sendJson, sendText } from "./http.ts"
import { LiveHub } from "./live.ts"
import { renderPage } from "./page.ts"
import { MAX_LIMIT, Query, segment } from "./params.ts"
import { authorized, challenge, csrfRefusal, type DashboardAuth, hostOf, isLoopbackHost, newSecret, parseAuth } from "./security.ts"

export type { DashboardAuth } from "./security.ts"

export interface DashboardOptions extends LogReadersOptions {
  /**
   * Require authentication: `'user:password'` (HTTP basic) or `'bearer:TOKEN'` (an
   * `Authorization: Bearer TOKEN` header, or the token as the password of a browser's login
   * prompt). Without it anyone who can reach the handler can use it: keep it on loopback.
   */
  readonly auth?: string | DashboardAuth
  /**
   * The Host header values answered (e.g. `['dash.example.com']`, ports ignored), or
   * `'loopback'`: only names and addresses of this machine (a defence against DNS
   * rebinding for a dashboard on 127.0.0.1). Default: any.
   */
  readonly allowedHosts?: ReadonlyArray<string> | "loopback"
}

/** A Node request handler serving the dashboard, plus its lifecycle. */
export interface Dashboard {
  (req: IncomingMessage, res: ServerResponse): void
  /** Resolves once the log is open and its queues are read; rejects when the log cannot be opened. */
  ready(): Promise<void>
  /** Ends live streams, closes the queues opened for actions, releases the log. */
  close(): Promise<void>
}

const MAX_BODY_BYTES = 4_096

interface Opened {
  readonly readers: LogReaders
  readonly data: DashboardData
  readonly live: LiveHub
  readonly registry: Registry
  readonly stopMetrics: () => void
}

/**
 * The dashboard of every queue on `log` (or of `queues`): counts, throughput, job lists,
 * job timelines, time travel, verify, and retry/pause/resume. Opens the log at once, never
 * creating it (a SQLite path with no log is an error, reported by `ready()` and as 503s).
 */
export const createDashboard = (options: DashboardOptions = {}): Dashboard => {
  const report = options.report ?? ((e: unknown) => console.error("[jobledger:dashboard]", e instanceof Error ? e.message : e))
  const auth = typeof options.auth === "string" ? parseAuth(options.auth) : options.auth
  const allowed = options.allowedHosts === undefined || options.allowedHosts === "loopback" ? options.allowedHosts : new Set(options.allowedHosts.map((h) => hostOf(h)))
  const csrf = newSecret()
  const producers = new Map<string, JobQueue>()
  let closing: Promise<void> | undefined

  const opening: Promise<Opened> = LogReaders.open({ ...options, report }).then((readers) => {
    const registry = new (promClient().Registry)()
    return { readers, data: new DashboardData(readers), live: new LiveHub(readers), registry, stopMetrics: instrument(readers, registry, report) }
  })
  opening.catch(() => undefined) // answered as 503s and by ready()

  /** The producer of `queue`'s actions (opened on first use; its topics exist: the queue was found on the log). */
  const producer = (queue: string, url: string): JobQueue => {
    let q = producers.get(queue)
    if (q === undefined) {
      q = new JobQueue(queue, { log: url, ...(options.kafka === undefined ? {} : { kafka: options.kafka }) })
      q.on("error", report)
      producers.set(queue, q)
    }
    return q
  }

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname
    const method = req.method ?? "GET"
    const parts = path.split("/").filter((s) => s !== "")
    const get = method === "GET" || method === "HEAD"
    const only = (allowedMethod: "GET" | "POST") => {
      if (allowedMethod === "GET" ? !get : method !== "POST") throw new HttpError(405, `${method} is not allowed on ${path}`, { allow: allowedMethod === "GET" ? "GET, HEAD" : "POST" })
    }
    if (path === "/" || path === "/index.html") {
      only("GET")
      new Query(url.searchParams, [])
      const opened = await opening
      const page = renderPage({ csrf, log: opened.readers.url })
      sendText(res, 200, "text/html; charset=utf-8", page.html, { "content-security-policy": page.csp })
      return
    }
    if (path === "/metrics") {
      only("GET")
      const { registry } = await opening
      sendText(res, 200, registry.contentType, await registry.metrics())
      return
    }
    if (parts[0] !== "api") throw notFound(`no such page: ${path}`)
    const { data, live, readers } = await opening
    if (parts.length === 2 && parts[1] === "overview") {
      only("GET")
      new Query(url.searchParams, [])
      return sendJson(res, 200, await data.overview())
    }
    if (parts.length === 2 && parts[1] === "events") {
      only("GET")
      new Query(url.searchParams, [])
      return live.attach(req, res)
    }
    if (parts[1] !== "queues" || parts[2] === undefined) throw notFound(`no such API route: ${path}`)
    const queue = segment(parts[2])
    const rest = parts.slice(3)
    if (rest.length === 0) {
      only("GET")
      new Query(url.searchParams, [])
      return sendJson(res, 200, await data.queue(queue))
    }
    if (rest.length === 1 && rest[0] === "jobs") {
      only("GET")
      const q = new Query(url.searchParams, ["state", "limit", "cursor", "search"])
      const cursor = q.string("cursor", 1_000)
      const search = q.string("search")
      return sendJson(
        res,
        200,
        await data.jobs(queue, { state: q.state(), limit: q.int("limit", 1, MAX_LIMIT, 50), ...(cursor === undefined || cursor === "" ? {} : { cursor }), ...(search === undefined ? {} : { search }) })
      )
    }
    if (rest.length === 2 && rest[0] === "jobs") {
      only("GET")
      new Query(url.searchParams, [])
      return sendJson(res, 200, await data.job(queue, segment(rest[1]!)))
    }
    if (rest.length === 1 && rest[0] === "replay") {
      only("GET")
      const q = new Query(url.searchParams, ["until", "job", "verify"])
      const job = q.string("job")
      return sendJson(res, 200, await data.replay(queue, q.until() ?? {}, { ...(job === undefined || job === "" ? {} : { job }), verify: q.flag("verify") }))
    }
    // actions: one command each, through a JobQueue
    const jobAction = rest.length === 3 && rest[0] === "jobs" && (rest[2] === "retry" || rest[2] === "remove" || rest[2] === "cancel") ? rest[2] : undefined
    const action = rest.length === 1 && (rest[0] === "pause" || rest[0] === "resume") ? rest[0] : jobAction
    if (action === undefined) throw notFound(`no such API route: ${path}`)
    only("POST")
    new Query(url.searchParams, [])
    const refusal = csrfRefusal(req, csrf)
    if (refusal !== undefined) throw new HttpError(403, refusal)
    await data.reader(queue) // 404 for a queue not on the log: an action never creates one
    const q = producer(queue, readers.url)
    if (action === "retry" || action === "remove" || action === "cancel") {
      const id = segment(rest[1]!)
      const job = await data.job(queue, id) // 404 when there is no such job
      const state = job.job.state
      const refusal =
        action === "retry" && state !== "failed" ? `job '${id}' is ${state}; only failed jobs can be retried`
        : action === "cancel" && state !== "active" ? `job '${id}' is ${state}; only a running job can be cancelled`
        : action === "remove" && state === "active" ? `job '${id}' is running; cancel it first`
        : undefined
      if (refusal !== undefined) throw new HttpError(409, refusal)
      try {
        await (action === "retry" ? q.retry(id) : action === "remove" ? q.remove(id) : q.cancel(id, "cancelled from the dashboard"))
      } catch (e) {
        // it changed between the two looks (by someone else meanwhile)
        if (e instanceof InvalidOptionError) throw new HttpError(409, e.message)
        throw e
      }
      return sendJson(res, 202, { queue, job: id, action, requested: true })
    }
    await (action === "pause" ? q.pause() : q.resume())
    return sendJson(res, 202, { queue, action, requested: true })
  }

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    const fail = (e: unknown) => sendError(res, e, report)
    try {
      if (closing !== undefined) throw new HttpError(503, "the dashboard is shutting down")
      const host = req.headers.host ?? ""
      if (allowed === "loopback" ? !isLoopbackHost(hostOf(host)) : allowed !== undefined && !allowed.has(hostOf(host)))
        throw new HttpError(421, `this dashboard does not answer for host '${host.slice(0, 100)}'`)
      if (auth !== undefined && !authorized(auth, req.headers.authorization))
        throw new HttpError(401, "authentication required", { "www-authenticate": challenge(auth) })
      const length = Number(req.headers["content-length"] ?? 0)
      if (!(length >= 0) || length > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`)
      req.resume() // no route reads a body: drain it so the connection can be reused
      let url: URL
      try {
        url = new URL(req.url ?? "/", "http://dashboard.invalid")
      } catch {
        throw badRequest("malformed request URL")
      }
      route(req, res, url).catch((e: unknown) => fail(unavailable(e)))
    } catch (e) {
      fail(e)
    }
  }) as Dashboard

  /** A log that could not be opened is a 503 with its reason (the log's own message, no stack). */
  const unavailable = (e: unknown): unknown => {
    if (e instanceof HttpError) return e
    return e !== null && typeof e === "object" && (e as { _tag?: string })._tag === "LogError"
      ? new HttpError(503, `log unavailable: ${(e as { message?: string }).message ?? "unknown"}`)
      : (e as Error)?.name === "NoSuchLogError"
        ? new HttpError(503, (e as Error).message)
        : e
  }

  handler.ready = () => opening.then(() => undefined)
  handler.close = () => {
    closing ??= (async () => {
      const opened = await opening.catch(() => undefined)
      opened?.live.close()
      opened?.stopMetrics()
      await Promise.all([...producers.values()].map((q) => q.close({ graceMs: 0 }).catch(() => undefined)))
      await opened?.readers.close()
    })()
    return closing
  }
  return handler
}
