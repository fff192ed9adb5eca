/**
 * Replay for audit: rebuild a queue's projection from its events, optionally only up to an
 * offset or a time, and optionally re-check every transition with the job machine.
 *
 * Replay reads the log and nothing else; it never writes, so it is safe to run against a
 * live queue (it sees the log as of the moment each partition is read).
 *
 * A history an operator cut short still replays exactly: jobs pruned from a SQLite log are
 * counted from the log's pruned history, and a partition whose Kafka retention deleted its
 * start is replayed (and verified) from its snapshot on.
 */
import type * as ManagedRuntime from "effect/ManagedRuntime"
import { managedRuntime } from "../effect-runtime.ts"
import type { EventEnvelope } from "../../machines/schema.ts"
import type { PartitionState } from "../../projections/partition-state.ts"
import { QueueState } from "../../projections/queue-state.ts"
import { KEEP_ALL, type Retention } from "../../projections/retention.ts"
import { type VerifyReport, type VerifyStart, verifyEvents } from "../../projections/verify.ts"
import { decodeEvent } from "../codec.ts"
import { EventLog, type EventLogService, type PrunedHistory, type ScannedBatch, topicsOf } from "../log/event-log.ts"
import { layerFromUrl } from "../log/layers.ts"
import { run } from "../run.ts"
import { parseSnapshot } from "./restore-start.ts"
import type { QueueStats } from "../types.ts"

const READ_BATCH = 20_000

export interface ReplayOptions {
  /** Stop before the first event with an offset above this (per partition). */
  readonly untilOffset?: number
  /** Stop before the first event later than this time (ms since epoch). */
  readonly untilTime?: number
  /** Only this job's events are kept for its timeline (the projection still sees all). */
  readonly jobId?: string
  /** Which finished jobs the projection keeps (default: all of them); counts stay exact either way. */
  readonly retention?: Retention
  /** Called every few thousand events with (events so far, total end offsets). */
  readonly onProgress?: (done: number, total: number) => void
}

export interface ReplayedEvent {
  readonly partition: number
  readonly offset: number
  readonly envelope: EventEnvelope
}

export interface ReplayResult {
  readonly events: number
  readonly partitions: number
  readonly stats: QueueStats
  /** Every job of the queue as of the replay's end (finished ones too, unless `retention` let them go). */
  readonly projection: QueueState
  /** Records that did not decode, with their offsets. */
  readonly undecodable: ReadonlyArray<{ partition: number; offset: number; reason: string }>
  /** The events of `jobId`, when asked for. */
  readonly timeline: ReadonlyArray<ReplayedEvent>
  /** Present when `verify` was asked for. */
  readonly verify?: VerifyReport
  /**
   * Partitions an operator pruned (`jobledger prune`): their history starts there, with the
   * jobs that ended before `before` gone. A replay to the end counts those jobs in `stats`
   * (they are exact); one bounded by `untilOffset`/`untilTime` cannot place them, and leaves them out.
   */
  readonly pruned: ReadonlyArray<PrunedHistory & { readonly partition: number }>
  /**
   * Partitions whose oldest records a retention deleted (Kafka `?retainMs=`): their history
   * starts at `startOffset`, and the replay started from the snapshot at `from` (its jobs and
   * counts as the engine decided them; `verify` checks the events after it).
   */
  readonly truncated: ReadonlyArray<Truncated>
}

/** A partition whose history before `startOffset` is gone, replayed from its snapshot at `from`. */
export interface Truncated {
  readonly partition: number
  readonly startOffset: number
  readonly from: number
}

/** The history a bounded replay asks for is gone (retention), or no snapshot covers where the log now starts. */
export class HistoryGoneError extends Error {
  override readonly name = "HistoryGoneError"
}

/** The queue has no events topic on this log: never created (a mistyped name?). */
export class NoSuchQueueError extends Error {
  override readonly name = "NoSuchQueueError"
  constructor(
    readonly queue: string,
    readonly log: string
  ) {
    super(`no such queue '${queue}' on ${log}: it has no events topic (${topicsOf(queue).events}); check the queue name and the log URL`)
  }
}

/**
 * Replays a queue's events from an open log service. Reading never creates topics: a
 * queue that does not exist fails with NoSuchQueueError.
 */
