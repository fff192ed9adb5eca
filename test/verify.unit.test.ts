import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { EventEnvelope } from "../machines/schema.ts"
import { verifyEvents } from "../projections/verify.ts"
import { added, envelope, logArb } from "./support/sim.ts"

const at = (events: ReadonlyArray<EventEnvelope>) => events.map((envelope, i) => ({ offset: 10 + i, envelope }))
const STARTED = { _tag: "JobStarted", attempt: 0 } as const
const COMPLETED = { _tag: "JobCompleted", result: 1 } as const

describe("verifyEvents", () => {
  it("accepts a clean log and counts events and jobs", () => {
    const report = verifyEvents(at([
      envelope("a", 0, added()), envelope("b", 0, added()), envelope("a", 1, STARTED), envelope("a", 2, COMPLETED)
    ]))
    expect(report).toEqual({ events: 4, jobs: 2, issues: [], ok: true })
  })

  it("reports a duplicate at its offset and skips it", () => {
    const report = verifyEvents(at([envelope("a", 0, added()), envelope("a", 1, STARTED), envelope("a", 1, STARTED), envelope("a", 2, COMPLETED)]))
    expect(report.issues).toEqual([{ offset: 12, jobId: "a", kind: "duplicate", message: "JobStarted seq 1 already seen (last 1)" }])
    expect(report.ok).toBe(false)
  })

  it("reports a gap at the event after it", () => {
    const report = verifyEvents(at([envelope("a", 0, added()), envelope("a", 1, STARTED), envelope("a", 3, COMPLETED)]))
    expect(report.issues).toEqual([{ offset: 12, jobId: "a", kind: "gap", message: "seq jumps from 1 to 3 (JobCompleted)" }])
  })

  it("reports events of a job before its JobAdded, and a JobAdded not at seq 0", () => {
    const report = verifyEvents(at([envelope("a", 1, STARTED), envelope("b", 2, added())]))
    expect(report.issues).toEqual([
      { offset: 10, jobId: "a", kind: "unknown-job", message: "JobStarted (seq 1) before the job's JobAdded" },
      { offset: 11, jobId: "b", kind: "gap", message: "JobAdded has seq 2, expected 0" }
    ])
    expect(report.jobs).toBe(1)
  })

  it("reports a transition the machine refuses, with its reason", () => {
    const report = verifyEvents(at([envelope("a", 0, added()), envelope("a", 1, COMPLETED), envelope("a", 2, added())]))
    expect(report.issues).toEqual([
      { offset: 11, jobId: "a", kind: "illegal", message: "seq 1: JobCompleted is not allowed in state waiting" },
      { offset: 12, jobId: "a", kind: "illegal", message: expect.stringMatching(/^seq 2: JobAdded .*duplicate/) }
    ])
  })

  it("follows queue events: a start while paused is illegal, after resume it is fine", () => {
    const report = verifyEvents(at([
      envelope("a", 0, added()),
      envelope(null, 0, { _tag: "QueuePaused" }),
      envelope("a", 1, STARTED),
      envelope(null, 1, { _tag: "QueueResumed" }),
      envelope("a", 2, STARTED)
    ]))
    expect(report.issues).toEqual([
      { offset: 12, jobId: "a", kind: "illegal", message: "seq 1: JobStarted is not allowed in state paused" }
    ])
  })

  it("checks queue event seqs and mismatched job ids", () => {
    const report = verifyEvents(at([
      envelope(null, 0, { _tag: "QueuePaused" }),
      envelope(null, 0, { _tag: "QueuePaused" }),
      envelope(null, 3, { _tag: "QueueResumed" }),
      envelope(null, 4, STARTED),
      envelope("a", 5, { _tag: "QueuePaused" })
    ]))
    expect(report.issues.map(({ offset, jobId, kind }) => [offset, jobId, kind])).toEqual([
      [11, null, "duplicate"], [12, null, "gap"], [13, null, "illegal"], [14, "a", "illegal"]
    ])
  })

  it("follows queue events per partition: each owner's own seqs are not duplicates", () => {
    const p0 = [envelope("a", 0, added()), envelope(null, 0, { _tag: "QueuePaused" }), envelope("a", 1, STARTED)]
    const p1 = [envelope("b", 0, added()), envelope(null, 0, { _tag: "QueuePaused" }), envelope(null, 0, { _tag: "QueuePaused" })]
    const report = verifyEvents([
      ...p0.map((envelope, offset) => ({ partition: 0, offset, envelope })),
      ...p1.map((envelope, offset) => ({ partition: 1, offset, envelope }))
    ])
    expect(report.issues).toEqual([
      { partition: 0, offset: 2, jobId: "a", kind: "illegal", message: "seq 1: JobStarted is not allowed in state paused" },
      { partition: 1, offset: 2, jobId: null, kind: "duplicate", message: "queue event seq 0 already seen (last 0)" }
    ])
  })

  it("finds no issue in any log a legal owner would write", () => {
    fc.assert(
      fc.property(logArb(), (log) => {
        const report = verifyEvents(at(log))
        expect(report.issues).toEqual([])
        expect(report.events).toBe(log.length)
      }),
      { numRuns: 150 }
    )
  })

  it("finds a dropped job event as a gap or an illegal transition of that job", () => {
    fc.assert(
      fc.property(logArb(), fc.nat(), (log, pick) => {
        const droppable = log.flatMap((e, i) => (e.jobId !== null && e.seq > 0 && log.some((later, j) => j > i && later.jobId === e.jobId) ? [i] : []))
        fc.pre(droppable.length > 0)
        const dropped = droppable[pick % droppable.length]!
        const report = verifyEvents(at(log.filter((_, i) => i !== dropped)))
        expect(report.issues.length).toBeGreaterThan(0)
        expect(report.issues[0]).toMatchObject({ jobId: log[dropped]!.jobId, kind: "gap" })
      }),
      { numRuns: 100 }
    )
  })
})
