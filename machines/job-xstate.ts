/**
 * Plain evaluation of the job machine with xstate's pure `initialTransition`/`transition`.
 *
 * This is the reference semantics. It is slow (xstate builds an inert actor per call, about
 * 50 µs), so the engine uses the memoized `beginJob`/`stepJob` of `job-machine.ts`, which
 * learns every decision from these functions and is property-tested equal to them.
 *
 * Invariant: nothing here throws on an illegal event; a refusal is a value with a reason.
 */
import { initialTransition, transition } from "xstate"
import {
  jobMachine,
  predicates,
  retriesLeft,
  STATE_NAMES,
  type JobContext,
  type JobIntent,
  type JobLife,
  type JobMachineEvent,
  type MachineBody,
  type PredicateName
} from "./job-definition.ts"
import type { JobAdded, JobEventBody, JobStateName, QueueEventBody } from "./schema.ts"

/** The outcome of one event: the next life and the intents, or a refusal. Never thrown. */
export type Step =
  | { readonly ok: true; readonly life: JobLife; readonly intents: ReadonlyArray<JobIntent> }
  | { readonly ok: false; readonly reason: string }

/** A new job's life and the intents of the state it starts in. */
export interface Begin {
  readonly life: JobLife
  readonly intents: ReadonlyArray<JobIntent>
}

/** The reason a JobAdded is refused by a job that already exists. */
export const DUPLICATE_ADD = "JobAdded is not allowed: the job already exists (duplicate)"

/** xstate's view of a body: `type` is the `_tag`. */
export const toMachineEvent = (body: MachineBody): JobMachineEvent => ({ ...body, type: body._tag }) as JobMachineEvent

/** True when `s` names one of the six job states. */
export const isJobStateName = (s: unknown): s is JobStateName =>
  typeof s === "string" && (STATE_NAMES as ReadonlyArray<string>).includes(s)

/** `beginJob` evaluated by xstate's `initialTransition`. */
export function beginJobXState(added: JobAdded, time: number): Begin {
  const [snapshot, actions] = initialTransition(jobMachine, { added, time })
  return { life: lifeOf(snapshot.value, snapshot.context), intents: intentsOf(actions) }
}

/** `stepJob` evaluated by xstate's `transition` from a snapshot restored with `resolveState`. */
export function stepJobXState(life: JobLife, event: JobEventBody | QueueEventBody): Step {
  if (event._tag === "JobAdded") return { ok: false, reason: DUPLICATE_ADD }
  if (!isJobStateName(life.state)) return { ok: false, reason: `unknown job state ${String(life.state)}` }
  const snapshot = jobMachine.resolveState({ value: life.state, context: contextOf(life) })
  const machineEvent = toMachineEvent(event)
  if (!snapshot.can(machineEvent)) return { ok: false, reason: refusalReason(life, event) }
  const [next, actions] = transition(jobMachine, snapshot, machineEvent)
  return { ok: true, life: lifeOf(next.value, next.context), intents: intentsOf(actions) }
}

/**
 * Why `event` is refused in `life`: the event has no transition in that state, or the
 * guards of all its transitions failed (each explained).
 */
export function refusalReason(life: JobLife, event: MachineBody): string {
  const base = `${event._tag} is not allowed in state ${life.state}`
  const node = jobMachine.states[life.state as keyof typeof jobMachine.states]
  const candidates = [...(node?.transitions.get(event._tag) ?? []), ...(jobMachine.root.transitions.get(event._tag) ?? [])]
  const explained = candidates.flatMap((t) => {
    const name = typeof t.guard === "string" ? t.guard : undefined
    return name !== undefined && name in explain ? [explain[name as PredicateName](life, event)] : []
  })
  return explained.length === 0 ? base : `${base}: ${explained.join("; ")}`
}

const attemptOf = (e: MachineBody): string => ("attempt" in e ? String(e.attempt) : "none")
const explain: Record<PredicateName, (c: JobContext, e: MachineBody) => string> = {
  startMatches: (c, e) => `attempt ${attemptOf(e)} is not attemptsMade ${c.attemptsMade}`,
  canRetry: (c, e) =>
    retriesLeft(c)
      ? `attempt ${attemptOf(e)} is not the next attempt ${c.attemptsMade + 1}`
      : `no retry left (${c.attemptsMade} of ${c.maxAttempts} made)`,
  retriesExhausted: (c) => `a retry is left (${c.attemptsMade} of ${c.maxAttempts} made)`,
  stallLimitReached: (c) => `stall ${c.stalledCount + 1} is within the limit`,
  queuePaused: () => "the queue is not paused"
}
// the explanations cover every guard: checked at load so a new guard cannot be forgotten
for (const name of Object.keys(predicates)) if (!(name in explain)) throw new Error(`no explanation for guard ${name}`)

function contextOf(life: JobLife): JobContext {
  return {
    attemptsMade: life.attemptsMade,
    maxAttempts: life.maxAttempts,
    stalledCount: life.stalledCount,
    queuePaused: life.queuePaused,
    runAt: life.runAt
  }
}

function lifeOf(value: unknown, c: JobContext): JobLife {
  // the transient `added` state is always left by the initial macrostep
  if (!isJobStateName(value)) throw new Error(`job machine settled in unexpected state ${String(value)}`)
  return {
    state: value,
    attemptsMade: c.attemptsMade,
    maxAttempts: c.maxAttempts,
    stalledCount: c.stalledCount,
    queuePaused: c.queuePaused,
    runAt: c.runAt
  }
}

function intentsOf(actions: ReadonlyArray<{ readonly type: string; readonly params: unknown }>): ReadonlyArray<JobIntent> {
  const intents: Array<JobIntent> = []
  for (const a of actions) {
    switch (a.type) {
      case "enqueue":
      case "hold":
      case "run":
      case "settle":
        intents.push({ type: a.type })
        break
      case "schedule":
        intents.push({ type: "schedule", runAt: (a.params as { runAt: number }).runAt })
        break
    }
  }
  return intents
}
