/**
 * Running one handler as an Effect fiber: a job's attempt, with its timeout and its
 * AbortSignal, reduced to an Outcome the partition actor can decide on.
 *
 * Invariant: whatever the handler does — resolve, reject with anything, throw
 * synchronously, return something JSON cannot carry, or never settle — the fiber ends in
 * exactly one Outcome (or is interrupted by its owner), and never throws into the engine.
 */
import { Cause, Effect, Exit, type Fiber } from "effect"
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
  readonly fiber: Fiber.RuntimeFiber<Outcome, never>
}

/**
 * Starts `invoke` in a fiber. `invoke` receives the AbortSignal that fires when the fiber is
 * interrupted (timeout, close grace expired).
 */
export const startAttempt = (
  invoke: (signal: AbortSignal) => unknown,
  timeoutMs: number | undefined,
  onOutcome: (outcome: Outcome) => void
): Attempt => {
  const call = Effect.tryPromise({
    try: (signal) => new Promise<unknown>((resolve) => resolve(invoke(signal))),
    catch: (thrown) => thrown
  })
  const bounded =
    timeoutMs === undefined
      ? call
      : Effect.timeoutFail(call, {
          duration: timeoutMs,
          onTimeout: () => new JobTimeoutError(`job timed out after ${timeoutMs} ms`)
        })
  const outcome: Effect.Effect<Outcome> = bounded.pipe(
    Effect.map((result): Outcome => {
      const problem = jsonProblem(result, "the handler's result")
      if (problem === undefined) return { ok: true, result: result === undefined ? null : result }
      const original = new TypeError(problem)
      return { ok: false, error: { name: "TypeError", message: problem }, original }
    }),
    Effect.catchAll((thrown) => Effect.succeed<Outcome>({ ok: false, ...describeFailure(thrown) }))
  )
  const fiber = Effect.runFork(outcome)
  fiber.addObserver((exit) => {
    if (Exit.isSuccess(exit)) onOutcome(exit.value)
    else if (!Cause.isInterruptedOnly(exit.cause)) onOutcome({ ok: false, ...describeFailure(Cause.squash(exit.cause)) })
  })
  return { fiber }
}
