/**
 * The job machine: the single definition of which events a job accepts in which state.
 *
 * Invariants:
 * - The machine is pure: no timers (`after`), no invoked actors, no side effects. Its entry
 *   actions are *intents* (enqueue, schedule, hold, run, settle) that the engine carries out.
 * - The context is a fold of the accepted events: every accepted event is absorbed by the
 *   one function `absorb` (the same update whatever the state), and the machine decides only
 *   acceptance and target. `machines/job-machine.ts` relies on this to memoize decisions.
 * - Every guard is a named predicate of `(context, event)` listed in `predicates`; a guard
 *   never reads anything else. `job-machine.ts` relies on this too.
 * - Queue events are legal in every state: at the root they only set the pause flag, without
 *   re-entering the state (targetless), so no intent is emitted again.
 */
import { assign, setup } from "xstate"
import type { JobAdded, JobEventBody, JobStateName, QueueEventBody } from "./schema.ts"

/** The compact life of a job: the machine's state and context as one plain object. */
export interface JobLife {
  readonly state: JobStateName
  /** Retries already made (0 on the first run). */
  readonly attemptsMade: number
  /** N retries allowed: the handler runs at most N+1 times. */
  readonly maxAttempts: number
  readonly stalledCount: number
  readonly queuePaused: boolean
  readonly runAt: number
}

/** The machine's context: a job's life without its state. */
export type JobContext = Omit<JobLife, "state">

/** What the engine must do after a transition: one per state entered. */
export type JobIntent =
  | { readonly type: "enqueue" }
  | { readonly type: "schedule"; readonly runAt: number }
  | { readonly type: "hold" }
  | { readonly type: "run" }
  | { readonly type: "settle" }

/** Every event body the machine accepts: the job events but JobAdded, and the queue events. */
export type MachineBody = Exclude<JobEventBody, JobAdded> | QueueEventBody
/** The tags of `MachineBody`. */
export type MachineTag = MachineBody["_tag"]
type ToMachineEvent<B> = B extends { readonly _tag: infer T } ? B & { readonly type: T } : never
/** A body as xstate sees it: `type` is the `_tag`. */
export type JobMachineEvent = ToMachineEvent<MachineBody>
/** What `initialTransition` needs: the JobAdded fact and the time it was appended. */
export interface JobMachineInput {
  readonly added: JobAdded
  readonly time: number
}

/** A job that stalled more than this many times fails for good. */
export const MAX_STALLS = 10

/** True while a retry is left: `attemptsMade < maxAttempts`. The machine's guards use it. */
export const retriesLeft = (life: Pick<JobLife, "attemptsMade" | "maxAttempts">): boolean =>
  life.attemptsMade < life.maxAttempts

/** The state names in a fixed order (indexes for the decision memo). */
export const STATE_NAMES: ReadonlyArray<JobStateName> = ["waiting", "delayed", "active", "completed", "failed", "paused", "removed"]
/** The machine's event tags in a fixed order (indexes for the decision memo). */
export const MACHINE_TAGS: ReadonlyArray<MachineTag> = [
  "JobPromoted",
  "JobStarted",
  "JobCompleted",
  "JobRetrying",
  "JobFailed",
  "JobStalled",
  "JobRetried",
  "JobProgress",
  "JobRemoved",
  "JobCancelled",
  "QueuePaused",
  "QueueResumed"
]

/**
 * The guards of the transitions after the initial one, as plain predicates. Each is total
 * (false for an event it is not about), so any of them may be evaluated on any event.
 */
export const predicates = {
  /** JobStarted must name the attempt the job is on. */
  startMatches: (c: JobContext, e: MachineBody) => e._tag === "JobStarted" && e.attempt === c.attemptsMade,
  /** JobRetrying needs a retry left and must name the next attempt. */
  canRetry: (c: JobContext, e: MachineBody) =>
    e._tag === "JobRetrying" && retriesLeft(c) && e.attempt === c.attemptsMade + 1,
  /** JobFailed only once no retry is left. */
  retriesExhausted: (c: JobContext, _e: MachineBody) => !retriesLeft(c),
  /** The stall being recorded is one too many (guards see the context before `absorb`). */
  stallLimitReached: (c: JobContext, _e: MachineBody) => c.stalledCount + 1 > MAX_STALLS,
  queuePaused: (c: JobContext, _e: MachineBody) => c.queuePaused
} as const
/** The names of `predicates`. */
export type PredicateName = keyof typeof predicates

/** True when a JobAdded at `time` must wait until its `runAt`. The initial guard uses it. */
export const dueLater = (added: JobAdded, time: number): boolean => added.runAt > time

// Built field by field (not spread): `c` may be a whole JobView, whose extra fields must not
// leak into the machine's context.
const context = (
  attemptsMade: number,
  maxAttempts: number,
  stalledCount: number,
  queuePaused: boolean,
  runAt: number
): JobContext => ({ attemptsMade, maxAttempts, stalledCount, queuePaused, runAt })

/** The context of a new job. */
export const initialContext = (added: JobAdded): JobContext =>
  context(0, added.maxAttempts, 0, added.queuePaused, added.runAt)

