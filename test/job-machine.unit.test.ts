import { describe, expect, it } from "vitest"
import {
  beginJob,
  beginJobXState,
  MAX_STALLS,
  retriesLeft,
  stepJob,
  stepJobXState,
  type JobIntent,
  type JobLife
} from "../machines/job-machine.ts"
import type { JobEventBody, JobStateName, QueueEventBody } from "../machines/schema.ts"
import { added } from "./support/sim.ts"

type Body = JobEventBody | QueueEventBody
type Expected = { readonly life: JobLife; readonly intents: ReadonlyArray<JobIntent> } | "refused"

const STATES: ReadonlyArray<JobStateName> = ["waiting", "delayed", "active", "completed", "failed", "paused", "removed"]
const ERR = { message: "boom" }

/** The transition table of the brief, written independently of the machine: the oracle. */
function expected(life: JobLife, e: Body): Expected {
  const go = (state: JobStateName, patch: Partial<JobLife> = {}): Expected => {
    const next = { ...life, ...patch, state }
    const entered = state !== life.state
    const intent: JobIntent =
      state === "waiting" ? { type: "enqueue" }
      : state === "delayed" ? { type: "schedule", runAt: next.runAt }
      : state === "paused" ? { type: "hold" }
      : state === "active" ? { type: "run" }
      : { type: "settle" }
    return { life: next, intents: entered ? [intent] : [] }
  }
  const ready = (patch: Partial<JobLife> = {}) => go(life.queuePaused ? "paused" : "waiting", patch)
  const left = life.attemptsMade < life.maxAttempts
  switch (e._tag) {
    case "QueuePaused":
      return go(life.state === "waiting" ? "paused" : life.state, { queuePaused: true })
    case "QueueResumed":
      return go(life.state === "paused" ? "waiting" : life.state, { queuePaused: false })
    case "JobAdded":
      return "refused"
    case "JobPromoted":
      return life.state === "delayed" ? ready() : "refused"
    case "JobStarted":
      return life.state === "waiting" && e.attempt === life.attemptsMade ? go("active") : "refused"
    case "JobCompleted":
      return life.state === "active" ? go("completed") : "refused"
    case "JobRetrying":
      return life.state === "active" && left && e.attempt === life.attemptsMade + 1
        ? go("delayed", { attemptsMade: life.attemptsMade + 1, runAt: e.runAt })
        : "refused"
    case "JobFailed":
      return life.state === "active" && !left ? go("failed") : "refused"
    case "JobStalled": {
      if (life.state !== "active") return "refused"
      const stalledCount = life.stalledCount + 1
      return stalledCount > MAX_STALLS ? go("failed", { stalledCount }) : ready({ stalledCount })
    }
    case "JobRetried":
      return life.state === "failed" ? ready({ attemptsMade: 0, stalledCount: 0 }) : "refused"
    case "JobProgress":
      // only a running job reports progress; it changes no state and enters nothing
      return life.state === "active" ? go("active") : "refused"
    case "JobRemoved":
      // anything but a running job (cancel it first) and one already removed
      return life.state === "active" || life.state === "removed" ? "refused" : go("removed")
    case "JobCancelled":
      return life.state === "active" ? go("failed") : "refused"
  }
}

// Generated contexts: retries left / exhausted / none allowed, stall counts around the limit, both flags.
const BUDGETS = [
  { attemptsMade: 0, maxAttempts: 2 },
  { attemptsMade: 1, maxAttempts: 2 },
  { attemptsMade: 2, maxAttempts: 2 },
  { attemptsMade: 0, maxAttempts: 0 }
]
const lives = (state: JobStateName): Array<JobLife> =>
  BUDGETS.flatMap((b) =>
    [0, MAX_STALLS - 1, MAX_STALLS].flatMap((stalledCount) =>
      [false, true].map((queuePaused) => ({ state, ...b, stalledCount, queuePaused, runAt: 500 }))
    )
  )

// Every event tag, with the attempt-carrying ones in several variants.
const EVENTS: Record<Body["_tag"], ReadonlyArray<Body>> = {
  JobAdded: [added()],
  JobPromoted: [{ _tag: "JobPromoted" }],
  JobStarted: [0, 1, 2, 3].map((attempt) => ({ _tag: "JobStarted", attempt })),
  JobCompleted: [{ _tag: "JobCompleted", result: 42 }],
  JobRetrying: [0, 1, 2, 3].map((attempt) => ({ _tag: "JobRetrying", error: ERR, attempt, delay: 100, runAt: 900 + attempt })),
  JobFailed: [{ _tag: "JobFailed", error: ERR }],
  JobStalled: [{ _tag: "JobStalled" }],
  JobRetried: [{ _tag: "JobRetried" }],
  JobProgress: [{ _tag: "JobProgress", value: { done: 0.5 } }],
  JobRemoved: [{ _tag: "JobRemoved", from: "waiting" }],
  JobCancelled: [{ _tag: "JobCancelled", error: { name: "CancelledError", message: "cancelled" } }],
  QueuePaused: [{ _tag: "QueuePaused" }],
  QueueResumed: [{ _tag: "QueueResumed" }]
}

