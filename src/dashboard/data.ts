/**
 * What the dashboard's API answers, from the log's read side (`LogReaders`): queues and
 * their counts and throughput, pages of held jobs, one job with its timeline from the log,
 * and replays as of a point in time or an offset (time travel), with `verify` on demand.
 *
 * Invariants:
 * - Nothing here writes. A job's timeline comes from the log itself: by the index on
 *   SQLite and memory (`jobReportByLookup`, the job's own records, whatever the history);
 *   on Kafka by a replay with `{ jobId }` (what `jobledger job` does there).
 * - Replays read a queue's history up to their bound: one runs at a time in this process,
 *   later ones wait their turn, so a burst of clicks cannot start many scans at once.
 */
import type { JobStateName } from "../../machines/schema.ts"
import { decodeEvent } from "../codec.ts"
import { topicsOf } from "../log/event-log.ts"
import { toJob } from "../job.ts"
import type { LogReaders, QueueReader } from "../metrics/log-readers.ts"
import type { SeriesSnapshot } from "../metrics/series.ts"
import { replayFromLog, type ReplayedEvent } from "../read/replay.ts"
import { run } from "../run.ts"
import type { Job, QueueStats } from "../types.ts"
import { buildTimeline, jobReport, jobReportByLookup, type JobReport, queueEventsAfter, type ReplayBound } from "../read/job-timeline.ts"
import { PartitionState } from "../../projections/partition-state.ts"
import { DEFAULT_RETENTION, KEEP_ALL } from "../../projections/retention.ts"
import type { EventLogService } from "../log/event-log.ts"
import { notFound } from "./http.ts"
import { type JobsPage, matches, pageOfJobs, summaryOf, type JobSummary } from "./jobs-page.ts"

/**
 * The job `jobId` as of `bound`, from the events of it a replay kept (`replay.timeline`, cut
 * exactly where the replay stopped) and its partition's queue events up to the same bound,
 * found by index (the last one before the job gives the pause flag it starts under). The same
 * view and timeline `jobReport` gives from a replay that keeps every job.
 */
export const jobAsOf = async (
  log: EventLogService,
  queue: string,
  jobId: string,
  own: ReadonlyArray<ReplayedEvent>,
  bound: ReplayBound
): Promise<JobReport | undefined> => {
  const first = own.find((e) => e.envelope.jobId === jobId)
  if (first === undefined || log.recordsByKey === undefined) return undefined
  const before: Array<ReplayedEvent> = []
  for (const r of await run(log.recordsByKey(topicsOf(queue).events, null))) {
    if (r.partition !== first.partition || r.offset >= first.offset) continue
    const decoded = decodeEvent(r.value)
    if (decoded.ok && decoded.value.jobId === null) before.push({ partition: r.partition, offset: r.offset, envelope: decoded.value })
  }
  const after = await queueEventsAfter(log, queue, first, bound)
  const events = [...before.slice(-1), ...own.filter((e) => e.partition === first.partition), ...after].sort((a, b) => a.offset - b.offset)
  const state = new PartitionState(KEEP_ALL)
  for (const e of events) state.apply(e.envelope)
  const view = state.get(jobId)
  const timeline = buildTimeline(jobId, [...own, ...after])
  return view === undefined || timeline === undefined ? undefined : { job: toJob(view), timeline }
}

/** At most this many verify problems are sent (the count says how many there are). */
const MAX_ISSUES = 500

export interface QueueSummary {
  readonly name: string
  readonly partitions: number
  readonly paused: boolean
  readonly stats: QueueStats
  readonly deadLetters: number
  readonly series: SeriesSnapshot
  /** Since when this dashboard counts live changes (the series before it is read back from the log's tail). */
  readonly since: number
}

export interface QueueDetail extends QueueSummary {
  /** Events per partition (end offsets) and the times of the first and the last event. */
  readonly range: { readonly endOffsets: ReadonlyArray<number>; readonly firstTime?: number; readonly lastTime?: number }
  /** Jobs held in memory by the dashboard's read model (live and retained finished ones). */
  readonly held: number
}

