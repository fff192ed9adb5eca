/**
 * Schedules as the public API shows them, and the key their commands are partitioned by.
 */
import type { ScheduleState } from "../../projections/partition-state.ts"
import { nextTick } from "../engine/schedule-clock.ts"
import type { ScheduleInfo } from "../types.ts"

/** The key a schedule's commands are partitioned by: one partition owns a schedule. */
export const scheduleKey = (id: string) => `schedule:${id}`

/** A schedule as `schedules()` shows it. */
export const scheduleInfo = (s: ScheduleState): ScheduleInfo => {
  const { spec } = s
  const next = spec.limit !== undefined && s.count >= spec.limit ? undefined : nextTick(spec, s.anchor, s.lastTick ?? s.anchor - 1)
  const repeat = {
    ...spec.repeat,
    ...(spec.startAt === undefined ? {} : { startAt: spec.startAt }),
    ...(spec.endAt === undefined ? {} : { endAt: spec.endAt }),
    ...(spec.limit === undefined ? {} : { limit: spec.limit })
  }
  const template = spec.template as ScheduleInfo["template"]
  return {
    id: spec.id,
    repeat,
    template,
    count: s.count,
    ...(s.lastTick === undefined ? {} : { lastTick: s.lastTick }),
    ...(next === undefined ? {} : { nextTick: next })
  }
}

