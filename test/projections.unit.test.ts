import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ENVELOPE_VERSION, type AddJob, type CommandEnvelope, type EventEnvelope, type JobEventEnvelope, type JobStateName } from "../machines/schema.ts"
import { PendingAdds } from "../projections/pending-adds.ts"
import { emptyHistory, evolveHistory, type JobHistory } from "../projections/history.ts"
import { applyQueueEventToView, evolveJobView, STALLED_ERROR, type JobView } from "../projections/job-view.ts"
import { PARTITION_STATE_VERSION, PartitionState, type Applied, type Transition } from "../projections/partition-state.ts"
import { KEEP_ALL, type Retention } from "../projections/retention.ts"
import { countStats, emptyStats, evolveStats } from "../projections/stats.ts"
import { added, envelope, logArb, QUEUE } from "./support/sim.ts"

const ERR = { name: "Error", message: "boom" }
const jobEnv = (seq: number, body: JobEventEnvelope["body"], time = 1000 + seq) => envelope("j1", seq, body, time) as JobEventEnvelope
const fold = (events: ReadonlyArray<JobEventEnvelope>): JobView | undefined =>
  events.reduce<JobView | undefined>((v, e) => evolveJobView(v, e), undefined)

describe("evolveJobView", () => {
  const addedEnv = jobEnv(0, added({ runAt: 1000, maxAttempts: 1, metadata: { tenant: "t1" } }))

  it("JobAdded creates the view; another first event leaves it undefined", () => {
    expect(evolveJobView(undefined, addedEnv)).toEqual({
      id: "j1", queue: QUEUE, name: "send", data: { to: "a@b.c" }, priority: 0, metadata: { tenant: "t1" },
      state: "waiting", attemptsMade: 0, maxAttempts: 1, stalledCount: 0, queuePaused: false, runAt: 1000,
      createdAt: 1000, updatedAt: 1000, seq: 0
    })
    expect(evolveJobView(undefined, jobEnv(1, { _tag: "JobStarted", attempt: 0 }))).toBeUndefined()
  })

  it("a retry then a success: error on retry, result (and no error) on completion", () => {
    const retrying = fold([
      addedEnv,
      jobEnv(1, { _tag: "JobStarted", attempt: 0 }),
      jobEnv(2, { _tag: "JobRetrying", error: ERR, attempt: 1, delay: 50, runAt: 1052 })
    ])
    expect(retrying).toMatchObject({ state: "delayed", attemptsMade: 1, runAt: 1052, error: ERR, seq: 2, updatedAt: 1002 })
    const done = fold([
      addedEnv, jobEnv(1, { _tag: "JobStarted", attempt: 0 }),
      jobEnv(2, { _tag: "JobRetrying", error: ERR, attempt: 1, delay: 50, runAt: 1052 }),
      jobEnv(3, { _tag: "JobPromoted" }), jobEnv(4, { _tag: "JobStarted", attempt: 1 }),
      jobEnv(5, { _tag: "JobCompleted", result: "sent" })
    ])
    expect(done).toMatchObject({ state: "completed", result: "sent", error: undefined, createdAt: 1000, updatedAt: 1005, seq: 5 })
  })

  it("failing for good keeps the error; JobRetried clears result and error and the budget", () => {
    const failed = fold([addedEnv, jobEnv(1, { _tag: "JobStarted", attempt: 0 }),
      jobEnv(2, { _tag: "JobRetrying", error: ERR, attempt: 1, delay: 0, runAt: 1002 }),
      jobEnv(3, { _tag: "JobPromoted" }), jobEnv(4, { _tag: "JobStarted", attempt: 1 }),
      jobEnv(5, { _tag: "JobFailed", error: { message: "final" } })])
    expect(failed).toMatchObject({ state: "failed", error: { message: "final" }, attemptsMade: 1 })
    const retried = evolveJobView(failed, jobEnv(6, { _tag: "JobRetried" }))
    expect(retried).toMatchObject({ state: "waiting", attemptsMade: 0, error: undefined, result: undefined })
  })

  it("too many stalls fail the job with a StalledError", () => {
    const events: Array<JobEventEnvelope> = [addedEnv]
    for (let i = 0; i <= 10; i++)
      events.push(jobEnv(events.length, { _tag: "JobStarted", attempt: 0 }), jobEnv(events.length + 1, { _tag: "JobStalled" }))
    expect(fold(events)).toMatchObject({ state: "failed", stalledCount: 11, error: STALLED_ERROR })
    expect(fold(events.slice(0, -2))).toMatchObject({ state: "waiting", stalledCount: 10, error: undefined })
  })

  it("is idempotent and ignores refused events: the same object comes back", () => {
    const view = fold([addedEnv, jobEnv(1, { _tag: "JobStarted", attempt: 0 })])!
    expect(evolveJobView(view, jobEnv(1, { _tag: "JobStarted", attempt: 0 }))).toBe(view)
    expect(evolveJobView(view, jobEnv(0, added()))).toBe(view)
    expect(evolveJobView(view, jobEnv(2, { _tag: "JobPromoted" }))).toBe(view)
    expect(evolveJobView(view, jobEnv(2, added()))).toBe(view)
    expect(evolveJobView(view, { ...jobEnv(2, { _tag: "JobCompleted", result: 1 }), jobId: "other" })).toBe(view)
  })

  it("applyQueueEventToView moves waiting to paused (updatedAt = time), elsewhere only the flag", () => {
    const waiting = fold([addedEnv])!
    expect(applyQueueEventToView(waiting, { _tag: "QueuePaused" }, 2000)).toMatchObject({ state: "paused", queuePaused: true, updatedAt: 2000, seq: 0 })
    expect(applyQueueEventToView(waiting, { _tag: "QueueResumed" }, 2000)).toBe(waiting)
    const active = fold([addedEnv, jobEnv(1, { _tag: "JobStarted", attempt: 0 })])!
    expect(applyQueueEventToView(active, { _tag: "QueuePaused" }, 2000)).toMatchObject({ state: "active", queuePaused: true, updatedAt: 1001 })
  })
})

