/**
 * Job rows ↔ job views.
 *
 * A row loaded for a batch carries its JSON values (result, error) as text wrapped in
 * `RawJson`: the reducers only copy them, so they are written back as they were read,
 * never parsed and re-serialized. Rows read for a caller are parsed by `pg` as usual.
 */
import type { JobError, JobStateName, KeepPolicy } from "../../../machines/schema.ts"
import { normalizeView, syncQueueFlag, type JobView } from "../../../projections/job-view.ts"
import type { Held } from "./fold.ts"
import type { LoadedRow } from "./sql.ts"

/** JSON text read from a row, to be written back unchanged. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** The text of a JSON column (`null`: SQL NULL, for an absent value). */
export const jsonText = (value: unknown): string | null =>
  value === undefined ? null : value instanceof RawJson ? value.text : (JSON.stringify(value) ?? null)

/**
 * A loaded row as the fold holds it. Fields fixed within a life are not loaded (data,
 * metadata, timeout, keep): the writer never sends them for a row it did not create.
 */
export const heldOf = (queue: string, r: LoadedRow): Held => ({
  view: {
    id: r.id,
    queue,
    name: r.name,
    data: undefined,
    result: r.result === null ? undefined : new RawJson(r.result),
    error: r.error === null ? undefined : (new RawJson(r.error) as unknown as JobError),
    metadata: undefined,
    timeout: undefined,
    keep: undefined,
    progress: r.progress === null ? undefined : new RawJson(r.progress),
    schedule: undefined,
    trace: undefined,
    state: r.state,
    attemptsMade: r.attempts_made,
    maxAttempts: r.max_attempts,
    stalledCount: r.stalled_count,
    queuePaused: r.queue_paused,
    runAt: r.run_at,
    priority: r.priority,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    seq: r.seq
  },
  pos: Number(r.pos),
  life: r.life,
  born: false
})

/** A row as read for callers (every column, JSON parsed by `pg`). */
export interface ReadRow {
  readonly id: string
  readonly queue: string
  readonly partition: number
  readonly seq: number
  readonly name: string
  readonly state: JobStateName
  readonly data: string | null
  readonly result: string | null
  readonly error: string | null
  readonly metadata: string | null
  readonly timeout: number | null
  readonly keep: string | null
  readonly progress: string | null
  readonly schedule: string | null
  readonly attempts_made: number
  readonly max_attempts: number
  readonly stalled_count: number
  readonly queue_paused: boolean
  readonly run_at: number
  readonly priority: number
  readonly created_at: number
  readonly updated_at: number
  /** The partition's pause flag (from `positions`); null when it has no position. */
  readonly partition_paused: boolean | null
}

const orUndefined = <A>(v: A | null): A | undefined => (v === null ? undefined : v)
/** SQL NULL is an absent value; JSON `null` is a value. */
const parsed = <A>(text: string | null): A | undefined => (text === null ? undefined : (JSON.parse(text) as A))

/** The job view of a row, its pause flag brought to its partition's (as `PartitionState.get` does). */
export const viewOfRow = (r: ReadRow): JobView => {
  const view = normalizeView({
    id: r.id,
    queue: r.queue,
    name: r.name,
    data: parsed(r.data),
    result: parsed(r.result),
    error: parsed<JobError>(r.error),
    metadata: parsed<{ readonly [key: string]: unknown }>(r.metadata),
    timeout: orUndefined(r.timeout),
    keep: parsed<KeepPolicy>(r.keep),
    progress: parsed(r.progress),
    schedule: parsed<{ readonly id: string; readonly tick: number }>(r.schedule),
    state: r.state,
    attemptsMade: r.attempts_made,
    maxAttempts: r.max_attempts,
    stalledCount: r.stalled_count,
    queuePaused: r.queue_paused,
    runAt: r.run_at,
    priority: r.priority,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    seq: r.seq
  })
  return r.partition_paused === null ? view : syncQueueFlag(view, r.partition_paused)
}