export interface JobDetail {
  readonly job: Job
  readonly partition: number | null
  readonly partitions: number
  readonly timeline: JobReport["timeline"]["entries"]
  /** `index` (SQLite, memory), `replay` (Kafka), `pending` (added, no engine accepted it yet). */
  readonly source: "index" | "replay" | "pending"
}

export interface ReplayAnswer {
  readonly queue: string
  readonly until: { readonly offset?: number; readonly time?: number }
  readonly events: number
  readonly partitions: number
  readonly stats: QueueStats
  readonly undecodable: number
  readonly job?: { readonly job: Job; readonly partition: number; readonly timeline: JobReport["timeline"]["entries"] } | null
  readonly verify?: { readonly ok: boolean; readonly events: number; readonly jobs: number; readonly problems: number; readonly issues: ReadonlyArray<unknown> }
  readonly tookMs: number
}

export class DashboardData {
  private replaying: Promise<unknown> = Promise.resolve()

  constructor(readonly readers: LogReaders) {}

  get log() {
    return this.readers.log
  }

  async reader(queue: string): Promise<QueueReader> {
    const r = await this.readers.reader(queue)
    if (r === undefined) throw notFound(`no queue '${queue}' on this log`)
    return r
  }

  async overview(): Promise<{ readonly log: string; readonly backend: string; readonly queues: ReadonlyArray<QueueSummary> }> {
    await this.readers.discover()
    const queues = await Promise.all(this.readers.all().map((r) => this.summary(r)))
    return { log: this.readers.url, backend: this.log.backend, queues }
  }

  async queue(name: string): Promise<QueueDetail> {
    const r = await this.reader(name)
    const summary = await this.summary(r)
    return { ...summary, range: await this.range(r), held: r.model.state.size }
  }

  async jobs(
    name: string,
    query: { readonly state: JobStateName | undefined; readonly limit: number; readonly cursor?: string; readonly search?: string }
  ): Promise<JobsPage & { readonly state: string; readonly count: number; readonly held: number; readonly found?: JobSummary }> {
    const r = await this.reader(name)
    const stats = await r.stats()
    const held = r.model.list(query.state)
    const page = pageOfJobs(held, { limit: query.limit, ...(query.cursor === undefined ? {} : { cursor: query.cursor }), ...(query.search === undefined ? {} : { search: query.search }) })
    const count = query.state === undefined ? Object.values(stats).reduce((a, b) => a + b, 0) : query.state === "removed" ? 0 : stats[query.state]
    // a search by a full id also finds a job that left memory (on logs with an index)
    let found: JobSummary | undefined
    if (query.search !== undefined && query.search !== "" && query.cursor === undefined && !held.some((v) => v.id === query.search) && this.log.recordsByKey !== undefined) {
      const report = await jobReportByLookup(this.log, name, query.search).catch(() => undefined)
      if (report !== undefined && (query.state === undefined || report.job.state === query.state) && matches(report.job, query.search))
        found = summaryOf(report.job)
    }
    return { ...page, state: query.state ?? "all", count, held: held.length, ...(found === undefined ? {} : { found }) }
  }

  async job(name: string, id: string): Promise<JobDetail> {
    const r = await this.reader(name)
    const report =
      this.log.recordsByKey !== undefined
        ? await jobReportByLookup(this.log, name, id)
        : await this.exclusive(() => replayFromLog(this.log, name, { jobId: id }).then((replay) => jobReport(this.log, name, id, replay)))
    if (report !== undefined)
      return { job: report.job, partition: report.timeline.partition, partitions: r.partitions, timeline: report.timeline.entries, source: this.log.recordsByKey !== undefined ? "index" : "replay" }
    // no event names it: added but not accepted by an engine yet (its AddJob is in the commands topic)?
    await r.model.caughtUp()
    const pending = r.model.get(id)
    if (pending === undefined) throw notFound(`job '${id}' not found in queue '${name}'`)
    return { job: toJob(pending), partition: null, partitions: r.partitions, timeline: [], source: "pending" }
  }