describe("stats", () => {
  it("evolveStats moves one unit and returns the same object when nothing moves", () => {
    expect(evolveStats(emptyStats, "waiting", "waiting")).toBe(emptyStats)
    const one = evolveStats(emptyStats, undefined, "waiting")
    expect(evolveStats(one, "waiting", "active")).toEqual({ ...emptyStats, active: 1 })
    expect(evolveStats(one, "waiting", undefined)).toEqual(emptyStats)
    expect(countStats(["failed", "failed", "paused"])).toEqual({ ...emptyStats, failed: 2, paused: 1 })
  })
})

describe("evolveHistory", () => {
  const feed = (events: ReadonlyArray<EventEnvelope>, from: JobHistory = emptyHistory) =>
    events.reduce((h, e, i) => evolveHistory(h, e, 100 + i), from)

  it("records each event with the state it led to and its interesting fields", () => {
    const h = feed([
      jobEnv(0, added({ runAt: 1000, maxAttempts: 1 })),
      envelope(null, 0, { _tag: "QueuePaused" }, 1500),
      envelope(null, 1, { _tag: "QueueResumed" }, 1600),
      jobEnv(1, { _tag: "JobStarted", attempt: 0 }),
      jobEnv(2, { _tag: "JobRetrying", error: ERR, attempt: 1, delay: 5, runAt: 1007 }),
      jobEnv(3, { _tag: "JobCompleted", result: 1 }),
      jobEnv(3, { _tag: "JobPromoted" })
    ])
    expect(h.entries).toEqual([
      { offset: 100, seq: 0, time: 1000, type: "JobAdded", state: "waiting", detail: { runAt: 1000, maxAttempts: 1, priority: 0 } },
      { offset: 101, seq: 0, time: 1500, type: "QueuePaused", state: "paused" },
      { offset: 102, seq: 1, time: 1600, type: "QueueResumed", state: "waiting" },
      { offset: 103, seq: 1, time: 1001, type: "JobStarted", state: "active", detail: { attempt: 0 } },
      { offset: 104, seq: 2, time: 1002, type: "JobRetrying", state: "delayed", detail: { attempt: 1, delay: 5, runAt: 1007, error: "boom" } },
      { offset: 105, seq: 3, time: 1003, type: "JobCompleted", state: "delayed",
        detail: { result: 1, refused: "JobCompleted is not allowed in state delayed" } }
    ])
    expect(h.life).toMatchObject({ state: "delayed", attemptsMade: 1 })
  })

  it("is idempotent, and a queue event that moves nothing only updates the flag", () => {
    const h = feed([jobEnv(0, added()), jobEnv(1, { _tag: "JobStarted", attempt: 0 })])
    expect(evolveHistory(h, jobEnv(1, { _tag: "JobStarted", attempt: 0 }), 9)).toBe(h)
    const paused = evolveHistory(h, envelope(null, 0, { _tag: "QueuePaused" }), 9)
    expect(paused.entries).toBe(h.entries)
    expect(paused.life).toMatchObject({ state: "active", queuePaused: true })
    expect(evolveHistory(paused, envelope(null, 0, { _tag: "QueuePaused" }), 10)).toBe(paused)
    expect(evolveHistory(emptyHistory, jobEnv(1, { _tag: "JobStarted", attempt: 0 }), 1)).toBe(emptyHistory)
  })
})

