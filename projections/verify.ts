/**
 * Checks a log of events against the rules: per-job seq with no duplicate and no gap, no
 * event before its job's JobAdded, and every transition accepted by the job machine. Used by
 * `jobledger replay --verify`.
 *
 * Invariants:
 * - The machine is the only judge of legality (`beginJob`/`stepJob`), as in the engine.
 * - A job's pause flag follows its queue's events lazily: synced just before its next event,
 *   which equals applying each queue event to every job at once (outside waiting/paused a
 *   queue event only sets the flag; waiting/paused jobs have no event in between).
 * - A duplicate is skipped; after a gap or an illegal event the event still counts as
 *   seen (its seq is the job's latest), so one fault is reported once.
 * - A JobAdded for a job whose life ended (finished or removed), asked for anew (another
 *   `createdAt`), is a new life of the id, not a duplicate: a removed id may be added again,
 *   and an engine that cannot look ids up re-adds one past its retention.
 * - Queue events are counted and followed per (queue, partition): every partition's owner
 *   appends its own pause/resume with its own seq, and a job follows its partition's.
 * - A partition whose history before some offset is gone (a Kafka topic past its
 *   retention.ms) is verified from its snapshot (`VerifyStart`): the jobs, queue flag and
 *   schedules the snapshot holds are known at their seq; a job it let go of (finished, past
 *   its retention) is known again from a JobRetried that carries it, or a JobRemoved of it,
 *   as a reader restoring there would take them.
 */
import { beginJob, stepJob, type JobLife } from "../machines/job-machine.ts"
import { isScheduleBody, type EventEnvelope, type JobEventEnvelope, type QueueEventBody, type ScheduleEventBody } from "../machines/schema.ts"
import { advanceView, hasEnded, isFinished, isQueueBody, type JobView } from "./job-view.ts"
import type { ScheduleState } from "./partition-state.ts"

/** What can be wrong with one event. */
export type VerifyIssueKind = "illegal" | "duplicate" | "gap" | "unknown-job"

/** One event to verify: its position in its partition (give `partition` when there are several). */
export interface VerifyInput {
  readonly offset: number
  readonly envelope: EventEnvelope
  readonly partition?: number
}

/** One problem found, at the offset of the event that shows it. */
export interface VerifyIssue {
  readonly offset: number
  /** Set when the input named partitions. */
  readonly partition?: number
  /** `null` for a queue event. */
  readonly jobId: string | null
  readonly kind: VerifyIssueKind
  readonly message: string
}

/** The result of `verifyEvents`. */
export interface VerifyReport {
  readonly events: number
  readonly jobs: number
  readonly issues: ReadonlyArray<VerifyIssue>
  /** True when no issue was found. */
  readonly ok: boolean
}

interface JobTrack {
  life: JobLife
  seq: number
  /** When the current life was asked for (its JobAdded's createdAt, else its time). */
  createdAt: number
}
interface QueueTrack {
  paused: boolean
  seq: number
}

const PAUSED: QueueEventBody = { _tag: "QueuePaused" }
const RESUMED: QueueEventBody = { _tag: "QueueResumed" }

/** What a partition's snapshot says, for a verify of the events after it (the history before is gone). */
export interface VerifyStart {
  readonly queue: string
  readonly partition?: number
  readonly queuePaused: boolean
  readonly queueSeq: number
  readonly jobs: Iterable<JobView>
  readonly schedules: Iterable<ScheduleState>
}