const PAIRS = STATES.flatMap((state) => Object.keys(EVENTS).map((tag) => [state, tag as Body["_tag"]] as const))

describe("job machine: every (state, event) pair", () => {
  it("covers all 7 states x 13 event tags", () => {
    expect(PAIRS).toHaveLength(91)
  })

  it.each(PAIRS)("%s + %s follows the table (fast path and plain xstate)", (state, tag) => {
    for (const life of lives(state)) {
      for (const event of EVENTS[tag]) {
        const want = expected(life, event)
        for (const step of [stepJob(life, event), stepJobXState(life, event)]) {
          if (want === "refused") {
            expect(step).toEqual({ ok: false, reason: expect.stringMatching(new RegExp(`^${tag} is not allowed`)) })
          } else {
            expect(step).toEqual({ ok: true, life: want.life, intents: want.intents })
          }
        }
      }
    }
  })
})

describe("job machine: beginJob", () => {
  it.each([
    { runAt: 150, queuePaused: false, state: "delayed", intents: [{ type: "schedule", runAt: 150 }] },
    { runAt: 150, queuePaused: true, state: "delayed", intents: [{ type: "schedule", runAt: 150 }] },
    { runAt: 100, queuePaused: true, state: "paused", intents: [{ type: "hold" }] },
    { runAt: 100, queuePaused: false, state: "waiting", intents: [{ type: "enqueue" }] },
    { runAt: 50, queuePaused: false, state: "waiting", intents: [{ type: "enqueue" }] }
  ])("runAt $runAt at time 100, paused $queuePaused -> $state", ({ runAt, queuePaused, state, intents }) => {
    const body = added({ runAt, queuePaused, maxAttempts: 3 })
    const want = { life: { state, attemptsMade: 0, maxAttempts: 3, stalledCount: 0, queuePaused, runAt }, intents }
    expect(beginJob(body, 100)).toEqual(want)
    expect(beginJobXState(body, 100)).toEqual(want)
  })
})

describe("job machine: guards", () => {
  const active = (over: Partial<JobLife> = {}): JobLife => ({
    state: "active", attemptsMade: 0, maxAttempts: 2, stalledCount: 0, queuePaused: false, runAt: 0, ...over
  })

  it("retriesLeft is attemptsMade < maxAttempts", () => {
    expect(retriesLeft(active({ attemptsMade: 1, maxAttempts: 2 }))).toBe(true)
    expect(retriesLeft(active({ attemptsMade: 2, maxAttempts: 2 }))).toBe(false)
    expect(retriesLeft(active({ attemptsMade: 0, maxAttempts: 0 }))).toBe(false)
  })

  it("N retries allowed means N+1 runs, then JobRetrying is refused and JobFailed accepted", () => {
    let life = beginJob(added({ maxAttempts: 2 }), 0).life
    const runs: Array<number> = []
    for (;;) {
      const started = stepJob(life, { _tag: "JobStarted", attempt: life.attemptsMade })
      expect(started.ok).toBe(true)
      if (!started.ok) return
      runs.push(started.life.attemptsMade)
      const retry = stepJob(started.life, { _tag: "JobRetrying", error: ERR, attempt: life.attemptsMade + 1, delay: 1, runAt: 1 })
      if (!retry.ok) {
        expect(retry.reason).toMatch(/no retry left \(2 of 2 made\)/)
        expect(stepJob(started.life, { _tag: "JobFailed", error: ERR })).toMatchObject({ ok: true, life: { state: "failed" } })
        break
      }
      const promoted = stepJob(retry.life, { _tag: "JobPromoted" })
      expect(promoted).toMatchObject({ ok: true, life: { state: "waiting" } })
      if (promoted.ok) life = promoted.life
    }
    expect(runs).toEqual([0, 1, 2])
  })

  it("refuses JobFailed while a retry is left, and explains attempt mismatches", () => {
    expect(stepJob(active(), { _tag: "JobFailed", error: ERR })).toEqual({
      ok: false,
      reason: "JobFailed is not allowed in state active: a retry is left (0 of 2 made)"
    })
    expect(stepJob(active(), { _tag: "JobRetrying", error: ERR, attempt: 2, delay: 1, runAt: 1 })).toEqual({
      ok: false,
      reason: "JobRetrying is not allowed in state active: attempt 2 is not the next attempt 1"
    })
    expect(stepJob({ ...active(), state: "waiting" }, { _tag: "JobStarted", attempt: 1 })).toEqual({
      ok: false,
      reason: "JobStarted is not allowed in state waiting: attempt 1 is not attemptsMade 0"
    })
  })

  it("the stall limit: stall number MAX_STALLS still returns to the queue, the next one fails", () => {
    expect(stepJob(active({ stalledCount: MAX_STALLS - 1 }), { _tag: "JobStalled" })).toEqual({
      ok: true,
      life: active({ state: "waiting", stalledCount: MAX_STALLS }),
      intents: [{ type: "enqueue" }]
    })
    expect(stepJob(active({ stalledCount: MAX_STALLS }), { _tag: "JobStalled" })).toEqual({
      ok: true,
      life: active({ state: "failed", stalledCount: MAX_STALLS + 1 }),
      intents: [{ type: "settle" }]
    })
  })

  it("JobRetried gives a fresh budget and clears the stall count", () => {
    const failed = active({ state: "failed", attemptsMade: 2, stalledCount: 4 })
    expect(stepJob(failed, { _tag: "JobRetried" })).toEqual({
      ok: true,
      life: active({ state: "waiting", attemptsMade: 0, stalledCount: 0 }),
      intents: [{ type: "enqueue" }]
    })
  })
})

