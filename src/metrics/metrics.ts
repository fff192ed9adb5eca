/**
 * Prometheus metrics of the queues on a log (prom-client), for the dashboard's `/metrics` and
 * for users' own servers (`metrics()`).
 *
 * Invariants:
 * - Gauges are read at scrape time from the queues' read models after they caught up with
 *   the log (`jobledger_jobs` equals what `stats()` answers at that moment), and from the
 *   log's end offsets (dead letters, events after the latest snapshot).
 * - Counters and histograms count the live changes this process's read models announce:
 *   from the moment each queue was opened here, like any Prometheus client's counters from
 *   process start (`rate()` and `increase()` handle the restart). Durations come from the
 *   events' own times (see `observe.ts`), so they are the same whichever process reads.
 * - Label values are queue names, states and fixed words: no job id or job name ever
 *   becomes a label (their number is unbounded).
 * - Reading a snapshot may mean reading megabytes (its jobs): snapshot metrics are re-read
 *   at most every SNAPSHOT_TTL_MS per partition.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Registry } from "prom-client"
import { observeAppends } from "../engine/observations.ts"
import { topicsOf } from "../log/event-log.ts"
import { run } from "../run.ts"
import { LogReaders, type LogReadersOptions, type QueueReader } from "./log-readers.ts"
import { observe } from "./observe.ts"
import { lazyRequire } from "../lazy-require.ts"

/** prom-client, loaded by the first `metrics()` or `dashboard()` (see lazy-require.ts). */
export const promClient = lazyRequire<typeof import("prom-client")>("prom-client")

const STATES = ["waiting", "active", "completed", "failed", "delayed", "paused"] as const
const OUTCOMES = ["completed", "failed", "retrying"] as const
/** Seconds: from 1 ms (a no-op handler) to 10 min. */
export const HANDLER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
/** Seconds: from 1 ms (an idle engine) to an hour of backlog. */
export const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
/** Seconds: from 0.1 ms (an embedded commit) to a broker that takes 10 s. */
export const APPEND_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
const SNAPSHOT_TTL_MS = 10_000

interface SnapshotInfo {
  readonly at: number
  /** Per partition: events after the latest snapshot, and when that snapshot was written (ms; undefined: none). */
  readonly partitions: ReadonlyArray<{ readonly lag: number; readonly takenAt: number | undefined }>
}

/**
 * Registers jobledger's metrics on `registry`, fed by `readers`. Returns a function that
 * stops feeding them (the readers stay open: they belong to the caller).
 */
