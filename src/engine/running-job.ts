/**
 * The job a handler receives (`ActiveJob`): the job's own fields as `toJob` gives them (own,
 * enumerable, in JSON), and what only a running job can do, `updateProgress` and `signal`, on
 * the prototype (not enumerable, not in JSON or a spread), reaching its attempt through
 * private fields. One object per attempt: no closures and no `defineProperty` per job.
 */
import type { JobView } from "../../projections/job-view.ts"
import { jsonProblem } from "../codec.ts"
import { toJob } from "../job.ts"
import type { ActiveJob } from "../types.ts"
import type { Attempt, LazySignal } from "./handler-run.ts"

/** Where a running job's progress goes: its partition, which drops a report of an attempt that is no longer the job's. */
export interface ProgressSink {
  reportProgress(jobId: string, attempt: Attempt | undefined, value: unknown): Promise<void>
}

export class RunningJob {
  readonly #id: string
  readonly #sink: ProgressSink
  /** Set once `startAttempt` returned; a report before that (a handler reporting at once) is this attempt's. */
  #attempt: Attempt | undefined
  /** Set as the attempt starts, before the handler is called. */
  #lazy: LazySignal | undefined

  constructor(view: JobView, sink: ProgressSink) {
    Object.assign(this, toJob(view))
    this.#id = view.id
    this.#sink = sink
  }

  /** The attempt starts with `lazy` as its signal: the job as its handler sees it. */
  starting(lazy: LazySignal): ActiveJob {
    this.#lazy = lazy
    return this as unknown as ActiveJob // toJob's fields, and the two members below
  }

  /** The attempt `startAttempt` returned for this job. */
  attach(attempt: Attempt): void {
    this.#attempt = attempt
  }

  updateProgress(value: unknown): Promise<void> {
    const problem = jsonProblem(value, "progress")
    if (problem !== undefined) return Promise.reject(new TypeError(problem))
    return this.#sink.reportProgress(this.#id, this.#attempt, value)
  }

  get signal(): AbortSignal | undefined {
    return this.#lazy?.signal
  }
}
