/**
 * Waiting for jobs to end (`JobQueue.waitFor`): the result of a completed job, the error of
 * one that failed for good.
 *
 * Invariants:
 * - Every wait settles exactly once: when the job ends (the read model announces the
 *   change), at once when it had already ended, when it turns out unknown, or at its timeout.
 * - A pending wait keeps the process alive, as a pending socket would: the local logs notice
 *   other processes' writes by an unref'd poller, which alone would let the process exit.
 */
import type { JobView } from "../../projections/job-view.ts"
import { toError } from "./announce.ts"

/** `waitFor` gave up: the job did not finish within `timeoutMs`. */
export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError"
}

/** How a job ended, if it did: its result, or the error it failed (or was removed) with. */
export const endOf = (view: JobView | undefined): { ok: true; result: unknown } | { ok: false; error: Error } | undefined => {
  if (view === undefined) return undefined
  if (view.state === "completed") return { ok: true, result: view.result }
  if (view.state === "failed") return { ok: false, error: toError(view.error) }
  if (view.state === "removed") return { ok: false, error: new Error(`job '${view.id}' was removed`) }
  return undefined
}

/** Keep-alive ticks of a wait without a timeout (re-armed: Node timers cap at ~24.8 days). */
const KEEP_ALIVE_MS = 60_000

type Settle = (view: JobView | undefined) => boolean

export class JobEndWaiters {
  private readonly waiting = new Map<string, Set<Settle>>()

  /**
   * The end of `jobId`. `held` is the job as the read model holds it now; when it holds
   * nothing, `lookUp` finds the job in the log (or says it is unknown: `notFound`).
   */
  wait<Result>(
    jobId: string,
    held: JobView | undefined,
    lookUp: () => Promise<JobView | undefined>,
    options: { readonly timeoutMs: number | undefined; readonly notFound: () => Error; readonly timedOut: () => Error; readonly failed: (e: unknown) => Error }
  ): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const done = () => {
        clearTimeout(timer)
        const set = this.waiting.get(jobId)
        set?.delete(settle)
        if (set?.size === 0) this.waiting.delete(jobId)
      }
      const settle: Settle = (view) => {
        const end = endOf(view)
        if (end === undefined) return false
        done()
        if (end.ok) resolve(end.result as Result)
        else reject(end.error)
        return true
      }
      const keepAlive = () => {
        timer = setTimeout(keepAlive, KEEP_ALIVE_MS)
      }
      if (options.timeoutMs === undefined) keepAlive()
      else
        timer = setTimeout(() => {
          done()
          reject(options.timedOut())
        }, options.timeoutMs)
      const set = this.waiting.get(jobId) ?? new Set<Settle>()
      this.waiting.set(jobId, set)
      set.add(settle)
      if (settle(held) || held !== undefined) return
      lookUp().then(
        (found) => {
          if (found !== undefined) return void settle(found)
          done()
          reject(options.notFound())
        },
        (e) => {
          done()
          reject(options.failed(e))
        }
      )
    })
  }

  /** A change of `jobId` (announced by the read model): settles its waits if it ended. */
  changed(jobId: string, view: JobView | undefined): void {
    const set = this.waiting.get(jobId)
    if (set !== undefined) for (const settle of [...set]) settle(view)
  }
}
