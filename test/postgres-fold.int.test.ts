/**
 * The Postgres store's fold on random legal logs, against the real PostgreSQL: the table
 * after following a log equals a `PartitionState` with `KEEP_ALL` retention fed the same
 * log — whatever the batch boundaries, when every batch is delivered twice, when the store
 * restarts mid-log, and when two followers race on one table.
 *
 * The log is a `memory:` EventLog (the store reads it through `follow` as it reads SQLite or
 * Kafka); records are plain JSON, decoded by the store as outside bytes.
 */
import fc from "fast-check"
import { ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { EventEnvelope } from "../machines/schema.ts"
import { PartitionState } from "../projections/partition-state.ts"
import { KEEP_ALL } from "../projections/retention.ts"
import { EventLog, type EventLogService, type LogRecord, topicsOf } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { run } from "../src/run.ts"
import { QUEUE_MOVES } from "../src/stores/postgres/fold.ts"
import { readViews } from "../src/stores/postgres/sql.ts"
import { PostgresQueueStore } from "../src/postgres.ts"
import { uniqueQueue } from "./support/backends.ts"
import { dropSchema, pgSkipReason, testPool, uniqueSchema } from "./support/postgres.ts"
import { logArb } from "./support/sim.ts"

const RUNS = Number(process.env.JOBLEDGER_PG_RUNS ?? 25)
const SEED = Number(process.env.JOBLEDGER_SEED ?? 20250611)

/** A legal random log with varied job data (key order, NUL characters, nesting) and metadata. */
const richLogArb = fc
  .tuple(logArb(100, 8), fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: 8, maxLength: 8 }))
  .map(([log, values]) => {
    const dataOf = (id: string) => {
      const k = Number(id.slice("job-".length))
      return k === 0 ? { z: 1, a: "nul\u0000inside", nested: { b: [1, "two", null] } } : values[k]
    }
    return log.map((e): EventEnvelope => {
      if (e.jobId === null) return e
      const body = e.body
      if (body._tag === "JobAdded") return { ...e, body: { ...body, data: dataOf(e.jobId), ...(e.jobId === "job-1" ? { metadata: { tenant: "t1", n: 2 } } : {}) } }
      if (body._tag === "JobRetried" && body.job !== undefined) return { ...e, body: { ...body, job: { ...body.job, data: dataOf(e.jobId) } } }
      return e
    })
  })

/** Where a log is cut into appends (so the follower sees batches of every size). */
const cutsArb = fc.array(fc.nat(100), { maxLength: 6 })

const chunks = <A>(items: ReadonlyArray<A>, cuts: ReadonlyArray<number>): Array<Array<A>> => {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b)
  const out: Array<Array<A>> = []
  let from = 0
  for (const p of [...points, items.length]) {
    if (p > from) out.push(items.slice(from, p))
    from = Math.max(from, p)
  }
  return out
}