export const instrument = (readers: LogReaders, registry: Registry, report: (e: unknown) => void = () => {}): (() => void) => {
  const { Counter, Gauge, Histogram } = promClient()
  const snapshots = new Map<string, SnapshotInfo>()
  const guarded = async (what: (r: QueueReader) => Promise<void>) => {
    for (const r of readers.all()) {
      try {
        await what(r)
      } catch (e) {
        report(e)
      }
    }
  }
  const snapshotOf = async (r: QueueReader): Promise<SnapshotInfo> => {
    const cached = snapshots.get(r.name)
    if (cached !== undefined && Date.now() - cached.at < SNAPSHOT_TTL_MS) return cached
    const topic = topicsOf(r.name).events
    const partitions: Array<{ lag: number; takenAt: number | undefined }> = []
    for (let p = 0; p < r.partitions; p++) {
      const end = await run(readers.log.endOffset(topic, p))
      const snapshot = await run(readers.log.loadSnapshot(topic, p))
      if (snapshot === undefined || snapshot.offset === 0) {
        partitions.push({ lag: end, takenAt: undefined })
        continue
      }
      // written in the same transaction as the last event it covers: that record's append time
      const [last] = await run(readers.log.read(topic, p, snapshot.offset - 1, 1))
      partitions.push({ lag: Math.max(0, end - snapshot.offset), takenAt: last?.timestamp })
    }
    const info = { at: Date.now(), partitions }
    snapshots.set(r.name, info)
    return info
  }

  new Gauge({
    name: "jobledger_jobs",
    help: "Jobs of the queue in each state, as the queue's read model counts them (exact, whatever keep says).",
    labelNames: ["queue", "state"],
    registers: [registry],
    async collect() {
      await guarded(async (r) => {
        const stats = await r.stats()
        for (const state of STATES) this.set({ queue: r.name, state }, stats[state])
      })
    }
  })
  new Gauge({
    name: "jobledger_queue_paused",
    help: "1 while the queue is paused, else 0.",
    labelNames: ["queue"],
    registers: [registry],
    async collect() {
      await guarded(async (r) => {
        await r.model.caughtUp()
        this.set({ queue: r.name }, r.paused ? 1 : 0)
      })
    }
  })
  new Gauge({
    name: "jobledger_dead_letters",
    help: "Records on the queue's dead-letter topic (commands refused with a reason; the topic is never pruned).",
    labelNames: ["queue"],
    registers: [registry],
    async collect() {
      await guarded(async (r) => {
        const topic = topicsOf(r.name).deadLetter
        const partitions = (await run(readers.log.partitionCount(topic))) ?? 0
        let total = 0
        for (let p = 0; p < partitions; p++) total += await run(readers.log.endOffset(topic, p))
        this.set({ queue: r.name }, total)
      })
    }
  })
  new Gauge({
    name: "jobledger_snapshot_lag_events",
    help: "Events after the partition's latest snapshot: what a restarting engine or a new reader replays (all of them without a snapshot).",
    labelNames: ["queue", "partition"],
    registers: [registry],
    async collect() {
      await guarded(async (r) => {
        const info = await snapshotOf(r)
        info.partitions.forEach((p, i) => this.set({ queue: r.name, partition: String(i) }, p.lag))
      })
    }
  })
  new Gauge({
    name: "jobledger_snapshot_timestamp_seconds",
    help: "When the partition's latest snapshot was written (the append time of the last event it covers), in seconds since the epoch; absent without a snapshot.",
    labelNames: ["queue", "partition"],
    registers: [registry],
    async collect() {
      await guarded(async (r) => {
        const info = await snapshotOf(r)
        info.partitions.forEach((p, i) => {
          const labels = { queue: r.name, partition: String(i) }
          if (p.takenAt === undefined) this.remove(labels)
          else this.set(labels, p.takenAt / 1000)
        })
      })
    }
  })

  const added = new Counter({ name: "jobledger_jobs_added_total", help: "Jobs the engine accepted (JobAdded) since this process opened the queue.", labelNames: ["queue"], registers: [registry] })
  const completed = new Counter({ name: "jobledger_jobs_completed_total", help: "Jobs completed (JobCompleted) since this process opened the queue.", labelNames: ["queue"], registers: [registry] })
  const failed = new Counter({
    name: "jobledger_jobs_failed_total",
    help: "Jobs failed for good (JobFailed, or stalled past the limit) since this process opened the queue.",
    labelNames: ["queue"],
    registers: [registry]
  })
  const retried = new Counter({
    name: "jobledger_jobs_retried_total",
    help: "Retries since this process opened the queue: kind=automatic after a failed attempt (JobRetrying), kind=manual by retry(id) (JobRetried).",
    labelNames: ["queue", "kind"],
    registers: [registry]
  })
  const stalled = new Counter({ name: "jobledger_jobs_stalled_total", help: "Jobs handed back after their engine died (JobStalled) since this process opened the queue.", labelNames: ["queue"], registers: [registry] })
  const handler = new Histogram({
    name: "jobledger_handler_duration_seconds",
    help: "How long handler runs took, from JobStarted to the event that ended the run (outcome=completed|failed|retrying), by the events' times.",
    labelNames: ["queue", "outcome"],
    buckets: HANDLER_BUCKETS,
    registers: [registry]
  })
  const wait = new Histogram({
    name: "jobledger_job_wait_seconds",
    help: "How long jobs waited from due (added, or their delay or retry backoff over) to JobStarted, by the events' times.",
    labelNames: ["queue"],
    buckets: WAIT_BUCKETS,
    registers: [registry]
  })

  const append = new Histogram({
    name: "jobledger_log_append_seconds",
    help: "How long the log took to make an engine transaction durable (events, command offsets, snapshots), for the engines running in this process (result=ok|error).",
    labelNames: ["queue", "result"],
    buckets: APPEND_BUCKETS,
    registers: [registry]
  })

  const stops: Array<() => void> = []
  // engine-side: only the engines of this process are seen (no log event records it)
  stops.push(observeAppends((queue, seconds, ok) => append.observe({ queue, result: ok ? "ok" : "error" }, seconds)))
  stops.push(
    readers.onOpen((r) => {
      const queue = r.name
      // every series exists from the start, at 0, so a rate over a quiet queue is 0, not absent
      for (const c of [added, completed, failed, stalled]) c.inc({ queue }, 0)
      retried.inc({ queue, kind: "automatic" }, 0)
      retried.inc({ queue, kind: "manual" }, 0)
      for (const outcome of OUTCOMES) handler.zero({ queue, outcome })
      wait.zero({ queue })
      stops.push(
        r.onChange((change) => {
          const o = observe(change)
          if (o === undefined) return
          if (o.added) added.inc({ queue })
          if (o.completed) completed.inc({ queue })
          if (o.failed) failed.inc({ queue })
          if (o.stalled) stalled.inc({ queue })
          if (o.retried !== undefined) retried.inc({ queue, kind: o.retried })
          if (o.waitSeconds !== undefined) wait.observe({ queue }, o.waitSeconds)
          if (o.handler !== undefined) handler.observe({ queue, outcome: o.handler.outcome }, o.handler.seconds)
        })
      )
    })
  )
  return () => {
    for (const stop of stops.splice(0)) stop()
  }
}