  /** The queue (and `job`) as of `bound`, what `jobledger replay --until … [--job …] [--verify]` computes. */
  async replay(name: string, bound: ReplayBound, options: { readonly job?: string; readonly verify?: boolean }): Promise<ReplayAnswer> {
    await this.reader(name)
    // with an index, the job's view is folded from its own events (the replay keeps those),
    // so the replay itself may let finished jobs go: memory follows live jobs, not history
    const indexed = this.log.recordsByKey !== undefined
    return this.exclusive(async () => {
      const started = Date.now()
      const replay = await replayFromLog(this.log, name, {
        ...bound,
        ...(options.job === undefined ? {} : { jobId: options.job }),
        ...(options.verify === true ? { verify: true } : {}),
        ...(indexed ? { retention: DEFAULT_RETENTION } : {})
      })
      const job =
        options.job === undefined
          ? undefined
          : ((indexed ? await jobAsOf(this.log, name, options.job, replay.timeline, bound) : await jobReport(this.log, name, options.job, replay, bound)) ?? null)
      const verify = replay.verify
      return {
        queue: name,
        until: { ...(bound.untilOffset === undefined ? {} : { offset: bound.untilOffset }), ...(bound.untilTime === undefined ? {} : { time: bound.untilTime }) },
        events: replay.events,
        partitions: replay.partitions,
        stats: replay.stats,
        undecodable: replay.undecodable.length,
        ...(job === undefined ? {} : { job: job === null ? null : { job: job.job, partition: job.timeline.partition, timeline: job.timeline.entries } }),
        ...(verify === undefined
          ? {}
          : { verify: { ok: verify.ok, events: verify.events, jobs: verify.jobs, problems: verify.issues.length, issues: verify.issues.slice(0, MAX_ISSUES) } }),
        tookMs: Date.now() - started
      }
    })
  }

  private async summary(r: QueueReader): Promise<QueueSummary> {
    const stats = await r.stats()
    return { name: r.name, partitions: r.partitions, paused: r.paused, stats, deadLetters: await this.deadLetters(r.name), series: r.series.snapshot(Date.now()), since: r.since }
  }

  private async deadLetters(queue: string): Promise<number> {
    const topic = topicsOf(queue).deadLetter
    const partitions = (await run(this.log.partitionCount(topic))) ?? 0
    let total = 0
    for (let p = 0; p < partitions; p++) total += await run(this.log.endOffset(topic, p))
    return total
  }

  /** End offsets, and the times of the first and last events (one record read at each end). */
  private async range(r: QueueReader): Promise<QueueDetail["range"]> {
    const topic = topicsOf(r.name).events
    const endOffsets: Array<number> = []
    let firstTime: number | undefined
    let lastTime: number | undefined
    const timeAt = async (p: number, offset: number): Promise<number | undefined> => {
      const [record] = await run(this.log.read(topic, p, offset, 1))
      if (record === undefined) return undefined
      const decoded = decodeEvent(record.value)
      return decoded.ok ? decoded.value.time : undefined
    }
    for (let p = 0; p < r.partitions; p++) {
      const end = await run(this.log.endOffset(topic, p))
      endOffsets.push(end)
      if (end === 0) continue
      const first = await timeAt(p, 0)
      const last = await timeAt(p, end - 1)
      if (first !== undefined) firstTime = Math.min(firstTime ?? first, first)
      if (last !== undefined) lastTime = Math.max(lastTime ?? last, last)
    }
    return { endOffsets, ...(firstTime === undefined ? {} : { firstTime }), ...(lastTime === undefined ? {} : { lastTime }) }
  }

  /** Runs `f` after every replay asked for before it (one at a time). */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const next = this.replaying.then(f, f)
    this.replaying = next.catch(() => undefined)
    return next
  }
}
