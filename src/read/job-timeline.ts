/**
 * One job's history as the log holds it: its view and its timeline, found by a replay or
 * by an indexed lookup. The CLI (`job`, `replay --job`) and the dashboard both read it.
 *
 * The state of each entry is decided by the job machine (`evolveHistory`), exactly as the
 * engine and `replay --verify` decide it, so the timeline is an audit, not a summary.
 */
import { emptyHistory, evolveHistory, type TimelineEntry } from "../../projections/history.ts"
import type { EventEnvelope } from "../../machines/schema.ts"
import { PartitionState } from "../../projections/partition-state.ts"
import { KEEP_ALL } from "../../projections/retention.ts"
import { decodeEvent } from "../codec.ts"
import { type EventLogService, type LogRecord, topicsOf } from "../log/event-log.ts"
import { toJob } from "../job.ts"
import type { ReplayResult, ReplayedEvent } from "./replay.ts"
import { run } from "../run.ts"
import type { Job } from "../types.ts"

export interface JobTimeline {
  /** The partition holding the job's events (one job's life stays on one partition). */
  readonly partition: number
  readonly entries: ReadonlyArray<TimelineEntry>
}

/** A replay's bound, as `--until` gives it. */
export interface ReplayBound {
  readonly untilOffset?: number
  readonly untilTime?: number
}

const READ_BATCH = 5_000
/** Queue events are the only ones without a job: skip the others without decoding them. */
const QUEUE_EVENT = /"jobId"\s*:\s*null/

/**
 * The queue events (pause, resume) of the partition of `first` after it, up to the same
 * bound as the replay. A replay keeps only the job's own events, but pause and resume move
 * a waiting job too, and without them the machine would refuse the job's next event.
 */
export const queueEventsAfter = async (
  log: EventLogService,
  queue: string,
  first: ReplayedEvent,
  bound: ReplayBound
): Promise<Array<ReplayedEvent>> => {
  const topic = topicsOf(queue).events
  const { partition } = first
  const end = await run(log.endOffset(topic, partition))
  const found: Array<ReplayedEvent> = []
  let from = first.offset + 1
  while (from < end) {
    const batch = await run(log.read(topic, partition, from, Math.min(READ_BATCH, end - from)))
    if (batch.length === 0) break
    for (const record of batch) {
      if (bound.untilOffset !== undefined && record.offset > bound.untilOffset) return found
      if (!QUEUE_EVENT.test(record.value)) continue
      const decoded = decodeEvent(record.value)
      if (!decoded.ok || decoded.value.jobId !== null) continue
      if (bound.untilTime !== undefined && decoded.value.time > bound.untilTime) return found
      found.push({ partition, offset: record.offset, envelope: decoded.value })
    }
    from = batch[batch.length - 1]!.offset + 1
  }
  return found
}

/**
 * The timeline of `jobId`, in log order, from its events (a replay's `timeline`) and its
 * partition's queue events (`queueEventsAfter`).
 */
export const buildTimeline = (jobId: string, events: ReadonlyArray<ReplayedEvent>): JobTimeline | undefined => {
  const first = events.find((e) => e.envelope.jobId === jobId)
  if (first === undefined) return undefined
  const mine = events
    .filter((e) => e.partition === first.partition && (e.envelope.jobId === jobId || e.envelope.jobId === null))
    .sort((a, b) => a.offset - b.offset)
  let history = emptyHistory
  for (const e of mine) history = evolveHistory(history, e.envelope, e.offset)
  return { partition: first.partition, entries: history.entries }
}

/** The job's timeline from a replay made with `{ jobId }`, completed with its partition's queue events. */
export const jobTimeline = async (
  log: EventLogService,
  queue: string,
  jobId: string,
  kept: ReadonlyArray<ReplayedEvent>,
  bound: ReplayBound = {}
): Promise<JobTimeline | undefined> => {
  const first = kept.find((e) => e.envelope.jobId === jobId)
  if (first === undefined) return undefined
  return buildTimeline(jobId, [...kept, ...(await queueEventsAfter(log, queue, first, bound))])
}

/** One job as a replay left it: its view and its timeline. */
export interface JobReport {
  readonly job: Job
  readonly timeline: JobTimeline
}

/**
 * The job `jobId` from a replay made with `{ jobId }` (and the same `bound`); `undefined`
 * when no event up to the bound names it. `job` and `replay --job` both answer with it.
 */
export const jobReport = async (
  log: EventLogService,
  queue: string,
  jobId: string,
  replay: ReplayResult,
  bound: ReplayBound = {}
): Promise<JobReport | undefined> => {
  const view = replay.projection.get(jobId)
  if (view === undefined) return undefined
  const timeline = await jobTimeline(log, queue, jobId, replay.timeline, bound)
  return timeline === undefined ? undefined : { job: toJob(view), timeline }
}

/**
 * The job `jobId` from its own records and its partition's queue events, found by an
 * indexed lookup (logs with `recordsByKey`: SQLite, memory) — no replay, whatever the
 * history. `undefined` when no event names the job.
 */
export const jobReportByLookup = async (log: EventLogService, queue: string, jobId: string): Promise<JobReport | undefined> => {
  const byKey = log.recordsByKey
  if (byKey === undefined) throw new Error(`${log.url} cannot look jobs up by id`)
  const topic = topicsOf(queue).events
  const decodeAll = (records: ReadonlyArray<LogRecord>, keep: (e: EventEnvelope) => boolean): Array<ReplayedEvent> =>
    records.flatMap((r) => {
      const decoded = decodeEvent(r.value)
      return decoded.ok && keep(decoded.value) ? [{ partition: r.partition, offset: r.offset, envelope: decoded.value }] : []
    })
  const own = decodeAll(await run(byKey(topic, jobId)), (e) => e.jobId === jobId)
  const first = own[0]
  if (first === undefined) return undefined
  const queueEvents = decodeAll(await run(byKey(topic, null)), (e) => e.jobId === null).filter((e) => e.partition === first.partition)
  const after = queueEvents.filter((e) => e.offset > first.offset)
  // the pause flag the job was added under comes from the last queue event before it
  const before = queueEvents.filter((e) => e.offset < first.offset).slice(-1)
  const state = new PartitionState(KEEP_ALL)
  for (const e of [...before, ...own, ...after].sort((a, b) => a.offset - b.offset)) state.apply(e.envelope)
  const view = state.get(jobId)
  const timeline = buildTimeline(jobId, [...own, ...after])
  return view === undefined || timeline === undefined ? undefined : { job: toJob(view), timeline }
}