export interface MetricsOptions extends LogReadersOptions {
  /** Register on this registry instead of a new one (e.g. to serve them with your own metrics). */
  readonly registry?: Registry
}

/** The metrics of the queues on a log, for a server of your own (see `metrics`). */
export interface QueueMetrics {
  /** The prom-client registry holding jobledger's metrics. */
  readonly registry: Registry
  /** The Content-Type of `text()` (Prometheus text format 0.0.4). */
  readonly contentType: string
  /** Resolves once the log and its queues are open (counters count from then on); rejects when the log cannot be opened. */
  ready(): Promise<void>
  /** The metrics in Prometheus text format, as of now. */
  text(): Promise<string>
  /** A Node request handler answering every request with `text()` (mount it on `/metrics`). */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void
  /** Stops reading and releases the log. */
  close(): Promise<void>
}

/**
 * Prometheus metrics of every queue on `log` (or of `queues`), read by a read model of this
 * process per queue: jobs by state, completed/failed/retried totals, handler duration and
 * wait histograms, dead letters and snapshot lag. Opens the log at once (never creating it).
 */
export const metrics = (options: MetricsOptions = {}): QueueMetrics => {
  const registry = options.registry ?? new (promClient().Registry)()
  const report = options.report ?? ((e: unknown) => console.error("[jobledger:metrics]", e instanceof Error ? e.message : e))
  const opening = LogReaders.open({ ...options, report }).then((readers) => ({ readers, stop: instrument(readers, registry, report) }))
  opening.catch(() => undefined) // reported to whoever awaits ready(), text() or the handler
  const text = async () => {
    await opening
    return registry.metrics()
  }
  return {
    registry,
    contentType: registry.contentType,
    ready: () => opening.then(() => undefined),
    text,
    handler: (_req, res) => {
      text().then(
        (body) => {
          res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" })
          res.end(body)
        },
        (e: unknown) => {
          res.writeHead(503, { "content-type": "text/plain; charset=utf-8" })
          res.end(`jobledger metrics unavailable: ${e instanceof Error ? e.message : String(e)}\n`)
        }
      )
    },
    close: async () => {
      const opened = await opening.catch(() => undefined)
      opened?.stop()
      await opened?.readers.close()
    }
  }
}