/** Verifies events given in log order (per partition), each with its offset; `starts` for partitions verified from a snapshot. */
export function verifyEvents(events: Iterable<VerifyInput>, starts: ReadonlyArray<VerifyStart> = []): VerifyReport {
  const jobs = new Map<string, JobTrack>()
  const queues = new Map<string, QueueTrack>()
  const schedules = new Map<string, ScheduleTrack>()
  /** (queue, partition) keys verified from a snapshot. */
  const midHistory = new Set<string>()
  for (const start of starts) {
    const queueKey = `${start.queue}\u0000${start.partition ?? 0}`
    midHistory.add(queueKey)
    queues.set(queueKey, { paused: start.queuePaused, seq: start.queueSeq })
    for (const view of start.jobs) jobs.set(`${start.queue}\u0000${view.id}`, { life: view, seq: view.seq, createdAt: view.createdAt })
    for (const s of start.schedules)
      schedules.set(`${start.queue}\u0000${s.spec.id}`, { seq: s.seq, live: s.live, count: s.count, lastTick: s.lastTick ?? -Infinity })
  }
  const issues: Array<VerifyIssue> = []
  let count = 0
  for (const { offset, envelope: e, partition } of events) {
    count++
    const { jobId, body } = e
    const report = (kind: VerifyIssueKind, message: string) =>
      issues.push(partition === undefined ? { offset, jobId, kind, message } : { offset, partition, jobId, kind, message })
    const queueKey = `${e.queue}\u0000${partition ?? 0}`
    let queue = queues.get(queueKey)
    if (queue === undefined) queues.set(queueKey, (queue = { paused: false, seq: -1 }))
    if (isScheduleBody(body)) {
      if (jobId !== null) report("illegal", `${body._tag} is a schedule event but names job ${jobId}`)
      else checkSchedule(schedules, `${e.queue}\u0000${body._tag === "ScheduleUpserted" ? body.schedule.id : body.id}`, e.seq, body, report)
      continue
    }
    if (jobId === null || isQueueBody(body)) {
      if (jobId !== null || !isQueueBody(body)) {
        report("illegal", jobId === null ? `${body._tag} without a job id` : `${body._tag} is a queue event but names job ${jobId}`)
        continue
      }
      if (e.seq <= queue.seq) {
        report("duplicate", `queue event seq ${e.seq} already seen (last ${queue.seq})`)
        continue
      }
      if (e.seq > queue.seq + 1) report("gap", `queue event seq jumps from ${queue.seq} to ${e.seq}`)
      queue.seq = e.seq
      queue.paused = body._tag === "QueuePaused"
      continue
    }
    const key = `${e.queue}\u0000${jobId}`
    const job = jobs.get(key)
    if (job === undefined) {
      if (body._tag !== "JobAdded" && midHistory.has(queueKey)) {
        // a job the snapshot let go of: known again from what the event carries, as a reader knows it
        const known = letGoJob(e as JobEventEnvelope, queue.paused)
        if (known !== undefined) jobs.set(key, known)
        else report("unknown-job", `${body._tag} (seq ${e.seq}) of a job neither the snapshot nor the history after it knows`)
        continue
      }
      if (body._tag !== "JobAdded") {
        report("unknown-job", `${body._tag} (seq ${e.seq}) before the job's JobAdded`)
        continue
      }
      if (e.seq !== 0) report("gap", `JobAdded has seq ${e.seq}, expected 0`)
      jobs.set(key, { life: beginJob(body, e.time).life, seq: e.seq, createdAt: body.createdAt ?? e.time })
      continue
    }
    // a new life of an id whose previous life ended (see job-view.ts): legal, not a duplicate
    if (body._tag === "JobAdded" && e.seq === 0 && hasEnded(job.life.state) && (body.createdAt ?? e.time) !== job.createdAt) {
      jobs.set(key, { life: beginJob(body, e.time).life, seq: 0, createdAt: body.createdAt ?? e.time })
      continue
    }
    if (e.seq <= job.seq) {
      report("duplicate", `${body._tag} seq ${e.seq} already seen (last ${job.seq})`)
      continue
    }
    if (e.seq > job.seq + 1) report("gap", `seq jumps from ${job.seq} to ${e.seq} (${body._tag})`)
    job.seq = e.seq
    const life = synced(job.life, queue.paused)
    const step = stepJob(life, body)
    job.life = step.ok ? step.life : life
    if (!step.ok) report("illegal", `seq ${e.seq}: ${step.reason}`)
  }
  return { events: count, jobs: jobs.size, issues, ok: issues.length === 0 }
}

/** A job a snapshot no longer held, from a JobRetried carrying it or a JobRemoved of it (finished ones only). */
function letGoJob(e: JobEventEnvelope, queuePaused: boolean): JobTrack | undefined {
  if (e.body._tag === "JobRetried" && e.body.job !== undefined) {
    const advance = advanceView(undefined, e, queuePaused)
    return advance.kind === "changed" ? { life: advance.after, seq: e.seq, createdAt: advance.after.createdAt } : undefined
  }
  if (e.body._tag === "JobRemoved" && isFinished(e.body.from)) {
    // what the snapshot counted of it: a finished job; the machine still judges the removal
    const before: JobLife = { state: e.body.from, attemptsMade: 0, maxAttempts: 0, stalledCount: 0, queuePaused, runAt: e.time }
    const step = stepJob(before, e.body)
    return step.ok ? { life: step.life, seq: e.seq, createdAt: e.time } : undefined
  }
  return undefined
}

interface ScheduleTrack {
  seq: number
  live: boolean
  count: number
  lastTick: number
}

/**
 * A schedule's events: seq per schedule without duplicate or gap, ticks only of a defined
 * schedule, each tick later than the last and counting one more job.
 */
function checkSchedule(
  schedules: Map<string, ScheduleTrack>,
  key: string,
  seq: number,
  body: ScheduleEventBody,
  report: (kind: VerifyIssueKind, message: string) => void
): void {
  const track = schedules.get(key) ?? { seq: -1, live: false, count: 0, lastTick: -Infinity }
  schedules.set(key, track)
  if (seq <= track.seq) return void report("duplicate", `${body._tag} seq ${seq} already seen (last ${track.seq})`)
  if (seq > track.seq + 1) report("gap", `schedule seq jumps from ${track.seq} to ${seq} (${body._tag})`)
  track.seq = seq
  switch (body._tag) {
    case "ScheduleUpserted":
      if (!track.live) track.count = 0 // defined anew after a removal: its count starts again (its ticks still only move on)
      track.live = true
      return
    case "ScheduleRemoved":
      if (!track.live) report("illegal", "ScheduleRemoved of a schedule that is not defined")
      track.live = false
      return
    case "ScheduleTicked":
      if (!track.live) report("illegal", `ScheduleTicked at ${body.tick} of a schedule that is not defined`)
      else if (body.tick <= track.lastTick) report("illegal", `ScheduleTicked at ${body.tick}, not after the last tick ${track.lastTick}`)
      else if (body.count !== track.count + 1) report("illegal", `ScheduleTicked counts ${body.count} jobs, expected ${track.count + 1}`)
      track.count = body.count
      track.lastTick = Math.max(track.lastTick, body.tick)
      return
  }
}

function synced(life: JobLife, paused: boolean): JobLife {
  if (life.queuePaused === paused) return life
  const step = stepJob(life, paused ? PAUSED : RESUMED)
  return step.ok ? step.life : life
}
