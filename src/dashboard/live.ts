/**
 * Live updates for the dashboard's page: one Server-Sent Events stream per open page.
 *
 * Invariants:
 * - Every live change of a queue marks it changed; at most every FLUSH_MS, the counts of the
 *   changed queues (and the ids of the jobs that changed, up to MAX_IDS — else `null`:
 *   "many") are sent to every open stream. A page never reloads: it updates its counts and
 *   re-reads only what shows a changed job.
 * - A stream costs one entry in a set; nothing is buffered per client beyond the socket's own
 *   buffer, and a client that went away is dropped on its `close`.
 * - A comment line every HEARTBEAT_MS keeps proxies from closing an idle stream.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { LogReaders } from "../metrics/log-readers.ts"
import { BASE_HEADERS } from "./http.ts"

const FLUSH_MS = 250
const HEARTBEAT_MS = 15_000
const MAX_IDS = 100

export class LiveHub {
  private readonly clients = new Set<ServerResponse>()
  /** Queues changed since the last flush, with the job ids that changed (`null`: more than MAX_IDS). */
  private readonly changed = new Map<string, Set<string> | null>()
  private readonly flushTimer: NodeJS.Timeout
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly stops: Array<() => void> = []

  constructor(private readonly readers: LogReaders) {
    this.stops.push(
      readers.onOpen((r) => {
        this.mark(r.name, undefined, true)
        this.stops.push(r.onChange((change) => this.mark(r.name, change.envelope.jobId ?? undefined, false)))
      })
    )
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS)
    this.flushTimer.unref()
    this.heartbeatTimer = setInterval(() => this.write(": ping\n\n"), HEARTBEAT_MS)
    this.heartbeatTimer.unref()
  }

  /** Answers `req` with an event stream until the client goes away. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...BASE_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive", "x-accel-buffering": "no" })
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ queues: this.readers.all().map((r) => r.name) })}\n\n`)
    this.clients.add(res)
    req.on("close", () => this.clients.delete(res))
  }

  /** Ends every stream (the page's EventSource reconnects to whatever serves next). */
  close(): void {
    clearInterval(this.flushTimer)
    clearInterval(this.heartbeatTimer)
    for (const stop of this.stops.splice(0)) stop()
    for (const c of this.clients) c.end()
    this.clients.clear()
  }

  get size(): number {
    return this.clients.size
  }

  private mark(queue: string, jobId: string | undefined, opened: boolean): void {
    const ids = this.changed.has(queue) ? this.changed.get(queue)! : new Set<string>()
    if (opened) return void this.changed.set(queue, null)
    if (ids !== null && jobId !== undefined) ids.add(jobId)
    this.changed.set(queue, ids !== null && ids.size > MAX_IDS ? null : ids)
  }

  private flush(): void {
    if (this.changed.size === 0) return
    if (this.clients.size === 0) return void this.changed.clear()
    const queues = []
    for (const [name, ids] of this.changed) {
      const r = this.readers.all().find((q) => q.name === name)
      if (r === undefined) continue
      queues.push({ name, stats: r.model.stats(), paused: r.paused, jobs: ids === null ? null : [...ids] })
    }
    this.changed.clear()
    this.write(`event: queues\ndata: ${JSON.stringify({ at: Date.now(), queues })}\n\n`)
  }

  private write(text: string): void {
    for (const c of this.clients) c.write(text)
  }
}
