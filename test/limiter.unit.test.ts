/**
 * The queue-wide rate limit without coordination: engines owning disjoint partitions,
 * each starting whenever its QueueShareLimiter lets it, never start more than `max` jobs
 * in any window of `duration` ms together — and every engine that owns a partition gets to
 * start jobs (no starvation, also when `max` is below the partition count).
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { maxInAnyWindow } from "./support/windows.ts"
import { QueueShareLimiter } from "../src/engine/limiter.ts"

/** Every engine tries to start at each of its attempt times; returns each one's start times. */
const simulate = (max: number, duration: number, owners: ReadonlyArray<ReadonlyArray<number>>, total: number, attempts: ReadonlyArray<number>) => {
  const engines = owners.map((owned) => {
    const limiter = new QueueShareLimiter({ max, duration })
    limiter.setShare(owned, total)
    return { limiter, starts: [] as Array<number> }
  })
  for (const now of attempts) for (const e of engines) if (e.limiter.waitMs(now) === 0) (e.limiter.record(now), e.starts.push(now))
  return engines.map((e) => e.starts)
}


/** Partitions 0..total-1 dealt to 1..4 engines, each getting at least one (a permutation cut into runs). */
const ownership = fc.integer({ min: 1, max: 8 }).chain((total) =>
  fc
    .tuple(
      fc.shuffledSubarray(Array.from({ length: total }, (_, p) => p), { minLength: total, maxLength: total }),
      fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, total - 1) }), { maxLength: Math.min(3, total - 1) })
    )
    .map(([order, cuts]) => {
      const bounds = [0, ...[...cuts].sort((a, b) => a - b), total]
      return { total, owners: bounds.slice(1).map((end, i) => order.slice(bounds[i], end)) }
    })
)

describe("the queue-wide rate limit", () => {
  it("engines on disjoint partitions never pass max in any window, together", () => {
    fc.assert(
      fc.property(ownership, fc.integer({ min: 1, max: 6 }), fc.integer({ min: 10, max: 500 }), fc.array(fc.nat(20_000), { minLength: 1, maxLength: 400 }), ({ total, owners }, max, duration, times) => {
        const attempts = [...new Set(times)].sort((a, b) => a - b)
        const starts = simulate(max, duration, owners, total, attempts)
        expect(maxInAnyWindow(starts.flat(), duration)).toBeLessThanOrEqual(max)
      }),
      { numRuns: 400 }
    )
  })

  it("every engine that owns a partition gets to start jobs, also when max is below the partition count", () => {
    fc.assert(
      fc.property(ownership, fc.integer({ min: 1, max: 6 }), ({ total, owners }, max) => {
        const duration = 100
        // an engine keeps trying every ms for long enough to see every partition's turn
        const attempts = Array.from({ length: 2 * duration * (total + 1) * 2 }, (_, i) => i)
        const starts = simulate(max, duration, owners, total, attempts)
        for (const [e, s] of starts.entries()) expect(s.length, `engine ${e} owning ${owners[e]} of ${total}, max ${max}`).toBeGreaterThan(0)
      }),
      { numRuns: 200 }
    )
  })

  it("one engine owning every partition has the whole limit (a plain sliding window)", () => {
    const [starts] = simulate(5, 1000, [[0, 1, 2]], 3, Array.from({ length: 3000 }, (_, i) => i))
    expect(starts).toEqual([0, 0, 0, 0, 0].map((_, i) => i).concat([1000, 1001, 1002, 1003, 1004, 2000, 2001, 2002, 2003, 2004]))
  })

  it("shares follow the partitions: ⌊max/total⌋, plus one for the first max mod total", () => {
    const limiter = new QueueShareLimiter({ max: 5, duration: 1000 })
    limiter.setShare([0], 3)
    expect(limiter.share).toBe(2)
    limiter.setShare([2], 3)
    expect(limiter.share).toBe(1)
    limiter.setShare([1, 2], 3)
    expect(limiter.share).toBe(3)
  })
})