/** The reference: PartitionState with KEEP_ALL fed the log as it travels (JSON). */
const reference = (log: ReadonlyArray<EventEnvelope>) => {
  const state = new PartitionState(KEEP_ALL)
  for (const e of log) state.apply(JSON.parse(JSON.stringify(e)) as EventEnvelope)
  const views = [...state.list()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return { views, stats: state.stats() }
}

/** A log whose follow hands every batch over twice, the first time with the previous batch in front. */
const redelivering = (log: EventLogService): EventLogService => ({
  ...log,
  follow: (topic, partition, from, onRecords) => {
    let previous: ReadonlyArray<LogRecord> = []
    return log.follow(topic, partition, from, async (records) => {
      await onRecords([...previous, ...records])
      await onRecords(records)
      previous = records
    })
  }
})

describe.skipIf(pgSkipReason !== undefined)("Postgres store fold (random legal logs, real PostgreSQL)", () => {
  const pool = testPool()
  const schema = uniqueSchema("fold")
  let runtime: ManagedRuntime.ManagedRuntime<EventLog, unknown>
  let log: EventLogService
  const problems: Array<unknown> = []
  const report = (e: unknown) => problems.push(e)

  beforeAll(async () => {
    runtime = ManagedRuntime.make(layerFromUrl(`memory:pg-fold-${schema}`)) as ManagedRuntime.ManagedRuntime<EventLog, unknown>
    log = await runtime.runPromise(EventLog)
  })
  afterAll(async () => {
    await runtime?.dispose()
    await dropSchema(pool, schema)
    await pool.end()
  })

  /** A fresh queue with the log's events as JSON records, appended in `parts`. */
  const queueWith = async () => {
    const queue = uniqueQueue("fold")
    const topics = topicsOf(queue)
    await run(log.ensureTopic(topics.events, 1))
    const append = (events: ReadonlyArray<EventEnvelope>) =>
      run(log.append(topics.events, events.map((e) => ({ key: e.jobId, value: JSON.stringify({ ...e, queue }), partition: 0 }))))
    return { queue, topics, append, source: (over: Partial<{ log: EventLogService }> = {}) => ({ queue, topics, opened: Promise.resolve({ log, partitions: 1, ...over }), report }) }
  }

  const tableOf = async (store: PostgresQueueStore, queue: string) => {
    const stats = await store.stats() // waits until the table holds the whole log
    const views = (await readViews(pool, schema, queue)).map((v) => ({ ...v, queue: "emails" }))
    return { views, stats }
  }
  const asLogged = (log: ReadonlyArray<EventEnvelope>) => reference(log)

  it("queue events become UPDATEs of waiting (pause) and paused (resume) rows, as the reducer moves them", () => {
    expect(QUEUE_MOVES).toEqual({ QueuePaused: [{ from: "waiting", to: "paused" }], QueueResumed: [{ from: "paused", to: "waiting" }] })
  })

  it("the table after following a random log equals PartitionState(KEEP_ALL) fed the same log", async () => {
    await fc.assert(
      fc.asyncProperty(richLogArb, cutsArb, async (events, cuts) => {
        const { queue, append, source } = await queueWith()
        const store = new PostgresQueueStore({ pool, schema, queue })
        const follower = await store.follow(source())
        for (const part of chunks(events, cuts)) await append(part)
        const table = await tableOf(store, queue)
        await follower.stop()
        expect(problems).toEqual([])
        const expected = asLogged(events)
        expect(table.views).toEqual(expected.views)
        expect(table.stats).toEqual(expected.stats)
        expect(store.progress!.recordsApplied).toBe(events.length)
      }),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it("redelivery: every batch handed over twice (and overlapping the previous one) changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(richLogArb.filter((l) => l.length > 0), cutsArb, async (events, cuts) => {
        const { queue, append, source } = await queueWith()
        const store = new PostgresQueueStore({ pool, schema, queue })
        const follower = await store.follow(source({ log: redelivering(log) }))
        for (const part of chunks(events, cuts)) await append(part)
        const table = await tableOf(store, queue)
        await follower.stop() // waits for the redeliveries in flight
        const progress = store.progress!
        expect(problems).toEqual([])
        expect(table).toEqual(asLogged(events))
        // each record was applied once, and every redelivered one was recognized as such
        expect(progress.recordsApplied).toBe(events.length)
        expect(progress.recordsSkipped).toBe(progress.recordsRead - events.length)
        expect(progress.recordsSkipped).toBeGreaterThanOrEqual(events.length)
      }),
      { numRuns: RUNS, seed: SEED + 1 }
    )
  })

  it("restart mid-log: a new follower resumes from the stored position and reads only the rest", async () => {
    await fc.assert(
      fc.asyncProperty(richLogArb, fc.nat(100), async (events, cutAt) => {
        const cut = cutAt % (events.length + 1)
        const { queue, append, source } = await queueWith()
        const first = new PostgresQueueStore({ pool, schema, queue })
        const f1 = await first.follow(source())
        await append(events.slice(0, cut))
        await first.stats()
        await f1.stop()
        await append(events.slice(cut))
        const second = new PostgresQueueStore({ pool, schema, queue })
        const f2 = await second.follow(source())
        const table = await tableOf(second, queue)
        await f2.stop()
        const progress = second.progress!
        expect(problems).toEqual([])
        expect(table).toEqual(asLogged(events))
        expect(progress.recordsRead).toBe(events.length - cut)
        expect(progress.next).toEqual([events.length])
      }),
      { numRuns: RUNS, seed: SEED + 2 }
    )
  })

  it("two followers of one table (two processes with the store) take turns: every record applied once", async () => {
    await fc.assert(
      fc.asyncProperty(richLogArb, cutsArb, async (events, cuts) => {
        const { queue, append, source } = await queueWith()
        const a = new PostgresQueueStore({ pool, schema, queue })
        const b = new PostgresQueueStore({ pool, schema, queue })
        const [fa, fb] = await Promise.all([a.follow(source()), b.follow(source())])
        for (const part of chunks(events, cuts)) await append(part)
        const table = await tableOf(a, queue)
        await b.stats()
        await Promise.all([fa.stop(), fb.stop()])
        const applied = a.progress!.recordsApplied + b.progress!.recordsApplied
        expect(problems).toEqual([])
        expect(table).toEqual(asLogged(events))
        expect(applied).toBe(events.length)
      }),
      { numRuns: RUNS, seed: SEED + 3 }
    )
  })
})
