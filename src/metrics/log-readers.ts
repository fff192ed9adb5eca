/**
 * The read side of a whole log, for the dashboard and the Prometheus metrics: the queues on
 * it (its `jobledger.<queue>.events` topics) and one read model per queue, all on one
 * connection to the log.
 *
 * Invariants:
 * - Read-only: nothing here creates a file, a topic or a record. A SQLite log that does not
 *   exist is an error (opening it would create it), and a queue is only opened once its
 *   events and commands topics both exist (a Kafka cluster with topic auto-creation would
 *   create a topic a reader merely asked about).
 * - Cost follows live jobs: each queue's read model restores from its partitions' latest
 *   snapshots plus the events after them, and holds live jobs and the retained finished ones
 *   (the queue's default `keep`); the throughput chart's backfill reads a bounded tail.
 * - Every live change of every opened queue reaches the listeners, in log order per partition,
 *   after the read model applied it (so `stats()` in a listener already counts it).
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import { managedRuntime } from "../effect-runtime.ts"
import { existsSync } from "node:fs"
import { decodeEvent } from "../codec.ts"
import { EventLog, type EventLogService, type LogError, engineGroupOf, topicsOf } from "../log/event-log.ts"
import type { KafkaOptions } from "../log/kafka-options.ts"
import { layerFromUrl } from "../log/layers.ts"
import { parseLogUrl, resolveLogUrl } from "../log/log-url.ts"
import { DEFAULT_RETENTION } from "../../projections/retention.ts"
import { type Change, ReadModel } from "../read/read-model.ts"
import { run } from "../run.ts"
import type { QueueStats } from "../types.ts"
import { kindOf, ThroughputSeries } from "./series.ts"

/** The throughput window: 120 buckets of 5 s (the last 10 minutes). */
export const SERIES_BUCKET_MS = 5_000
export const SERIES_BUCKETS = 120
/** At most this many of a partition's last events are read at open to fill the chart's past. */
const BACKFILL_EVENTS = 20_000
const BACKFILL_BATCH = 5_000
const DISCOVER_EVERY_MS = 5_000

/** The log named does not exist (a SQLite path where nothing was written). */
export class NoSuchLogError extends Error {
  override readonly name = "NoSuchLogError"
}

const EVENTS_TOPIC = /^jobledger\.(.+)\.events$/

/** The queues among a log's topic names: those with an events and a commands topic. */
export const queuesOfTopics = (topics: ReadonlyArray<string>): Array<string> => {
  const names = new Set(topics)
  return topics
    .flatMap((t) => {
      const m = EVENTS_TOPIC.exec(t)
      return m === null ? [] : [m[1]!]
    })
    .filter((q) => names.has(topicsOf(q).commands))
    .sort()
}

/** One queue as this process reads it. */
export class QueueReader {
  private readonly listeners = new Set<(change: Change) => void>()

  constructor(
    readonly name: string,
    readonly partitions: number,
    readonly model: ReadModel,
    readonly series: ThroughputSeries,
    /** When this reader started counting live changes (ms since epoch). */
    readonly since: number
  ) {}

  /** Counts by state after everything in the log at the time of the call was applied. */
  async stats(): Promise<QueueStats> {
    await this.model.caughtUp()
    return { ...this.model.stats() }
  }

  /** True while some partition of the queue is paused (as applied so far). */
  get paused(): boolean {
    return this.model.queuePaused
  }

  /** Calls `listener` with every live change from now on; returns its removal. */
  onChange(listener: (change: Change) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** @internal the read model's announce */
  emit(change: Change): void {
    const kind = kindOf(change.envelope.body._tag, change.after?.state === "failed")
    if (kind !== undefined) this.series.record(kind, change.envelope.time, Date.now())
    for (const l of this.listeners) l(change)
  }
}

export interface LogReadersOptions {
  /** The log URL (default: `JOBLEDGER_LOG`, else `sqlite:./.jobledger/jobs.db`). */
  readonly log?: string
  /** Kafka connection settings the URL cannot say (TLS material, SASL credentials), as JobQueue's `kafka`. */
  readonly kafka?: KafkaOptions
  /** Only these queues (default: every queue on the log, including ones created later). */
  readonly queues?: ReadonlyArray<string>
  /** Problems survived in the background (a queue that failed to open, an undecodable event). */
  readonly report?: (error: unknown) => void
}

export class LogReaders {
  private readonly readers = new Map<string, Promise<QueueReader>>()
  private readonly opened = new Map<string, QueueReader>()
  private readonly openListeners = new Set<(reader: QueueReader) => void>()
  private known: ReadonlyArray<string> = []
  private discovering: Promise<void> | undefined
  private readonly timer: NodeJS.Timeout
  private closed = false

  private constructor(
    readonly url: string,
    readonly log: EventLogService,
    private readonly runtime: ManagedRuntime.ManagedRuntime<EventLog, LogError>,
    private readonly only: ReadonlySet<string> | undefined,
    private readonly report: (error: unknown) => void
  ) {
    this.timer = setInterval(() => void this.discover().catch(report), DISCOVER_EVERY_MS)
    this.timer.unref()
  }