export const replayFromLog = async (
  log: EventLogService,
  queue: string,
  options: ReplayOptions & { readonly verify?: boolean } = {}
): Promise<ReplayResult> => {
  const topic = topicsOf(queue).events
  const partitions = await run(log.partitionCount(topic))
  if (partitions === undefined || partitions === 0) throw new NoSuchQueueError(queue, log.url)
  const ends: Array<number> = []
  for (let p = 0; p < partitions; p++) ends.push(await run(log.endOffset(topic, p)))
  const total = ends.reduce((a, b) => a + b, 0)
  const projection = new QueueState(partitions, options.retention ?? KEEP_ALL)
  const bounded = options.untilOffset !== undefined || options.untilTime !== undefined
  const pruned = await prunedOf(log, topic, partitions)
  if (!bounded) for (const history of pruned) projection.partition(history.partition).countPruned(history)
  const truncated: Array<Truncated> = []
  const starts: Array<VerifyStart> = []
  const firsts: Array<number> = []
  for (let p = 0; p < partitions; p++) {
    const start = await truncatedStart(log, topic, p, options)
    firsts.push(start?.truncated.from ?? 0)
    if (start === undefined) continue
    const { state } = start
    projection.partitions[p] = state
    truncated.push(start.truncated)
    starts.push({ queue, partition: p, queuePaused: state.queuePaused, queueSeq: state.queueSeq, jobs: state.list(), schedules: state.scheduleStates() })
  }
  const undecodable: Array<{ partition: number; offset: number; reason: string }> = []
  const timeline: Array<ReplayedEvent> = []
  const checked: Array<{ partition: number; offset: number; envelope: EventEnvelope }> = []
  let events = 0
  for (let p = 0; p < partitions; p++) {
    reading: for await (const { offsets, values } of batchesOf(log, topic, p, firsts[p]!, ends[p]!)) {
      for (let i = 0; i < values.length; i++) {
        const offset = offsets[i]!
        if (options.untilOffset !== undefined && offset > options.untilOffset) break reading
        const decoded = decodeEvent(values[i]!)
        if (!decoded.ok) {
          undecodable.push({ partition: p, offset, reason: decoded.reason })
          continue
        }
        const envelope = decoded.value
        if (options.untilTime !== undefined && envelope.time > options.untilTime) break reading
        projection.partition(p).apply(envelope)
        events++
        if (options.verify === true) checked.push({ partition: p, offset, envelope })
        if (options.jobId !== undefined && envelope.jobId === options.jobId) timeline.push({ partition: p, offset, envelope })
      }
      options.onProgress?.(events, total)
    }
  }
  return {
    events,
    partitions,
    stats: { ...projection.stats() },
    projection,
    undecodable,
    timeline,
    ...(options.verify === true ? { verify: verifyEvents(checked, starts) } : {}),
    pruned,
    truncated
  }
}

/**
 * A partition's records in [from, end), in batches: through the log's `scan` where it has
 * one (a SQLite file reads ahead on a thread of its own), else `read` in a loop.
 */
async function* batchesOf(log: EventLogService, topic: string, partition: number, from: number, end: number): AsyncGenerator<ScannedBatch> {
  if (log.scan !== undefined) return yield* log.scan(topic, partition, from, end)
  let next = from
  while (next < end) {
    const records = await run(log.read(topic, partition, next, Math.min(READ_BATCH, end - next)))
    if (records.length === 0) return
    next = records[records.length - 1]!.offset + 1
    yield { offsets: records.map((r) => r.offset), values: records.map((r) => r.value) }
  }
}

/** What `jobledger prune` deleted, per partition that was pruned. */
const prunedOf = async (log: EventLogService, topic: string, partitions: number): Promise<Array<PrunedHistory & { readonly partition: number }>> => {
  const pruned: Array<PrunedHistory & { readonly partition: number }> = []
  for (let p = 0; p < partitions && log.prunedHistory !== undefined; p++) {
    const history = await run(log.prunedHistory(topic, p))
    if (history !== undefined) pruned.push({ partition: p, ...history })
  }
  return pruned
}

/**
 * For a partition whose log no longer starts at 0 (retention), the state to replay it from:
 * its snapshot, which must cover the start and the replay's bound. `undefined`: it starts at 0.
 */
const truncatedStart = async (
  log: EventLogService,
  topic: string,
  p: number,
  options: ReplayOptions
): Promise<{ readonly state: PartitionState; readonly truncated: Truncated } | undefined> => {
  const first = log.startOffset === undefined ? 0 : await run(log.startOffset(topic, p))
  if (first === 0) return undefined
  const snapshot = await run(log.loadSnapshot(topic, p))
  const state = snapshot === undefined ? undefined : parseSnapshot(snapshot.data, KEEP_ALL)
  if (snapshot === undefined || state === undefined || snapshot.offset < first)
    throw new HistoryGoneError(`${topic}/${p}: the log starts at offset ${first} (retention) and no snapshot covers it, so it cannot be replayed whole`)
  if (options.untilOffset !== undefined && options.untilOffset < snapshot.offset)
    throw new HistoryGoneError(`${topic}/${p}: the history before offset ${snapshot.offset} is gone (retention; the log starts at ${first}): replay --until a later offset`)
  if (options.untilTime !== undefined)
    throw new HistoryGoneError(`${topic}/${p}: the log starts at offset ${first} (retention), so a time may fall before its history: replay --until an offset at or after ${snapshot.offset}`)
  return { state, truncated: { partition: p, startOffset: first, from: snapshot.offset } }
}

/** Opens `logUrl`, replays `queue`, closes the log. */
export const replayQueue = async (
  logUrl: string,
  queue: string,
  options: ReplayOptions & { readonly verify?: boolean } = {}
): Promise<ReplayResult> => {
  const runtime = managedRuntime(layerFromUrl(logUrl))
  try {
    const log = await runtime.runPromise(EventLog)
    return await replayFromLog(log, queue, options)
  } finally {
    await runtime.dispose()
  }
}
