/**
 * Running one handler: a job's attempt, with its timeout and its AbortSignal, reduced to an
 * Outcome the partition actor can decide on.
 *
 * Invariant: whatever the handler does — resolve, reject with anything, throw
 * synchronously, return something JSON cannot carry, or never settle — the attempt ends in
 * exactly one Outcome (unless its owner abandons it first), and never throws into the engine.
 */
import { inspect } from "node:util"
import type { JobError } from "../../machines/schema.ts"
import { jsonProblem } from "../codec.ts"

export type Outcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: JobError; readonly original: Error }

/** The handler did not settle within the job's timeout. */
export class JobTimeoutError extends Error {
  override readonly name = "TimeoutError"
}

/** The job was cancelled (`queue.cancel`): the reason its AbortSignal fired and it failed, with no retry. */
export class CancelledError extends Error {
  override readonly name = "CancelledError"
}

/** Turns anything a handler threw into an Error and its serializable form. */
export const describeFailure = (thrown: unknown): { error: JobError; original: Error } => {
  if (thrown instanceof Error) {
    const name = thrown.name === "Error" || typeof thrown.name !== "string" ? undefined : thrown.name
    const message = typeof thrown.message === "string" ? thrown.message : inspect(thrown.message)
    return {
      error: {
        message,
        ...(name === undefined ? {} : { name }),
        ...(typeof thrown.stack === "string" ? { stack: thrown.stack } : {})
      },
      original: thrown
    }
  }
  const message = `handler threw a non-Error value: ${inspect(thrown, { depth: 2, breakLength: Infinity }).slice(0, 500)}`
  const original = new Error(message)
  original.name = "NonErrorThrown"
  return { error: { message, name: "NonErrorThrown" }, original }
}

export interface Attempt {
  /** Fires the handler's AbortSignal; its outcome, if it ever comes, is then ignored by the owner. */
  readonly abort: (reason: Error) => void
}

const succeeded = (result: unknown): Outcome => {
  const problem = jsonProblem(result, "the handler's result")
  if (problem === undefined) return { ok: true, result: result === undefined ? null : result }
  return { ok: false, error: { name: "TypeError", message: problem }, original: new TypeError(problem) }
}
const failed = (thrown: unknown): Outcome => {
  try {
    return { ok: false, ...describeFailure(thrown) }
  } catch {
    // an Error whose message getter throws, say: the attempt must still end
    const original = new Error("the handler threw a value that cannot be described")
    return { ok: false, error: { message: original.message }, original }
  }
}

/**
 * A job's AbortSignal, created on first use: an AbortController costs ~7 µs, and most
 * handlers never look at their signal. Aborting before anyone asked still yields an
 * aborted signal when asked.
 */
export class LazySignal {
  private controller: AbortController | undefined
  private reason: unknown
  private aborted = false

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      if (this.aborted) this.controller.abort(this.reason)
    }
    return this.controller.signal
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.controller?.abort(reason)
  }
}

/**
 * Starts `invoke` and reports its Outcome once. `invoke` receives a LazySignal that fires on
 * timeout and when its owner aborts it (close grace expired). A plain promise with its own
 * timer: no Effect fiber per attempt. A forked fiber (`Effect.runFork` of an `Effect.async`)
 * was ~10 µs of a drain's CPU per job and its allocations, and gave nothing a promise does
 * not: the attempt is never interrupted, only abandoned by its owner (which then ignores
 * the outcome). `Effect.tryPromise` + `Effect.timeoutFail` had cost ~160 µs.
 */
export const startAttempt = (
  invoke: (signal: LazySignal) => unknown,
  timeoutMs: number | undefined,
  onOutcome: (outcome: Outcome) => void
): Attempt => {
  const controller = new LazySignal()
  let settled = false
  let timer: NodeJS.Timeout | undefined
  const settle = (outcome: Outcome) => {
    if (settled) return
    settled = true
    if (timer !== undefined) clearTimeout(timer)
    try {
      onOutcome(outcome)
    } catch (error) {
      // the owner's own bug: surfaced as an uncaught exception, as a throwing fiber observer would be
      queueMicrotask(() => {
        throw error
      })
    }
  }
  if (timeoutMs !== undefined)
    timer = setTimeout(() => {
      const error = new JobTimeoutError(`job timed out after ${timeoutMs} ms`)
      controller.abort(error)
      settle(failed(error))
    }, timeoutMs)
  // Promise.resolve adopts a native promise as it is: no wrapper promise, and none of the two
  // extra microtask turns a `resolve(promise)` inside a new Promise takes
  let running: unknown
  try {
    running = invoke(controller)
  } catch (thrown) {
    running = Promise.reject(thrown)
  }
  Promise.resolve(running).then(
    (result) => settle(succeeded(result)),
    (thrown) => settle(failed(thrown))
  )
  return { abort: (reason) => controller.abort(reason) }
}
