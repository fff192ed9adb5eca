import fc from "fast-check"
import { beforeEach, describe, expect, it } from "vitest"
import {
  beginJob,
  beginJobXState,
  MAX_STALLS,
  resetJobMachineMemo,
  stepJob,
  stepJobXState,
  type JobLife
} from "../machines/job-machine.ts"
import type { JobEventBody, QueueEventBody } from "../machines/schema.ts"
import { added, candidates } from "./support/sim.ts"

type Body = JobEventBody | QueueEventBody

/**
 * A job's start and a run of picks among the likely events: a `legal` pick takes the first
 * candidate the machine accepts from there (so runs go deep), the others may be refused.
 * In `stallHeavy` runs an active job always gets JobStalled, so the stall
 * limit is reached too.
 */
const pickArb = fc.record({ at: fc.nat(), legal: fc.boolean() })
const scenario = fc.record({
  maxAttempts: fc.nat(3),
  runAt: fc.nat(200),
  queuePaused: fc.boolean(),
  stallHeavy: fc.boolean(),
  picks: fc.array(pickArb, { maxLength: 120, size: "large" })
})
type Pick = typeof pickArb extends fc.Arbitrary<infer P> ? P : never

const STALL: Body = { _tag: "JobStalled" }

function events(life: JobLife, pick: Pick, time: number, stallHeavy: boolean): Body {
  if (stallHeavy && life.state === "active") return STALL
  // removal is legal almost everywhere and ends a run: offered in one pick out of eight
  const options = candidates(life, time).filter((e) => e._tag !== "JobRemoved" || (!stallHeavy && pick.at % 8 === 0))
  for (let k = 0; pick.legal && k < options.length; k++) {
    const event = options[(pick.at + k) % options.length]!
    if (accepted(life, event)) return event
  }
  return options[pick.at % options.length]!
}
// legality for picking, by the fast path: the properties below compare it with xstate anyway
const accepted = (life: JobLife, event: Body): boolean => stepJob(life, event).ok

describe("job machine properties", () => {
  beforeEach(() => resetJobMachineMemo())

  it("fast path equals plain xstate transition() on random event sequences", () => {
    fc.assert(
      fc.property(scenario, ({ maxAttempts, runAt, queuePaused, stallHeavy, picks }) => {
        const body = added({ maxAttempts, runAt, queuePaused })
        const begun = beginJob(body, 100)
        expect(begun).toEqual(beginJobXState(body, 100))
        let life = begun.life
        let time = 100
        for (const pick of picks) {
          const event = events(life, pick, ++time, stallHeavy)
          const fast = stepJob(life, event)
          expect(fast).toEqual(stepJobXState(life, event))
          if (fast.ok) life = fast.life
        }
      }),
      { numRuns: 200 }
    )
  })

  it("replaying the same events always yields the same states (determinism)", () => {
    fc.assert(
      fc.property(scenario, ({ maxAttempts, runAt, queuePaused, stallHeavy, picks }) => {
        // record one run's events, then replay them twice from scratch (once with a cold memo)
        const body = added({ maxAttempts, runAt, queuePaused })
        const log: Array<Body> = []
        let life = beginJob(body, 100).life
        picks.forEach((pick, i) => {
          const event = events(life, pick, 100 + i, stallHeavy)
          log.push(event)
          const step = stepJob(life, event)
          if (step.ok) life = step.life
        })
        const replay = (): Array<JobLife> => {
          const trace = [beginJob(body, 100).life]
          for (const event of log) {
            const step = stepJob(trace[trace.length - 1]!, event)
            trace.push(step.ok ? step.life : trace[trace.length - 1]!)
          }
          return trace
        }
        const first = replay()
        resetJobMachineMemo()
        expect(replay()).toEqual(first)
        expect(first[first.length - 1]).toEqual(life)
      }),
      { numRuns: 200 }
    )
  })

  it("reaches the stall limit and every state on long runs (the generator is not shallow)", () => {
    const seen = new Set<string>()
    let stallFailures = 0
    fc.assert(
      fc.property(scenario, ({ maxAttempts, runAt, queuePaused, stallHeavy, picks }) => {
        let life = beginJob(added({ maxAttempts, runAt, queuePaused }), 100).life
        seen.add(life.state)
        for (const pick of picks) {
          const step = stepJob(life, events(life, pick, 100, stallHeavy))
          if (step.ok) life = step.life
          seen.add(life.state)
          if (life.state === "failed" && life.stalledCount > MAX_STALLS) stallFailures++
        }
      }),
      { numRuns: 300, seed: 42 }
    )
    expect([...seen].sort()).toEqual(["active", "completed", "delayed", "failed", "paused", "removed", "waiting"])
    expect(stallFailures).toBeGreaterThan(0)
  })
})
