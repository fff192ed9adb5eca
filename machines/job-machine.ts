/**
 * Evaluating the job machine fast: xstate's decisions, memoized.
 *
 * Why: xstate's pure `transition()` builds an inert actor on every call (~50 µs), while the
 * engine steps every job about three times and a replay steps every event.
 *
 * How, and why it is exact: in `job-definition.ts` every guard is a predicate of
 * `(context, event)` and every accepted event updates the context with `absorb`, whatever the
 * state. So xstate's decision — refused, or the target state and the entry intents — depends
 * only on (state, event tag, outcome of every guard), and the next context is
 * `absorb(context, event)`. The first time a key is met the decision is taken by xstate itself
 * (`job-xstate.ts`), recorded, and checked against what the fast path would have produced;
 * a mismatch means the definition broke the invariants above and is thrown as a bug. The
 * machine therefore stays the single definition of legal transitions, and
 * `test/job-machine-fastpath.unit.test.ts` checks fast ≡ xstate on random event sequences.
 */
import {
  absorb,
  dueLater,
  retriesLeft,
  initialContext,
  MACHINE_TAGS,
  predicates,
  STATE_NAMES,
  type JobContext,
  type JobIntent,
  type JobLife
} from "./job-definition.ts"
import { beginJobXState, DUPLICATE_ADD, refusalReason, stepJobXState, type Begin, type Step } from "./job-xstate.ts"
import type { JobAdded, JobEventBody, JobStateName, QueueEventBody } from "./schema.ts"

export {
  jobMachine,
  MAX_STALLS,
  retriesLeft,
  type JobContext,
  type JobIntent,
  type JobLife,
  type JobMachineEvent,
  type JobMachineInput,
  type MachineBody
} from "./job-definition.ts"
export { beginJobXState, stepJobXState, type Begin, type Step } from "./job-xstate.ts"

type IntentKind = JobIntent["type"]
/** A memoized decision: refused, or the target state and the kinds of intents emitted. */
interface Decision {
  readonly state: JobStateName | undefined
  readonly kinds: ReadonlyArray<IntentKind>
  /** The intents themselves when they carry no parameter (shared, frozen). */
  readonly fixed: ReadonlyArray<JobIntent> | undefined
}

const GUARDS = Object.values(predicates)
// prototype-free, so that no outside string ("constructor", say) finds an index
const indexOf = (names: ReadonlyArray<string>): Readonly<Record<string, number>> =>
  Object.assign(Object.create(null) as Record<string, number>, Object.fromEntries(names.map((n, i) => [n, i])))
const STATE_INDEX = indexOf(STATE_NAMES)
const TAG_INDEX = indexOf(MACHINE_TAGS)
const STEP_KEYS = STATE_NAMES.length * MACHINE_TAGS.length * 2 ** GUARDS.length
const stepMemo: Array<Decision | undefined> = new Array<Decision | undefined>(STEP_KEYS).fill(undefined)
const beginMemo: Array<Decision | undefined> = [undefined, undefined, undefined, undefined]

/**
 * A new job from its JobAdded fact appended at `time`: `delayed` if `runAt > time`, else
 * `paused` if the queue was paused, else `waiting`.
 */
export function beginJob(added: JobAdded, time: number): Begin {
  // the initial transition's guards are `dueLater` and `queuePaused`: their outcomes are the key
  const key = (dueLater(added, time) ? 1 : 0) | (added.queuePaused ? 2 : 0)
  const c = initialContext(added)
  const decision = beginMemo[key]
  if (decision?.state !== undefined) {
    const life = compact(decision.state, c)
    return { life, intents: decision.fixed ?? materialize(decision.kinds, life) }
  }
  const reference = beginJobXState(added, time)
  beginMemo[key] = learn(reference.life.state, reference.intents)
  check(beginJob(added, time), reference, "initial")
  return reference
}

/**
 * The next life of a job after `event`, with the intents of the state entered; or a
 * refusal with a reason (never a throw). JobAdded is always refused: the job exists.
 */
