/**
 * What a handler leaves behind, made safe before the engine sees it:
 * - a promise rejected inside a handler and never handled (`Promise.reject(e)` not awaited,
 *   a fire-and-forget call that fails) would crash a Node ≥ 15 process; it is attributed to
 *   its job with AsyncLocalStorage and fails that job's attempt instead (or, when the job
 *   has already finished, is reported through the queue's `error` event);
 * - an Error too big for a log record (a multi-megabyte message or stack) is trimmed, so the
 *   JobRetrying/JobFailed event that carries it stays decodable.
 *
 * Invariants:
 * - Unhandled rejections that are not attributable to a running handler keep Node's own
 *   behaviour: when jobledger's listener is the only one and the process runs in the default
 *   `throw` mode, the rejection is rethrown as an uncaught exception, as Node would.
 * - The process listener exists exactly while some queue of this process has a handler.
 * - A handler settles its guarded promise at most once; a success is held back for one
 *   macrotask, because Node reports unhandled rejections only after the microtask queue
 *   drains — a rejection made during the handler's last tick still fails the attempt.
 */
import { AsyncLocalStorage } from "node:async_hooks"
import type { Job, JobHandler } from "./types.ts"

/** A promise rejected inside a handler was never handled; the attempt fails with it. */
export class UnhandledRejectionError extends Error {
  override readonly name = "UnhandledRejectionError"
}

/** Messages and stacks above this many characters are cut (a log record holds at most 1 MiB). */
export const MAX_ERROR_TEXT = 16_384

interface Attempt {
  readonly queue: string
  readonly job: Job
  readonly report: (error: unknown) => void
  settled: boolean
  fail: ((error: Error) => void) | undefined
}

const scope = new AsyncLocalStorage<Attempt>()
let users = 0

const throwsByDefault = (): boolean => {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]
  const mode = flags.find((f) => f.startsWith("--unhandled-rejections="))?.split("=")[1]
  return mode === undefined || mode === "throw" || mode === "strict"
}

const describe = (reason: unknown): string => {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`
  try {
    return `a non-Error value: ${String(reason)}`
  } catch {
    return "a value that cannot be printed"
  }
}

const onUnhandledRejection = (reason: unknown): void => {
  const attempt = scope.getStore()
  if (attempt === undefined) {
    // Not ours: keep Node's behaviour when nobody else listens.
    if (process.listenerCount("unhandledRejection") === 1 && throwsByDefault()) throw reason
    return
  }
  const message = `unhandled rejection in the handler of job ${attempt.job.id} ('${attempt.job.name}') on queue '${attempt.queue}': ${describe(reason)}`
  const error = new UnhandledRejectionError(message.slice(0, MAX_ERROR_TEXT), { cause: reason })
  if (!attempt.settled && attempt.fail !== undefined) attempt.fail(error)
  else attempt.report(new UnhandledRejectionError(`${error.message} (after the attempt had ended: it changes nothing)`, { cause: reason }))
}

/** Registers one user of the process listener; returns its release (idempotent). */
export const useRejectionListener = (): (() => void) => {
  if (users++ === 0) process.on("unhandledRejection", onUnhandledRejection)
  let released = false
  return () => {
    if (released) return
    released = true
    if (--users === 0) process.off("unhandledRejection", onUnhandledRejection)
  }
}

/** An Error whose message and stack fit in a log record; other thrown values pass unchanged. */
export const boundedError = (thrown: unknown): unknown => {
  if (!(thrown instanceof Error)) return thrown
  try {
    if (typeof thrown.message === "string" && thrown.message.length > MAX_ERROR_TEXT)
      thrown.message = `${thrown.message.slice(0, MAX_ERROR_TEXT)}… (${thrown.message.length} characters, cut)`
    if (typeof thrown.stack === "string" && thrown.stack.length > MAX_ERROR_TEXT)
      thrown.stack = `${thrown.stack.slice(0, MAX_ERROR_TEXT)}… (cut)`
    return thrown
  } catch {
    // a frozen error, or one whose properties throw: describe it without touching it again
    return new Error("the handler threw an Error whose message or stack cannot be read")
  }
}

/**
 * Successes held back until the next macrotask (see the invariants). One Immediate releases
 * all that were held since it was set: a success held while it runs (a microtask of a release)
 * waits for the next one, so each still waits for a whole macrotask boundary.
 */
let held: Array<() => void> = []
const releaseHeld = (): void => {
  const due = held
  held = []
  for (const release of due) release()
}
const afterThisMacrotask = (release: () => void): void => {
  if (held.push(release) === 1) setImmediate(releaseHeld)
}

/**
 * The handler wrapped: it runs in its job's AsyncLocalStorage scope, and its outcome is the
 * first of (its own result, an unhandled rejection attributed to it). The wrapper declares
 * as many parameters as the handler (the engine passes the signal only to 2-parameter ones).
 */
export const guardHandler = (queue: string, handler: JobHandler, report: (error: unknown) => void): JobHandler => {
  const run = (job: Job, args: ReadonlyArray<unknown>): Promise<unknown> => {
    const attempt: Attempt = { queue, job, report, settled: false, fail: undefined }
    // a synchronous throw propagates as such: the engine reports it as the handler's own
    const result = scope.run(attempt, () => (handler as (...a: ReadonlyArray<unknown>) => unknown)(...args))
    return new Promise((resolve, reject) => {
      const fail = (error: unknown) => {
        if (attempt.settled) return
        attempt.settled = true
        reject(boundedError(error))
      }
      attempt.fail = fail
      Promise.resolve(result).then(
        (value) =>
          afterThisMacrotask(() => {
            if (attempt.settled) return
            attempt.settled = true
            resolve(value)
          }),
        fail
      )
    })
  }
  return handler.length >= 2 ? (job, signal) => run(job, [job, signal]) : (job) => run(job, [job])
}