describe("PartitionState", () => {
  const twoJobs = (p: PartitionState) => {
    p.apply(envelope("a", 0, added({ runAt: 0 })))
    p.apply(envelope("b", 0, added({ runAt: 5000 })))
    p.apply(envelope("c", 0, added({ runAt: 0, maxAttempts: 0 })))
    p.apply(envelope("c", 1, { _tag: "JobStarted", attempt: 0 }))
    p.apply(envelope("c", 2, { _tag: "JobFailed", error: ERR }))
  }
  const moved = (a: Applied) => (a.ok ? a.transitions : [])
  const complete = (p: PartitionState, id: string, time: number) => {
    p.apply(envelope(id, 0, added({ runAt: 0 }), time))
    p.apply(envelope(id, 1, { _tag: "JobStarted", attempt: 0 }, time))
    return p.apply(envelope(id, 2, { _tag: "JobCompleted", result: id }, time))
  }

  it("keeps views, lists by state and counts", () => {
    const p = new PartitionState()
    twoJobs(p)
    expect(p.size).toBe(3)
    expect(p.stats()).toEqual({ ...emptyStats, waiting: 1, delayed: 1, failed: 1 })
    expect(p.list("delayed").map((v) => v.id)).toEqual(["b"])
    expect(p.list().map((v) => v.id)).toEqual(["a", "b", "c"])
    expect(p.get("c")).toMatchObject({ state: "failed", error: ERR })
    expect(p.get("zzz")).toBeUndefined()
  })

  it("stats() is a frozen copy: the counts it gave stay as they were when later events move jobs", () => {
    const p = new PartitionState()
    twoJobs(p)
    const before = p.stats()
    expect(Object.isFrozen(before)).toBe(true)
    expect(p.stats()).toBe(before) // nothing moved: the same copy
    p.apply(envelope("a", 1, { _tag: "JobStarted", attempt: 0 }))
    expect(before).toEqual({ ...emptyStats, waiting: 1, delayed: 1, failed: 1 })
    expect(p.stats()).toEqual({ ...emptyStats, active: 1, delayed: 1, failed: 1 })
    expect(p.toSnapshot().counts).toEqual(p.stats())
  })

  it("one step gives the change and the intents of the state entered", () => {
    const p = new PartitionState()
    expect(moved(p.apply(envelope("a", 0, added({ runAt: 0 }))))).toEqual([
      { before: undefined, after: expect.objectContaining({ state: "waiting" }), intents: [{ type: "enqueue" }] }
    ])
    expect(moved(p.apply(envelope("b", 0, added({ runAt: 5000 })))).map((t) => t.intents)).toEqual([[{ type: "schedule", runAt: 5000 }]])
    expect(moved(p.apply(envelope("a", 1, { _tag: "JobStarted", attempt: 0 })))[0]?.intents).toEqual([{ type: "run" }])
    expect(p.apply(envelope("a", 2, { _tag: "JobStarted", attempt: 0 }))).toEqual({ ok: false, reason: expect.stringMatching(/not allowed in state active/) })
    expect(p.apply(envelope("a", 1, { _tag: "JobStarted", attempt: 0 }))).toEqual({ ok: true, transitions: [] }) // duplicate
  })

  it("pause moves only waiting jobs, resume moves them back; others follow on their next event", () => {
    const p = new PartitionState()
    twoJobs(p)
    const changes = moved(p.apply(envelope(null, 0, { _tag: "QueuePaused" }, 3000)))
    expect(changes.map(({ before, after, intents }) => [after.id, before?.state, after.state, intents])).toEqual([["a", "waiting", "paused", [{ type: "hold" }]]])
    expect(p.queuePaused).toBe(true)
    expect(p.queueSeq).toBe(0)
    expect(p.stats()).toEqual({ ...emptyStats, paused: 1, delayed: 1, failed: 1 })
    expect(moved(p.apply(envelope(null, 0, { _tag: "QueuePaused" })))).toEqual([])
    expect(p.get("b")).toMatchObject({ state: "delayed", queuePaused: true })
    expect(moved(p.apply(envelope("b", 1, { _tag: "JobPromoted" })))).toEqual([
      { before: expect.objectContaining({ state: "delayed" }), after: expect.objectContaining({ state: "paused" }), intents: [{ type: "hold" }] }
    ])
    p.apply(envelope("c", 3, { _tag: "JobRetried" }))
    expect(p.list("paused").map((v) => v.id)).toEqual(["a", "b", "c"])
    expect(moved(p.apply(envelope(null, 1, { _tag: "QueueResumed" }, 4000))).map((c) => c.after.state)).toEqual(["waiting", "waiting", "waiting"])
    expect(p.stats()).toEqual({ ...emptyStats, waiting: 3 })
  })

  it("retention: finished jobs beyond the count leave memory, oldest first; counts stay exact", () => {
    const p = new PartitionState({ completed: { count: 2, age: Infinity }, failed: { count: 1, age: Infinity } })
    for (const [i, id] of ["a", "b", "c"].entries()) complete(p, id, 1000 + i)
    expect(p.stats()).toEqual({ ...emptyStats, completed: 3 })
    expect(p.list("completed").map((v) => v.id)).toEqual(["b", "c"])
    expect(p.get("a")).toBeUndefined()
    expect(p.size).toBe(2)
  })

  it("retention by age: a finishing job lets go of those older than the age", () => {
    const p = new PartitionState({ completed: { count: Infinity, age: 100 }, failed: { count: 0, age: Infinity } })
    complete(p, "a", 1000)
    complete(p, "b", 1050)
    expect(p.list("completed").map((v) => v.id)).toEqual(["a", "b"])
    complete(p, "c", 1101)
    expect(p.list("completed").map((v) => v.id)).toEqual(["b", "c"])
    expect(p.stats().completed).toBe(3)
  })

  it("a job's own keep rule trims with its own bound (count 0: gone at once, still announced)", () => {
    const p = new PartitionState()
    p.apply(envelope("a", 0, added({ runAt: 0, keep: { completed: { count: 0 } } })))
    p.apply(envelope("a", 1, { _tag: "JobStarted", attempt: 0 }))
    const done = moved(p.apply(envelope("a", 2, { _tag: "JobCompleted", result: 1 })))
    expect(done[0]?.after).toMatchObject({ id: "a", state: "completed" })
    expect(p.get("a")).toBeUndefined()
    expect(p.stats().completed).toBe(1)
  })

  it("a JobRetried carrying its job brings back a failed job that left memory", () => {
    const p = new PartitionState({ ...KEEP_ALL, failed: { count: 0, age: Infinity } })
    p.apply(envelope("c", 0, added({ runAt: 0, maxAttempts: 0, createdAt: 900 })))
    p.apply(envelope("c", 1, { _tag: "JobStarted", attempt: 0 }))
    p.apply(envelope("c", 2, { _tag: "JobFailed", error: ERR }))
    expect(p.get("c")).toBeUndefined()
    expect(p.apply(envelope("c", 3, { _tag: "JobRetried" }))).toEqual({ ok: false, reason: expect.stringMatching(/does not hold/) })
    const job = { name: "send", data: { to: "a@b.c" }, priority: 0, createdAt: 900, runAt: 0, maxAttempts: 0, stalledCount: 0, attemptsMade: 0 }
    const back = moved(p.apply(envelope("c", 3, { _tag: "JobRetried", job })))
    expect(back[0]).toMatchObject({ before: { state: "failed" }, after: { id: "c", state: "waiting", seq: 3, createdAt: 900 }, intents: [{ type: "enqueue" }] })
    expect(p.stats()).toEqual({ ...emptyStats, waiting: 1 })
  })

  it("a JobAdded for a job whose life ended begins a new life; the old one stays counted", () => {
    const p = new PartitionState()
    complete(p, "a", 1000)
    expect(moved(p.apply(envelope("a", 0, added({ runAt: 0, createdAt: 1000 }), 2000)))).toEqual([]) // the same ask again: a duplicate
    const again = moved(p.apply(envelope("a", 0, added({ runAt: 0, createdAt: 1900 }), 2000)))
    expect(again).toEqual([{ before: undefined, after: expect.objectContaining({ id: "a", state: "waiting", seq: 0 }), intents: [{ type: "enqueue" }] }])
    expect(p.stats()).toEqual({ ...emptyStats, completed: 1, waiting: 1 })
    expect(p.list("completed")).toEqual([])
    expect(moved(p.apply(envelope("a", 0, added({ runAt: 0 }), 2001)))).toEqual([]) // a live job: a duplicate
  })

  it("round-trips through a plain-JSON snapshot; another version or a bad shape asks for a replay", () => {
    const p = new PartitionState()
    twoJobs(p)
    p.apply(envelope(null, 0, { _tag: "QueuePaused" }))
    const json = JSON.parse(JSON.stringify(p.toSnapshot()))
    const q = PartitionState.fromSnapshot(json)!
    expect(q.toSnapshot()).toEqual(p.toSnapshot())
    expect(q.stats()).toEqual(p.stats())
    expect(q.queuePaused).toBe(true)
    expect(PartitionState.fromSnapshot({ ...json, version: PARTITION_STATE_VERSION + 1 })).toBeUndefined()
    expect(PartitionState.fromSnapshot({ ...json, jobs: [...json.jobs, { id: "x", state: "lost", seq: 0 }] })).toBeUndefined()
    expect(PartitionState.fromSnapshot({ ...json, order: { ...json.order, paused: [] } })).toBeUndefined()
    expect(PartitionState.fromSnapshot({ ...json, counts: { waiting: "1" } })).toBeUndefined()
    expect(PartitionState.fromSnapshot(null)).toBeUndefined()
  })
})

