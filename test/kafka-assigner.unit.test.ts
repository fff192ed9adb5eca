/**
 * The engine group's sticky assigner (src/log/kafka-assigner.ts): balanced, deterministic,
 * and a member keeps its partitions when another one leaves or joins.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { stickyAssignment } from "../src/log/kafka-assigner.ts"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const asObject = (m: Map<string, Array<number>>) => Object.fromEntries(m)

describe("stickyAssignment", () => {
  it("splits fresh members evenly and deterministically", () => {
    const claims = new Map([["b", []], ["a", []], ["c", []]])
    expect(asObject(stickyAssignment(claims, range(6)))).toEqual({ a: [0, 1], b: [2, 3], c: [4, 5] })
  })

  it("moves only the partitions of a member that left", () => {
    const claims = new Map([["a", [0, 3]], ["c", [2, 5]]]) // b (1, 4) died
    const out = stickyAssignment(claims, range(6))
    expect(out.get("a")).toEqual(expect.arrayContaining([0, 3]))
    expect(out.get("c")).toEqual(expect.arrayContaining([2, 5]))
    expect([...out.values()].flat().sort()).toEqual(range(6))
    expect(out.get("a")).toHaveLength(3)
  })

  it("gives a newcomer partitions taken from the members that have most", () => {
    const claims = new Map([["a", [0, 1, 2]], ["b", [3, 4, 5]], ["c", []]])
    const out = stickyAssignment(claims, range(6))
    expect(out.get("a")).toEqual([0, 1])
    expect(out.get("b")).toEqual([3, 4])
    expect(out.get("c")).toEqual([2, 5])
  })

  it("drops partitions that no longer exist and double claims", () => {
    const claims = new Map([["a", [0, 7]], ["b", [0, 1]]])
    const out = stickyAssignment(claims, range(3))
    expect([...out.values()].flat().sort()).toEqual([0, 1, 2])
    expect(out.get("b")).toContain(1)
  })

  it("always assigns every partition exactly once, balanced within one", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 8 }), { minLength: 1, maxLength: 6 }),
        (n, owned) => {
          const claims = new Map(owned.map((ps, i) => [`m${i}`, ps]))
          const out = stickyAssignment(claims, range(n))
          expect([...out.values()].flat().sort((x, y) => x - y)).toEqual(range(n))
          const sizes = [...out.values()].map((ps) => ps.length)
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1)
          expect(stickyAssignment(new Map([...claims].reverse()), range(n))).toEqual(out)
        }
      )
    )
  })
})