export function stepJob(life: JobLife, event: JobEventBody | QueueEventBody): Step {
  if (event._tag === "JobAdded") return { ok: false, reason: DUPLICATE_ADD }
  const si = STATE_INDEX[life.state]
  if (si === undefined) return { ok: false, reason: `unknown job state ${String(life.state)}` }
  const ti = TAG_INDEX[event._tag]
  if (ti === undefined) return { ok: false, reason: refusalReason(life, event) } // not a machine event (bad input)
  let key = si * MACHINE_TAGS.length + ti
  for (let g = 0; g < GUARDS.length; g++) key = key * 2 + (GUARDS[g]!(life, event) ? 1 : 0)
  const decision = stepMemo[key]
  if (decision === undefined) {
    const reference = stepJobXState(life, event)
    stepMemo[key] = reference.ok ? learn(reference.life.state, reference.intents) : REFUSED
    check(stepJob(life, event), reference, `${life.state} + ${event._tag}`)
    return reference
  }
  if (decision.state === undefined) return { ok: false, reason: refusalReason(life, event) }
  const next = compact(decision.state, absorb(life, event))
  return { ok: true, life: next, intents: decision.fixed ?? materialize(decision.kinds, next) }
}

/**
 * The state a new job starts in, as the machine decides it: `delayed` while `runAt` is ahead
 * of `time`, else `paused` on a paused queue, else `waiting`. For readers that show a job
 * before its JobAdded exists (a producer's returned job, a pending add).
 */
export function startStateOf(job: { readonly runAt: number; readonly queuePaused: boolean }, time: number): "waiting" | "delayed" | "paused" {
  return beginJob({ ...PROBE, runAt: job.runAt, queuePaused: job.queuePaused }, time).life.state as "waiting" | "delayed" | "paused"
}
const PROBE: JobAdded = { _tag: "JobAdded", name: "probe", data: null, priority: 0, runAt: 0, maxAttempts: 0, queuePaused: false }

/**
 * The event that ends a failed attempt: JobRetrying while a retry is left, else JobFailed —
 * the same predicate (`retriesLeft`) the machine's guards accept them by.
 */
export const failedAttemptEvent = (life: JobLife): "JobRetrying" | "JobFailed" => (retriesLeft(life) ? "JobRetrying" : "JobFailed")

const REFUSED: Decision = { state: undefined, kinds: [], fixed: undefined }
const NO_INTENTS: ReadonlyArray<JobIntent> = Object.freeze([])

function learn(state: JobStateName, intents: ReadonlyArray<JobIntent>): Decision {
  const kinds = intents.map((i) => i.type)
  const fixed = kinds.includes("schedule")
    ? undefined
    : kinds.length === 0
      ? NO_INTENTS
      : Object.freeze(kinds.map((type) => Object.freeze({ type }) as JobIntent))
  return { state, kinds, fixed }
}

/** Intent parameters are read from the context after the transition (entry runs last). */
function materialize(kinds: ReadonlyArray<IntentKind>, life: JobLife): ReadonlyArray<JobIntent> {
  return kinds.map((type): JobIntent => (type === "schedule" ? { type, runAt: life.runAt } : { type }))
}

function compact(state: JobStateName, c: JobContext): JobLife {
  return {
    state,
    attemptsMade: c.attemptsMade,
    maxAttempts: c.maxAttempts,
    stalledCount: c.stalledCount,
    queuePaused: c.queuePaused,
    runAt: c.runAt
  }
}

// The memo's invariant, checked on every miss: the fast result equals xstate's.
function check(fast: Step | Begin, reference: Step | Begin, where: string): void {
  if (JSON.stringify(fast) !== JSON.stringify(reference)) {
    throw new Error(
      `job machine memo diverged from xstate at ${where}: ${JSON.stringify(fast)} vs ${JSON.stringify(reference)}; ` +
        "every guard must be in `predicates` and every accepted event must update the context with `absorb` only"
    )
  }
}

/** Only for tests: forget every memoized decision. */
export function resetJobMachineMemo(): void {
  stepMemo.fill(undefined)
  beginMemo.fill(undefined)
}