describe("PartitionState properties", () => {
  const recount = (p: PartitionState) => countStats(p.list().map((v) => v.state))
  const LIVE: ReadonlyArray<JobStateName> = ["waiting", "delayed", "active", "paused"]
  const STATES: ReadonlyArray<JobStateName> = [...LIVE, "completed", "failed"]
  const retentionArb: fc.Arbitrary<Retention> = fc.record({
    completed: fc.record({ count: fc.oneof(fc.constant(Infinity), fc.nat(4)), age: fc.oneof(fc.constant(Infinity), fc.nat(40)) }),
    failed: fc.record({ count: fc.oneof(fc.constant(Infinity), fc.nat(4)), age: fc.oneof(fc.constant(Infinity), fc.nat(40)) })
  })

  it("keeping every job, stats always equal a recount of the views by state", () => {
    fc.assert(
      fc.property(logArb(), (log) => {
        const p = new PartitionState(KEEP_ALL)
        for (const e of log) {
          p.apply(e)
          expect(p.stats()).toEqual(recount(p))
        }
      }),
      { numRuns: 150 }
    )
  })

  it("retention changes what is held, never the counts nor any live job", () => {
    fc.assert(
      fc.property(logArb(200, 24), retentionArb, (log, retention) => {
        const all = new PartitionState(KEEP_ALL)
        const kept = new PartitionState(retention)
        for (const e of log) {
          const a = all.apply(e)
          const k = kept.apply(e)
          // the same decision for every event, whatever was let go
          expect(k.ok).toBe(a.ok)
          expect(kept.stats()).toEqual(all.stats())
        }
        for (const s of LIVE) expect(kept.list(s)).toEqual(all.list(s))
        for (const s of ["completed", "failed"] as const) {
          const held = kept.list(s).map((v) => v.id)
          expect(held.length).toBeLessThanOrEqual(retention[s].count)
          expect(all.list(s).map((v) => v.id)).toEqual(expect.arrayContaining(held))
        }
      }),
      { numRuns: 200 }
    )
  })

  // Of jobs it holds: a removed job (or one past retention) has left memory, and its own
  // JobAdded delivered again would look new. The logs never deliver a record twice (offsets).
  it("is idempotent under redelivery of the jobs it holds: applying any prefix again changes nothing", () => {
    fc.assert(
      fc.property(logArb(120, 8, false), fc.array(fc.nat(), { maxLength: 30 }), (log, redeliveries) => {
        const once = new PartitionState(KEEP_ALL)
        for (const e of log) once.apply(e)
        const before = once.toSnapshot()
        for (const n of redeliveries) for (const e of log.slice(0, n % (log.length + 1))) expect(moved(once.apply(e))).toEqual([])
        expect(once.toSnapshot()).toEqual(before)
        // redelivery interleaved with progress: after event i, events 0..k again
        const twice = new PartitionState(KEEP_ALL)
        log.forEach((e, i) => {
          twice.apply(e)
          for (const again of log.slice(0, (redeliveries[i] ?? 0) % (i + 2))) twice.apply(again)
        })
        expect(twice.toSnapshot()).toEqual(before)
      }),
      { numRuns: 150 }
    )
    function moved(a: Applied) {
      return a.ok ? a.transitions : []
    }
  })

  it("pausing only waiting jobs (lazy flags) equals applying queue events to every view", () => {
    fc.assert(
      fc.property(logArb(), (log) => {
        const p = new PartitionState(KEEP_ALL)
        const eager = new Map<string, JobView>()
        for (const e of log) {
          p.apply(e)
          if (e.jobId === null && (e.body._tag === "QueuePaused" || e.body._tag === "QueueResumed")) {
            for (const [id, v] of eager) eager.set(id, applyQueueEventToView(v, e.body, e.time))
          } else {
            const next = evolveJobView(eager.get(e.jobId!), e as JobEventEnvelope)
            if (next !== undefined) eager.set(e.jobId!, next)
          }
        }
        const byId = (a: JobView, b: JobView) => a.id.localeCompare(b.id)
        expect([...p.list()].sort(byId)).toEqual([...eager.values()].filter((v) => v.state !== "removed").sort(byId))
      }),
      { numRuns: 150 }
    )
  })

  it("a snapshot taken anywhere plus the tail ≡ a full replay: state, lists and the tail's decisions and intents", () => {
    fc.assert(
      fc.property(logArb(200, 24), retentionArb, fc.nat(), (log, retention, cut) => {
        const straight = new PartitionState(retention)
        const at = cut % (log.length + 1)
        const first = new PartitionState(retention)
        for (const e of log.slice(0, at)) {
          straight.apply(e)
          first.apply(e)
        }
        const resumed = PartitionState.fromSnapshot(JSON.parse(JSON.stringify(first.toSnapshot())), retention)!
        for (const e of log.slice(at)) expect(resumed.apply(e)).toEqual(straight.apply(e))
        expect(resumed.toSnapshot()).toEqual(straight.toSnapshot())
        expect(resumed.stats()).toEqual(straight.stats())
        for (const s of STATES) expect(resumed.list(s).map((v) => v.id)).toEqual(straight.list(s).map((v) => v.id))
      }),
      { numRuns: 200 }
    )
  })

  // An engine and the read model of its process: the reader is handed the engine's transition
  // of each event it appended (LogRecord.decided). It must end exactly where stepping alone
  // would, sharing the engine's view objects only where it started from the same ones.
  it("a reader handed a decider's transitions decides exactly as alone, and shares its views where their chains agree", () => {
    let shared = 0
    fc.assert(
      fc.property(logArb(200, 24), retentionArb, retentionArb, fc.nat(), (log, engineRetention, readerRetention, cut) => {
        const engine = new PartitionState(engineRetention)
        const alone = new PartitionState(readerRetention)
        // a reader that joined late: restored from a snapshot (its own objects), then handed transitions
        const at = cut % (log.length + 1)
        const early = new PartitionState(readerRetention)
        for (const e of log.slice(0, at)) early.apply(e)
        const reader = PartitionState.fromSnapshot(JSON.parse(JSON.stringify(early.toSnapshot())), readerRetention)!
        log.forEach((e, i) => {
          const decided = engine.apply(e)
          const expected = alone.apply(e)
          if (i < at) {
            // before the reader joined; a stale hint (the previous event's) must change nothing either
            return
          }
          const known = decided.ok && e.jobId !== null ? decided.transitions[0] : undefined
          const got = reader.apply(e, known)
          expect(got).toEqual(expected)
          if (got.ok && known !== undefined && got.transitions[0]?.after === known.after) shared++
        })
        expect(reader.toSnapshot()).toEqual(alone.toSnapshot())
        // a hint for another event (here: the previous event's transition) is never taken
        const hints = new PartitionState(engineRetention)
        const fresh = new PartitionState(readerRetention)
        let previous: Transition | undefined
        for (const e of log) {
          const got = fresh.apply(e, previous)
          const decided = hints.apply(e)
          if (decided.ok && decided.transitions[0] !== undefined) previous = decided.transitions[0]
          if (got.ok) for (const t of got.transitions) expect(t.after.id === e.jobId ? t.after.seq : e.seq).toBe(e.seq)
        }
        expect(fresh.toSnapshot()).toEqual(alone.toSnapshot())
      }),
      { numRuns: 200 }
    )
    // the hint is taken in practice (the reader holds the engine's objects), not only ignored safely
    expect(shared).toBeGreaterThan(100)
  })
})

