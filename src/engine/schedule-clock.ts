/**
 * When a schedule ticks: `every` ms from its anchor, or the times a cron expression names in
 * its time zone (croner does the calendar: time zones, DST gaps and repeats).
 *
 * Invariants:
 * - Ticks are whole milliseconds, strictly increasing, never before the schedule's anchor
 *   (its `startAt`, else the time it was defined) and never after its `endAt`.
 * - `latestDue` coalesces: of all the ticks in (after, now] it answers only the latest, so an
 *   engine that was down over many ticks adds one job for them, not one per missed tick.
 */
import { Cron } from "croner"
import type { Repeat, ScheduleSpec } from "../../machines/schema.ts"

const cronOf = (repeat: Extract<Repeat, { cron: string }>): Cron =>
  new Cron(repeat.cron, { ...(repeat.tz === undefined ? {} : { timezone: repeat.tz }), paused: true })

/** Why a repeat cannot tick (a bad cron expression, an unknown time zone), or `undefined`. */
export const repeatProblem = (repeat: Repeat): string | undefined => {
  if ("every" in repeat) return undefined
  try {
    cronOf(repeat).nextRun(new Date())
    return undefined
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    return message.includes("timezone")
      ? `time zone '${repeat.tz}' is not an IANA time zone (e.g. 'Asia/Jakarta', 'Europe/Berlin')`
      : `cron expression '${repeat.cron}' is not valid: ${message.replace(/^CronPattern: /, "")}`
  }
}

const within = (spec: ScheduleSpec, tick: number | undefined): number | undefined =>
  tick === undefined || (spec.endAt !== undefined && tick > spec.endAt) ? undefined : tick

/** The first tick after `after` (ms), or `undefined` when the schedule has no more. */
export const nextTick = (spec: ScheduleSpec, anchor: number, after: number): number | undefined => {
  const repeat = spec.repeat
  if ("every" in repeat) {
    if (after < anchor) return within(spec, anchor)
    return within(spec, anchor + (Math.floor((after - anchor) / repeat.every) + 1) * repeat.every)
  }
  const next = cronOf(repeat).nextRun(new Date(Math.max(after, anchor - 1)))
  return within(spec, next === null ? undefined : next.getTime())
}

/** The latest tick in (after, now], or `undefined` when none is due. */
export const latestDue = (spec: ScheduleSpec, anchor: number, after: number, now: number): number | undefined => {
  const first = nextTick(spec, anchor, after)
  if (first === undefined || first > now) return undefined
  const last = spec.endAt === undefined ? now : Math.min(now, spec.endAt)
  const repeat = spec.repeat
  if ("every" in repeat) return anchor + Math.floor((last - anchor) / repeat.every) * repeat.every
  const [previous] = cronOf(repeat).previousRuns(1, new Date(last + 1))
  return previous === undefined || previous.getTime() < first ? first : previous.getTime()
}
