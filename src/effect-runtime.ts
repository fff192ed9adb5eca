/**
 * The Effect runtime every Effect of this package runs on: Effect's default runtime with a
 * scheduler of our own (`jobledgerScheduler`).
 *
 * Why not Effect's default scheduler: since effect 3.20 it keeps a runner per fiber in a
 * WeakMap keyed by the fiber, and a WeakMap drops its entries only in a major GC. With one
 * fiber per add and per transaction the table grows between major GCs (262 KB seen) and every
 * minor GC copies it: in a loop of async runs, ~530 KB survived each scavenge (~3.5 ms each)
 * with it, ~3 KB (~0.8 ms) with this scheduler. Together with `run.ts` (no continuation across
 * the Promise boundary) and `hand-over.ts` (no closure keeps a log write's records): at 1,000
 * adds/s in one process (`bench/profile/latency-gc.mjs`, 3 pairs) the memory promoted per
 * scavenge went from ~1.27–1.33 to ~0.85–1.0 MB and the mean scavenge from 6.8–8.0 to
 * 3.8–7.0 ms; what survived a producer's scavenges from ~850 to ~80–160 KB. The rest of what
 * survives is not Effect's: jobs in flight, Map tables resized, the views retention keeps.
 *
 * Invariants:
 * - No state per fiber: a task is run, never remembered.
 * - Each task runs in a microtask of its own, queued when it is scheduled, so a fiber resumed
 *   from some async context runs in that context (AsyncLocalStorage stays isolated between
 *   fibers, as per-fiber runners made it in Effect).
 * - The event loop is never starved: past `MICROTASKS_PER_TURN` tasks in one turn of the
 *   event loop (a fiber that keeps yielding, say), tasks wait for the next turn (setImmediate),
 *   as Effect's MixedScheduler falls back to a timer after 2,048 microtask drains.
 * - Priorities are not ordered (FIFO): nothing in this package schedules with a priority.
 */
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Scheduler from "effect/Scheduler"

/** Tasks run as microtasks in one turn of the event loop before the rest wait for the next. */
export const MICROTASKS_PER_TURN = 2048

let tasksThisTurn = 0
let turnEndScheduled = false
const endTurn = (): void => {
  tasksThisTurn = 0
  turnEndScheduled = false
}
const settled = Promise.resolve()

/** Effect's Scheduler for this package's fibers (see the module's invariants). */
export const jobledgerScheduler: Scheduler.Scheduler = Scheduler.make((task) => {
  if (!turnEndScheduled) {
    turnEndScheduled = true
    setImmediate(endTurn)
  }
  if (++tasksThisTurn <= MICROTASKS_PER_TURN) void settled.then(task)
  else setImmediate(task)
})

/** Effect's default runtime, with `jobledgerScheduler`; every fiber forked from it inherits the scheduler. */
export const jobledgerRuntime: Runtime.Runtime<never> = Runtime.setFiberRef(Runtime.defaultRuntime, FiberRef.currentScheduler, jobledgerScheduler)

/** `Effect.runPromise` on `jobledgerRuntime`. */
export const runPromise = Runtime.runPromise(jobledgerRuntime)

/** `Effect.runPromiseExit` on `jobledgerRuntime`. */
export const runPromiseExit = Runtime.runPromiseExit(jobledgerRuntime)

/** `ManagedRuntime.make(layer)` whose runs use `jobledgerScheduler`. */
export const managedRuntime = <R, E>(layer: Layer.Layer<R, E, never>): ManagedRuntime.ManagedRuntime<R, E> =>
  ManagedRuntime.make(Layer.merge(layer, Layer.setScheduler(jobledgerScheduler)))