describe("PendingAdds", () => {
  const command = (jobId: string, delay: number): CommandEnvelope & { readonly jobId: string } => ({
    v: ENVELOPE_VERSION,
    queue: QUEUE,
    jobId,
    time: Date.now(),
    body: { _tag: "AddJob", name: "n", data: { jobId }, priority: 0, delay, metadata: { by: "test" } }
  })
  const addTo = (pending: PendingAdds, jobId: string, delay: number, partition: number) => {
    const c = command(jobId, delay)
    pending.add(c, c.body as AddJob, 3, partition)
  }

  it("shows each pending job as the machine would start it, on its partition paused or not, until accepted", () => {
    const pending = new PendingAdds()
    addTo(pending, "now", 0, 0)
    addTo(pending, "later", 60_000, 0)
    addTo(pending, "elsewhere", 0, 1)
    addTo(pending, "now", 60_000, 1) // the first command for an id wins
    const pausedOf = (p: number) => p === 0
    expect(pending.size).toBe(3)
    expect(pending.stats(pausedOf)).toEqual({ ...emptyStats, paused: 1, delayed: 1, waiting: 1 })
    expect(pending.stats(() => false)).toEqual({ ...emptyStats, waiting: 2, delayed: 1 })
    expect(pending.get("now", pausedOf)).toMatchObject({ id: "now", state: "paused", queuePaused: true, maxAttempts: 3, seq: -1, data: { jobId: "now" }, metadata: { by: "test" } })
    expect(pending.get("now", () => false)).toMatchObject({ state: "waiting", queuePaused: false })
    expect(pending.get("later", pausedOf)).toMatchObject({ state: "delayed" })
    expect(pending.list("paused", pausedOf).map((v) => v.id)).toEqual(["now"])
    expect(pending.list(undefined, pausedOf).map((v) => v.id)).toEqual(["now", "later", "elsewhere"])
    pending.accepted("now")
    expect(pending.get("now", pausedOf)).toBeUndefined()
    expect(pending.stats(pausedOf)).toEqual({ ...emptyStats, delayed: 1, waiting: 1 })
  })
})