/**
 * The context update of an accepted event, the same in every state. Returns `c` itself
 * when the event changes nothing.
 */
export const absorb = (c: JobContext, e: MachineBody): JobContext => {
  switch (e._tag) {
    case "QueuePaused":
      return c.queuePaused ? c : context(c.attemptsMade, c.maxAttempts, c.stalledCount, true, c.runAt)
    case "QueueResumed":
      return c.queuePaused ? context(c.attemptsMade, c.maxAttempts, c.stalledCount, false, c.runAt) : c
    case "JobRetrying":
      return context(c.attemptsMade + 1, c.maxAttempts, c.stalledCount, c.queuePaused, e.runAt)
    case "JobStalled":
      return context(c.attemptsMade, c.maxAttempts, c.stalledCount + 1, c.queuePaused, c.runAt)
    case "JobRetried":
      return context(0, c.maxAttempts, 0, c.queuePaused, c.runAt)
    case "JobPromoted":
    case "JobStarted":
    case "JobCompleted":
    case "JobFailed":
    case "JobProgress":
    case "JobRemoved":
    case "JobCancelled":
      return c
  }
}

// xstate's init event is not in the machine's event union: read its input through `unknown`
const initInput = (e: { readonly type: string }): JobMachineInput | undefined =>
  e.type === "xstate.init" ? (e as unknown as { readonly input: JobMachineInput }).input : undefined
/** Intents are never executed by the machine: the engine maps them to effects. */
const intent = () => {}

/** The XState v5 job machine. Evaluate it with `beginJob`/`stepJob` from `job-machine.ts`. */
export const jobMachine = setup({
  types: {
    context: {} as JobContext,
    events: {} as JobMachineEvent,
    input: {} as JobMachineInput
  },
  guards: {
    // only the initial transition sees the init event (and its time)
    dueLater: ({ event }) => {
      const input = initInput(event)
      return input !== undefined && dueLater(input.added, input.time)
    },
    startMatches: ({ context, event }) => predicates.startMatches(context, event),
    canRetry: ({ context, event }) => predicates.canRetry(context, event),
    retriesExhausted: ({ context, event }) => predicates.retriesExhausted(context, event),
    stallLimitReached: ({ context, event }) => predicates.stallLimitReached(context, event),
    queuePaused: ({ context, event }) => predicates.queuePaused(context, event)
  },
  actions: {
    absorb: assign(({ context, event }) => absorb(context, event)),
    enqueue: intent,
    schedule: (_: unknown, _params: { runAt: number }) => {},
    hold: intent,
    run: intent,
    settle: intent
  }
}).createMachine({
  id: "job",
  context: ({ input }) => initialContext(input.added),
  // `added` is transient: the initial macrostep always leaves it, so no snapshot is in it.
  initial: "added",
  on: {
    QueuePaused: { actions: "absorb" },
    QueueResumed: { actions: "absorb" }
  },
  states: {
    added: {
      always: [{ guard: "dueLater", target: "delayed" }, { guard: "queuePaused", target: "paused" }, { target: "waiting" }]
    },
    waiting: {
      entry: "enqueue",
      on: {
        JobStarted: { guard: "startMatches", target: "active", actions: "absorb" },
        QueuePaused: { target: "paused", actions: "absorb" },
        JobRemoved: { target: "removed", actions: "absorb" }
      }
    },
    paused: {
      entry: "hold",
      on: {
        QueueResumed: { target: "waiting", actions: "absorb" },
        JobRemoved: { target: "removed", actions: "absorb" }
      }
    },
    delayed: {
      entry: { type: "schedule", params: ({ context }) => ({ runAt: context.runAt }) },
      on: {
        JobPromoted: [
          { guard: "queuePaused", target: "paused", actions: "absorb" },
          { target: "waiting", actions: "absorb" }
        ],
        JobRemoved: { target: "removed", actions: "absorb" }
      }
    },
    // a running job is not removed (cancel it first): its handler would go on unseen
    active: {
      entry: "run",
      on: {
        JobCompleted: { target: "completed", actions: "absorb" },
        JobRetrying: { guard: "canRetry", target: "delayed", actions: "absorb" },
        JobFailed: { guard: "retriesExhausted", target: "failed", actions: "absorb" },
        JobCancelled: { target: "failed", actions: "absorb" },
        // targetless: progress changes no state and re-enters nothing (no intent)
        JobProgress: { actions: "absorb" },
        JobStalled: [
          { guard: "stallLimitReached", target: "failed", actions: "absorb" },
          { guard: "queuePaused", target: "paused", actions: "absorb" },
          { target: "waiting", actions: "absorb" }
        ]
      }
    },
    // not `final`: a completed job still accepts queue events, a failed one JobRetried
    completed: {
      entry: "settle",
      on: { JobRemoved: { target: "removed", actions: "absorb" } }
    },
    failed: {
      entry: "settle",
      on: {
        JobRetried: [
          { guard: "queuePaused", target: "paused", actions: "absorb" },
          { target: "waiting", actions: "absorb" }
        ],
        JobRemoved: { target: "removed", actions: "absorb" }
      }
    },
    // out of the queue for good; accepts queue events only (they set the flag)
    removed: { entry: "settle" }
  }
})
