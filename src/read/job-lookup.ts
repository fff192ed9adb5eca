/**
 * One job found in the log by its id, without a read model: the job's own records (an
 * indexed lookup by key), folded by the same reducer the read model uses. Costs the job's
 * size, not the log's. Only logs with an index by key can do it (SQLite, memory).
 *
 * The view is the job's state as of its own events: a waiting job of a paused queue shows
 * `waiting` until its next event (pause and resume are queue events, not the job's).
 */
import type { JobEventEnvelope } from "../../machines/schema.ts"
import { pendingView } from "../../projections/pending-adds.ts"
import { evolveJobView, type JobView } from "../../projections/job-view.ts"
import { decodeCommand, decodeEvent } from "../codec.ts"
import { type EventLogService, topicsOf } from "../log/event-log.ts"
import { run } from "../run.ts"

/** True when `log` can look a job up without a replay. */
export const canLookUp = (log: EventLogService): boolean => log.recordsByKey !== undefined

/**
 * The job `jobId` of `queue` from its events; else, if an AddJob for it is in the commands
 * topic (added, not yet accepted by an engine), the job as it will start. `undefined`: no
 * such job. Throws when the log cannot look jobs up (check `canLookUp` first).
 */
export const lookUpJob = async (log: EventLogService, queue: string, jobId: string, maxAttempts = 0): Promise<JobView | undefined> => {
  const byKey = log.recordsByKey
  if (byKey === undefined) throw new Error(`${log.url} cannot look jobs up by id`)
  const topics = topicsOf(queue)
  let view: JobView | undefined
  for (const record of await run(byKey(topics.events, jobId))) {
    const decoded = decodeEvent(record.value)
    if (decoded.ok && decoded.value.jobId === jobId) view = evolveJobView(view, decoded.value as JobEventEnvelope)
  }
  if (view !== undefined) return view
  for (const record of await run(byKey(topics.commands, jobId))) {
    const decoded = decodeCommand(record.value)
    if (!decoded.ok || decoded.value.jobId !== jobId || decoded.value.queue !== queue) continue
    const { body } = decoded.value
    if (body._tag !== "AddJob") continue
    return pendingView({ ...decoded.value, jobId }, body, maxAttempts)
  }
  return undefined
}