  /** Opens the log (never creating it) and every queue on it; rejects when the log cannot be opened. */
  static async open(options: LogReadersOptions = {}): Promise<LogReaders> {
    const url = resolveLogUrl(options.log)
    const location = parseLogUrl(url)
    if (location.kind === "sqlite" && location.path !== ":memory:" && !existsSync(location.path))
      throw new NoSuchLogError(`no log at ${location.path} (nothing was written there yet)`)
    const runtime = managedRuntime(layerFromUrl(url, { kafka: options.kafka }))
    const exit = await runtime.runPromiseExit(EventLog)
    if (Exit.isFailure(exit)) {
      await runtime.dispose()
      throw Cause.squash(exit.cause)
    }
    const log = exit.value
    const report = options.report ?? ((e: unknown) => console.error("[jobledger:readers]", e instanceof Error ? e.message : e))
    const readers = new LogReaders(url, log, runtime, options.queues === undefined ? undefined : new Set(options.queues), report)
    await readers.discover()
    return readers
  }

  /** The queues on the log (as of the last discovery), opened or being opened. */
  get queues(): ReadonlyArray<string> {
    return this.known
  }

  /** The reader of `queue`, `undefined` when the log has no such queue (or it is not among `queues`). */
  async reader(queue: string): Promise<QueueReader | undefined> {
    if (!this.known.includes(queue)) await this.discover()
    return this.readers.get(queue)
  }

  /** The readers opened so far. */
  all(): ReadonlyArray<QueueReader> {
    return [...this.opened.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Calls `listener` for each queue reader once open (and for those already open). */
  onOpen(listener: (reader: QueueReader) => void): () => void {
    this.openListeners.add(listener)
    for (const r of this.opened.values()) listener(r)
    return () => this.openListeners.delete(listener)
  }

  /** Looks for queues (new topics) and opens the ones not open yet. */
  discover(): Promise<void> {
    this.discovering ??= this.discoverOnce().finally(() => (this.discovering = undefined))
    return this.discovering
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    const readers = await Promise.allSettled([...this.readers.values()])
    for (const r of readers) if (r.status === "fulfilled") await r.value.model.close()
    await this.runtime.dispose()
  }

  private async discoverOnce(): Promise<void> {
    if (this.closed) return
    const queues = queuesOfTopics(await run(this.log.listTopics())).filter((q) => this.only === undefined || this.only.has(q))
    this.known = queues
    await Promise.all(
      queues.map((q) => {
        let opening = this.readers.get(q)
        if (opening === undefined) {
          opening = this.openQueue(q)
          this.readers.set(q, opening)
          // a queue that failed to open is tried again at the next discovery
          opening.catch((e) => {
            this.readers.delete(q)
            this.report(e)
          })
        }
        return opening.catch(() => undefined)
      })
    )
  }

  private async openQueue(queue: string): Promise<QueueReader> {
    const topics = topicsOf(queue)
    const partitions = (await run(this.log.partitionCount(topics.events))) ?? 0
    if (partitions === 0) throw new Error(`queue '${queue}' has no events partitions`)
    const ends: Array<number> = []
    for (let p = 0; p < partitions; p++) ends.push(await run(this.log.endOffset(topics.events, p)))
    const series = new ThroughputSeries(SERIES_BUCKET_MS, SERIES_BUCKETS, Date.now())
    let reader: QueueReader | undefined
    const early: Array<Change> = []
    const model = await ReadModel.open({
      log: this.log,
      queue,
      topic: topics.events,
      commandsTopic: topics.commands,
      group: engineGroupOf(queue),
      partitions,
      retention: DEFAULT_RETENTION,
      pendingMaxAttempts: 0,
      announce: (change) => (reader === undefined ? early.push(change) : reader.emit(change)),
      report: this.report
    })
    reader = new QueueReader(queue, partitions, model, series, Date.now())
    for (const change of early.splice(0)) reader.emit(change)
    if (this.closed) {
      await model.close()
      return reader
    }
    this.opened.set(queue, reader)
    for (const l of this.openListeners) l(reader)
    void this.backfill(topics.events, ends, series).catch(this.report)
    return reader
  }

  /**
   * The chart's past: the events of the window among each partition's last BACKFILL_EVENTS
   * before `ends` (the ends read before the read model opened; its live changes start at or
   * after them, so nothing is counted twice — a few appended between the two reads may be missed).
   */
  private async backfill(topic: string, ends: ReadonlyArray<number>, series: ThroughputSeries): Promise<void> {
    const now = Date.now()
    const oldest = now - SERIES_BUCKET_MS * SERIES_BUCKETS
    for (let p = 0; p < ends.length; p++) {
      let from = Math.max(0, ends[p]! - BACKFILL_EVENTS)
      while (from < ends[p]! && !this.closed) {
        const batch = await run(this.log.read(topic, p, from, Math.min(BACKFILL_BATCH, ends[p]! - from)))
        if (batch.length === 0) break
        for (const record of batch) {
          if (record.offset >= ends[p]!) break
          if (record.timestamp < oldest) continue // appended before the window: its event is older still
          const decoded = decodeEvent(record.value)
          if (!decoded.ok || decoded.value.time < oldest) continue
          const e = decoded.value
          // without the job's state a JobStalled past the stall limit is not told apart from
          // one handed back: the chart's past leaves those (rare) failures out
          const kind = kindOf(e.body._tag, false)
          if (kind !== undefined) series.record(kind, e.time, now)
        }
        from = batch[batch.length - 1]!.offset + 1
      }
    }
  }
}
