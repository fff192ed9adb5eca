/**
 * The schedules of one partition, as its owner keeps them ticking.
 *
 * Invariants:
 * - Only the partition's owner ticks its schedules, and a tick is decided once: its
 *   ScheduleTicked event and the AddJob of the job `<id>:<tick>` go into the same
 *   transaction (the event through `decide`, the command through `addJob`, both to the
 *   owner's Appender before it cuts the next transaction), so a crash or a hand-over can
 *   neither repeat nor lose a tick's job.
 * - At most one timer entry per schedule and time; a stale one (schedule updated, removed
 *   or at its limit) finds nothing due and only re-arms.
 * - Ticks missed while no engine ran coalesce: the first tick after a restore is the latest
 *   one due (`latestDue`), standing for all of them.
 */
import { ENVELOPE_VERSION, type AddJob, type CommandEnvelope, type ScheduleEventBody, type ScheduleSpec } from "../../machines/schema.ts"
import type { PartitionState, ScheduleState } from "../../projections/partition-state.ts"
import { latestDue, nextTick, repeatProblem } from "./schedule-clock.ts"
import { TimerHeap } from "./timer-heap.ts"

export interface ScheduleTickerDeps {
  readonly queue: string
  /** The partition's state (the owner's: it holds the schedules). */
  readonly state: () => PartitionState
  /** Decides a schedule event with the given seq (applied, appended). */
  readonly decide: (body: ScheduleEventBody, seq: number) => void
  /** Appends a command in the owner's next transaction (the tick's job). */
  readonly addJob: (command: CommandEnvelope) => void
}

export class ScheduleTicker {
  private readonly timers = new TimerHeap((ids) => this.due(ids))
  private readonly armed = new Map<string, number>()
  private stopped = false

  constructor(private readonly deps: ScheduleTickerDeps) {}

  /** After a restore: every live schedule armed (missed ticks come due at once). */
  start(): void {
    for (const s of this.deps.state().schedules()) this.arm(s.spec.id)
  }

  stop(): void {
    this.stopped = true
    this.timers.stop()
  }

  /**
   * Defines or replaces a schedule; returns why it cannot, if it cannot. Its ticks count from
   * its `startAt`, else from `askedAt` — or, when only its job or bounds change, from where
   * they counted before (an update neither skips nor repeats a tick).
   */
  upsert(spec: ScheduleSpec, askedAt: number): string | undefined {
    const problem = repeatProblem(spec.repeat)
    if (problem !== undefined) return `UpsertSchedule '${spec.id}': ${problem}`
    const known = this.deps.state().schedule(spec.id)
    const sameClock = known?.live === true && JSON.stringify(known.spec.repeat) === JSON.stringify(spec.repeat) && known.spec.startAt === spec.startAt
    const anchor = spec.startAt ?? (sameClock ? known.anchor : askedAt)
    this.decide({ _tag: "ScheduleUpserted", schedule: spec, anchor }, (known?.seq ?? -1) + 1)
    return undefined
  }

  /** Deletes a schedule; returns why it cannot (unknown), if it cannot. */
  remove(id: string): string | undefined {
    const known = this.deps.state().schedule(id)
    if (known === undefined || !known.live) return `RemoveSchedule: unknown schedule '${id}'`
    this.decide({ _tag: "ScheduleRemoved", id }, known.seq + 1)
    return undefined
  }

  private decide(body: ScheduleEventBody, seq: number): void {
    this.deps.decide(body, seq)
    this.arm(body._tag === "ScheduleUpserted" ? body.schedule.id : body.id)
  }

  private arm(id: string): void {
    const s = this.deps.state().schedule(id)
    if (this.stopped || s === undefined || !ticking(s)) return
    const next = nextTick(s.spec, s.anchor, s.lastTick ?? s.anchor - 1)
    if (next === undefined || this.armed.get(id) === next) return
    this.armed.set(id, next)
    this.timers.schedule(id, next)
  }

  private due(ids: ReadonlyArray<string>): void {
    if (this.stopped) return
    for (const id of new Set(ids)) {
      this.armed.delete(id)
      const s = this.deps.state().schedule(id)
      if (s === undefined || !ticking(s)) continue
      const now = Date.now()
      const tick = latestDue(s.spec, s.anchor, s.lastTick ?? s.anchor - 1, now)
      if (tick === undefined) this.arm(id)
      else this.tick(s, tick, now) // re-armed by decide
    }
  }

  private tick(s: ScheduleState, tick: number, now: number): void {
    const { spec } = s
    const opts = spec.template.opts
    const body: AddJob = {
      _tag: "AddJob",
      name: spec.template.name,
      data: spec.template.data,
      priority: opts?.priority ?? 0,
      delay: 0,
      ...(opts?.metadata === undefined ? {} : { metadata: opts.metadata }),
      ...(opts?.timeout === undefined ? {} : { timeout: opts.timeout }),
      idempotent: true,
      ...(opts?.keep === undefined ? {} : { keep: opts.keep }),
      schedule: { id: spec.id, tick }
    }
    this.deps.addJob({ v: ENVELOPE_VERSION, queue: this.deps.queue, jobId: `${spec.id}:${tick}`, time: now, body })
    this.decide({ _tag: "ScheduleTicked", id: spec.id, tick, count: s.count + 1 }, s.seq + 1)
  }
}

/** A live schedule below its limit. */
const ticking = (s: ScheduleState): boolean => s.live && (s.spec.limit === undefined || s.count < s.spec.limit)