describe("job machine: pause flag", () => {
  const life = (state: JobStateName, queuePaused: boolean): JobLife => ({
    state, attemptsMade: 0, maxAttempts: 1, stalledCount: 0, queuePaused, runAt: 7
  })

  it.each(STATES.filter((s) => s !== "waiting" && s !== "paused"))("in %s only sets the flag, with no intent", (state) => {
    expect(stepJob(life(state, false), { _tag: "QueuePaused" })).toEqual({ ok: true, life: life(state, true), intents: [] })
    expect(stepJob(life(state, true), { _tag: "QueueResumed" })).toEqual({ ok: true, life: life(state, false), intents: [] })
  })

  it("repeated pause or resume does not re-enter the state", () => {
    expect(stepJob(life("paused", true), { _tag: "QueuePaused" })).toEqual({ ok: true, life: life("paused", true), intents: [] })
    expect(stepJob(life("waiting", false), { _tag: "QueueResumed" })).toEqual({ ok: true, life: life("waiting", false), intents: [] })
  })

  it("a delayed job promoted while paused is held, a stalled one too", () => {
    expect(stepJob(life("delayed", true), { _tag: "JobPromoted" })).toEqual({ ok: true, life: life("paused", true), intents: [{ type: "hold" }] })
    expect(stepJob(life("active", true), { _tag: "JobStalled" })).toEqual({
      ok: true,
      life: { ...life("paused", true), stalledCount: 1 },
      intents: [{ type: "hold" }]
    })
  })

  it("pause then resume returns a waiting job to waiting", () => {
    const p = stepJob(life("waiting", false), { _tag: "QueuePaused" })
    expect(p).toEqual({ ok: true, life: life("paused", true), intents: [{ type: "hold" }] })
    expect(stepJob(life("paused", true), { _tag: "QueueResumed" })).toEqual({ ok: true, life: life("waiting", false), intents: [{ type: "enqueue" }] })
  })
})

describe("job machine: inputs it must survive", () => {
  it("refuses JobAdded on an existing job as a duplicate", () => {
    expect(stepJob(beginJob(added(), 0).life, added())).toEqual({ ok: false, reason: expect.stringMatching(/duplicate/) })
  })

  it("refuses an unknown state without throwing", () => {
    const bogus = { state: "zombie", attemptsMade: 0, maxAttempts: 0, stalledCount: 0, queuePaused: false, runAt: 0 } as unknown as JobLife
    expect(stepJob(bogus, { _tag: "JobPromoted" })).toEqual({ ok: false, reason: "unknown job state zombie" })
    expect(stepJobXState(bogus, { _tag: "JobPromoted" })).toEqual({ ok: false, reason: "unknown job state zombie" })
  })

  it("refuses a state or an event tag it does not know, even one named like an Object member", () => {
    const life = beginJob(added(), 0).life
    const odd = { ...life, state: "constructor" } as unknown as JobLife
    expect(stepJob(odd, { _tag: "JobPromoted" })).toEqual({ ok: false, reason: "unknown job state constructor" })
    const bogus = { _tag: "toString" } as unknown as QueueEventBody
    expect(stepJob(life, bogus)).toEqual({ ok: false, reason: "toString is not allowed in state waiting" })
    expect(stepJob(life, bogus)).toEqual(stepJobXState(life, bogus))
  })

  it("returns a compact life when given a richer object (a JobView)", () => {
    const view = { ...beginJob(added(), 0).life, id: "j1", data: { big: true } }
    const step = stepJob(view, { _tag: "JobStarted", attempt: 0 })
    expect(step.ok && Object.keys(step.life).sort()).toEqual(["attemptsMade", "maxAttempts", "queuePaused", "runAt", "stalledCount", "state"])
  })
})
