/**
 * The Kafka EventLog (src/log/kafka-log.ts) against a real broker at KAFKA_BROKERS, through
 * its layer, the way the engine and the read plane use it. By hand:
 *   export KAFKA_BROKERS=$(node scripts/kafka.mjs start | tail -n 1)
 *   npx vitest run test/kafka-log.int.test.ts
 */
import { Effect, Exit, ManagedRuntime, Scope } from "effect"
import { randomUUID } from "node:crypto"
import kafkajs from "kafkajs"
import { afterAll, describe, expect, it } from "vitest"
import { EventLog, type EventLogService, FencedError, type GroupSpec, type LogRecord } from "../src/log/event-log.ts"
import { KafkaLog } from "../src/log/kafka-log.ts"
import { JobQueue } from "../src/queue.ts"
import { run } from "../src/run.ts"
import { uniqueQueue, until } from "./support/backends.ts"

const brokers = (process.env.KAFKA_BROKERS ?? "")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean)
if (brokers.length === 0) console.warn("KAFKA_BROKERS is not set: the Kafka EventLog tests are SKIPPED")

const uid = () => randomUUID().slice(0, 8)

/** A log of its own (as another process would have), closed after the suite. */
const runtimes: Array<ManagedRuntime.ManagedRuntime<EventLog, unknown>> = []
const openLog = async (): Promise<{ log: EventLogService; close: () => Promise<void> }> => {
  const runtime = ManagedRuntime.make(KafkaLog.layer(brokers))
  runtimes.push(runtime)
  const log = await runtime.runPromise(EventLog)
  return { log, close: () => runtime.dispose() }
}

/** Runs a scoped effect (follow, join) in a scope the test closes. */
const scoped = async (effect: Effect.Effect<void, unknown, Scope.Scope>) => {
  const scope = await Effect.runPromise(Scope.make())
  await Effect.runPromise(Scope.extend(effect, scope))
  return () => Effect.runPromise(Scope.close(scope, Exit.void))
}

const records = (n: number, prefix: string, partition?: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, value: `${prefix}-${i}`, ...(partition === undefined ? {} : { partition }) }))

/** The raw last stable offset, as kafkajs's admin reports it (includes transaction markers). */
const rawEnd = async (topic: string, partition: number) => {
  const kafka = new kafkajs.Kafka({ clientId: "jobledger-test", brokers, logLevel: kafkajs.logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return Number(offsets.find((o) => o.partition === partition)!.offset)
  } finally {
    await admin.disconnect()
  }
}

/** A group member that records what it is given. */
const member = (group: string, topic: string, onRecords?: (p: number, rs: ReadonlyArray<LogRecord>) => Promise<void>) => {
  const owned = new Set<number>()
  const assigned: Array<{ partition: number; from: number }> = []
  const revoked: Array<number> = []
  const received = new Map<number, Array<LogRecord>>()
  const spec: GroupSpec = {
    group,
    topic,
    assign: async (partition, from) => {
      expect(owned.has(partition), `partition ${partition} assigned twice`).toBe(false)
      owned.add(partition)
      assigned.push({ partition, from })
      return {
        onRecords: async (rs) => {
          expect(owned.has(partition), `records of partition ${partition} delivered while not owned`).toBe(true)
          received.set(partition, [...(received.get(partition) ?? []), ...rs])
          await onRecords?.(partition, rs)
        },
        onRevoked: async () => {
          expect(owned.has(partition), `partition ${partition} revoked while not owned`).toBe(true)
          owned.delete(partition)
          revoked.push(partition)
        }
      }
    }
  }
  return { spec, owned, assigned, revoked, received }
}

describe.skipIf(brokers.length === 0)("Kafka EventLog (KAFKA_BROKERS)", () => {
  afterAll(async () => {
    for (const r of runtimes.reverse()) await r.dispose().catch(() => {})
  }, 60_000)

  it("ensureTopic creates a topic once and reports its partitions", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.events`
    expect(await run(log.ensureTopic(topic, 3))).toBe(3)
    expect(await run(log.ensureTopic(topic, 3))).toBe(3)
    // An existing topic keeps its partition count.
    expect(await run(log.ensureTopic(topic, 5))).toBe(3)
    expect(await run(log.endOffset(topic, 2))).toBe(0)
  }, 60_000)

  it("appends durably and reads partitions back in order; a read at the end returns [] at once", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.commands`
    await run(log.ensureTopic(topic, 3))
    await run(log.append(topic, records(50, "p1", 1)))
    await run(log.append(topic, records(30, "keyed")))
    expect(await run(log.endOffset(topic, 1))).toBeGreaterThanOrEqual(50)

    const all = await run(log.read(topic, 1, 0, 1000))
    expect(all.slice(0, 50).map((r) => r.value)).toEqual(records(50, "p1").map((r) => r.value))
    expect(all.map((r) => r.offset)).toEqual(all.map((_, i) => i))
    for (const r of all) expect(r).toMatchObject({ topic, partition: 1 })

    const middle = await run(log.read(topic, 1, 10, 5))
    expect(middle.map((r) => r.offset)).toEqual([10, 11, 12, 13, 14])
    expect(middle.map((r) => r.value)).toEqual(["p1-10", "p1-11", "p1-12", "p1-13", "p1-14"])

    // Keys choose partitions; a key's records keep their order.
    let keyed: Array<LogRecord> = []
    for (let p = 0; p < 3; p++) keyed = keyed.concat((await run(log.read(topic, p, 0, 1000))).filter((r) => r.value.startsWith("keyed")))
    expect(keyed.map((r) => r.value).sort()).toEqual(records(30, "keyed").map((r) => r.value).sort())
    expect(new Set(keyed.map((r) => r.partition)).size).toBeGreaterThan(1)

    const end = await run(log.endOffset(topic, 1))
    const t0 = Date.now()
    expect(await run(log.read(topic, 1, end, 100))).toEqual([])
    expect(Date.now() - t0).toBeLessThan(2_000)
  }, 60_000)

  it("follows a partition live, only that partition, and stops when its scope closes", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.events`
    await run(log.ensureTopic(topic, 3))
    await run(log.append(topic, records(5, "old", 2)))
    const got: Array<LogRecord> = []
    const other: Array<LogRecord> = []
    const stop = await scoped(log.follow(topic, 2, 3, async (rs) => void got.push(...rs)))
    const stopOther = await scoped(log.follow(topic, 0, 0, async (rs) => void other.push(...rs)))
    await until(() => got.length === 2, "the records after offset 3", 20_000)
    expect(got.map((r) => r.offset)).toEqual([3, 4])

    await run(log.append(topic, records(10, "live", 2)))
    await until(() => got.length === 12, "the live appends", 20_000)
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 12 }, (_, i) => i + 3))
    expect(got.slice(2).map((r) => r.value)).toEqual(records(10, "live").map((r) => r.value))
    expect(got.every((r) => r.partition === 2)).toBe(true)
    expect(other).toEqual([])

    await stop()
    await run(log.append(topic, records(3, "after", 2)))
    await run(log.append(topic, records(2, "zero", 0)))
    await until(() => other.length === 2, "records of partition 0", 20_000)
    await new Promise((r) => setTimeout(r, 500))
    expect(got).toHaveLength(12)
    await stopOther()
  }, 60_000)

  it("serves two followers of one partition, each from its own offset", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.events`
    await run(log.ensureTopic(topic, 1))
    await run(log.append(topic, records(6, "r", 0)))
    const first: Array<number> = []
    const second: Array<number> = []
    const stop1 = await scoped(log.follow(topic, 0, 0, async (rs) => void first.push(...rs.map((r) => r.offset))))
    const stop2 = await scoped(log.follow(topic, 0, 4, async (rs) => void second.push(...rs.map((r) => r.offset))))
    const end = await run(log.endOffset(topic, 0))
    expect(end).toBe(6)
    expect(first).toEqual([0, 1, 2, 3, 4, 5])
    expect(second).toEqual([4, 5])
    await stop1()
    await stop2()
  }, 60_000)

  it("endOffset is reached by followers after a transaction (markers are not records) and reads stop at them", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.events`
    await run(log.ensureTopic(topic, 3))
    let next = 0
    const stop = await scoped(
      log.follow(topic, 0, 0, async (rs) => {
        next = rs[rs.length - 1]!.offset + 1
      })
    )
    const group = `jobledger-test.${uid()}.engine`
    await run(log.transact({ group, partition: 0, eventsTopic: topic, events: records(3, "tx1") }))
    await run(log.transact({ group, partition: 0, eventsTopic: topic, events: records(2, "tx2") }))

    // The log's end includes the commit markers: offsets 3 and 6 are not records. (The
    // markers are written just after EndTxn is acknowledged.)
    await until(async () => (await rawEnd(topic, 0)) === 7, "the commit marker of the second transaction", 10_000)
    const t0 = Date.now()
    const end = await run(log.endOffset(topic, 0))
    expect(Date.now() - t0).toBeLessThan(10_000)
    // What the read model does in caughtUp(): wait until next >= end. It must hold now.
    expect(end).toBeLessThanOrEqual(7)
    expect(next).toBe(6)
    expect(next).toBeGreaterThanOrEqual(end)

    const all = await run(log.read(topic, 0, 0, 100))
    expect(all.map((r) => r.offset)).toEqual([0, 1, 2, 4, 5])
    const t1 = Date.now()
    expect(await run(log.read(topic, 0, 6, 100))).toEqual([])
    expect(Date.now() - t1).toBeLessThan(5_000)
    await stop()

    // A log without followers of the partition answers the last stable offset.
    const { log: other } = await openLog()
    expect(await run(other.endOffset(topic, 0))).toBe(7)
  }, 60_000)

  it("a transaction larger than the broker's message.max.bytes goes out in several requests, all or nothing", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.events`
    await run(log.ensureTopic(topic, 1))
    const group = `jobledger-test.${uid()}.engine`
    // ~2.4 MB: one produce request of it is refused by a default broker (1 MiB).
    const big = Array.from({ length: 4_000 }, (_, i) => ({ key: `k-${i}`, value: `${i}:${"x".repeat(600)}` }))
    await run(log.transact({ group, partition: 0, eventsTopic: topic, events: big }))
    const back: Array<string> = []
    for (let from = 0; back.length < big.length; ) {
      const batch = await run(log.read(topic, 0, from, 1_000))
      if (batch.length === 0) break
      back.push(...batch.map((r) => r.value))
      from = batch[batch.length - 1]!.offset + 1
    }
    expect(back).toEqual(big.map((r) => r.value))
  }, 60_000)

  it("splits a group's partitions between two members and gives all back to the one that stays", async () => {
    const topic = `jobledger-test.${uid()}.commands`
    const group = `jobledger-test.${uid()}.engine`
    const { log: logA } = await openLog()
    const { log: logB } = await openLog()
    await run(logA.ensureTopic(topic, 3))
    const a = member(group, topic)
    const b = member(group, topic)
    const leaveA = await scoped(logA.join(a.spec))
    await until(() => a.owned.size === 3, "A to own the 3 partitions", 30_000)
    expect(a.assigned.map((x) => x.from)).toEqual([0, 0, 0])

    const leaveB = await scoped(logB.join(b.spec))
    await until(() => b.owned.size > 0 && a.owned.size + b.owned.size === 3, "A and B to split the partitions", 30_000)
    expect([...a.owned].some((p) => b.owned.has(p))).toBe(false)
    expect(a.revoked.sort()).toEqual([...b.owned].sort())

    // Commands reach whoever owns their partition.
    await run(logA.append(topic, [0, 1, 2].map((p) => ({ key: null, value: `cmd-${p}`, partition: p }))))
    await until(() => [0, 1, 2].every((p) => (a.received.get(p)?.length ?? 0) + (b.received.get(p)?.length ?? 0) === 1), "one delivery per partition", 20_000)

    await leaveB()
    expect(b.owned.size).toBe(0)
    expect(b.revoked.sort()).toEqual(b.assigned.map((x) => x.partition).sort())
    await until(() => a.owned.size === 3, "A to own the 3 partitions again", 30_000)
    await leaveA()
    expect(a.owned.size).toBe(0)
  }, 120_000)

  it("transact commits events and the command offset together; a new member starts after the committed offset", async () => {
    const topic = `jobledger-test.${uid()}.commands`
    const events = `jobledger-test.${uid()}.events`
    const group = `jobledger-test.${uid()}.engine`
    const { log: logA } = await openLog()
    await run(logA.ensureTopic(topic, 3))
    await run(logA.ensureTopic(events, 3))
    const a = member(group, topic, async (partition, rs) => {
      await run(
        logA.transact({
          group,
          partition,
          eventsTopic: events,
          events: rs.map((r) => ({ key: r.key, value: `event-of-${r.value}` })),
          commit: { topic, offset: rs[rs.length - 1]!.offset + 1 }
        })
      )
    })
    const leaveA = await scoped(logA.join(a.spec))
    await until(() => a.owned.size === 3, "A to own the partitions", 30_000)
    await run(logA.append(topic, records(7, "cmd", 1)))
    await until(() => (a.received.get(1)?.length ?? 0) === 7, "the 7 commands", 20_000)
    await leaveA()

    const evs = await run(logA.read(events, 1, 0, 100))
    expect(evs.map((r) => r.value)).toEqual(records(7, "cmd").map((r) => `event-of-${r.value}`))

    const { log: logB } = await openLog()
    const b = member(group, topic)
    const leaveB = await scoped(logB.join(b.spec))
    await until(() => b.owned.size === 3, "B to own the partitions", 30_000)
    expect(b.assigned.find((x) => x.partition === 1)?.from).toBe(7)
    expect(b.assigned.find((x) => x.partition === 0)?.from).toBe(0)
    await new Promise((r) => setTimeout(r, 500))
    expect(b.received.get(1)).toBeUndefined() // nothing redelivered
    await leaveB()
  }, 120_000)

  it("an aborted transaction leaves neither its events nor its offset", async () => {
    const topic = `jobledger-test.${uid()}.commands`
    const events = `jobledger-test.${uid()}.events`
    const group = `jobledger-test.${uid()}.engine`
    const { log } = await openLog()
    await run(log.ensureTopic(topic, 1))
    await run(log.ensureTopic(events, 1))
    await run(log.transact({ group, partition: 0, eventsTopic: events, events: records(2, "ok"), commit: { topic, offset: 2 } }))
    // A dead letter over the broker's message size limit fails in the same produce request in
    // which the events were accepted: the whole unit must be aborted.
    const failed = await run(
      log.transact({
        group,
        partition: 0,
        eventsTopic: events,
        events: records(2, "lost"),
        deadLetterTopic: events,
        deadLetters: [{ key: null, value: "x".repeat(1_200_000) }],
        commit: { topic, offset: 5 }
      })
    ).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(failed).toMatchObject({ _tag: "LogError" })
    await run(log.transact({ group, partition: 0, eventsTopic: events, events: records(1, "after"), commit: { topic, offset: 3 } }))
    const evs = await run(log.read(events, 0, 0, 100))
    expect(evs.map((r) => r.value)).toEqual(["ok-0", "ok-1", "after-0"])
    const m = member(group, topic)
    const leave = await scoped(log.join(m.spec))
    await until(() => m.owned.size === 1, "the member to own the partition", 30_000)
    expect(m.assigned[0]?.from).toBe(3)
    await leave()
  }, 120_000)

  it("fences a zombie: once another producer of the partition initialises, the old owner's transact fails with FencedError", async () => {
    const topic = `jobledger-test.${uid()}.commands`
    const events = `jobledger-test.${uid()}.events`
    const group = `jobledger-test.${uid()}.engine`
    const { log: logA } = await openLog()
    await run(logA.ensureTopic(topic, 3))
    await run(logA.ensureTopic(events, 3))
    const a = member(group, topic)
    const leaveA = await scoped(logA.join(a.spec))
    await until(() => a.owned.size === 3, "A to own the partitions", 30_000)
    await run(logA.transact({ group, partition: 2, eventsTopic: events, events: records(1, "a-before") }))

    // B takes over partition 2 (here directly: its producer with the same transactional id initialises).
    const { log: logB } = await openLog()
    await run(logB.transact({ group, partition: 2, eventsTopic: events, events: records(1, "b") }))

    const zombie = await run(logA.transact({ group, partition: 2, eventsTopic: events, events: records(1, "a-zombie") })).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(zombie).toBeInstanceOf(FencedError)
    // Partitions A still owns are unaffected.
    await run(logA.transact({ group, partition: 1, eventsTopic: events, events: records(1, "a-p1") }))
    const evs = await run(logB.read(events, 2, 0, 100))
    expect(evs.map((r) => r.value)).toEqual(["a-before-0", "b-0"])

    // The group still gives partition 2 to A: A takes it again (revoke, assign from the
    // committed offset), which fences the producer that fenced it.
    await until(() => a.revoked.includes(2) && a.owned.has(2), "A to take partition 2 again", 30_000)
    expect(a.assigned.filter((x) => x.partition === 2)).toHaveLength(2)
    await run(logA.transact({ group, partition: 2, eventsTopic: events, events: records(1, "a-again") }))
    const late = await run(logB.transact({ group, partition: 2, eventsTopic: events, events: records(1, "b-late") })).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(late).toBeInstanceOf(FencedError)
    await leaveA()
  }, 120_000)

  it("refuses records addressed to a partition the topic does not have (kafkajs would drop them)", async () => {
    const { log } = await openLog()
    const topic = `jobledger-test.${uid()}.commands`
    await run(log.ensureTopic(topic, 2))
    const refused = await run(log.append(topic, [{ key: null, value: "x", partition: 2 }])).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(refused).toMatchObject({ _tag: "LogError", retryable: false })
    const group = `jobledger-test.${uid()}.engine`
    const failed = await run(log.transact({ group, partition: 3, eventsTopic: topic, events: records(1, "x") })).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(failed).toMatchObject({ _tag: "LogError", retryable: false })
  }, 60_000)

  it("a non-member is refused: transact for a partition this member does not own fails with FencedError", async () => {
    const topic = `jobledger-test.${uid()}.commands`
    const events = `jobledger-test.${uid()}.events`
    const group = `jobledger-test.${uid()}.engine`
    const { log } = await openLog()
    await run(log.ensureTopic(topic, 1))
    await run(log.ensureTopic(events, 1))
    const m = member(group, topic)
    const leave = await scoped(log.join(m.spec))
    await until(() => m.owned.size === 1, "the member to own the partition", 30_000)
    const refused = await run(log.transact({ group, partition: 5, eventsTopic: events, events: records(1, "x") })).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(refused).toBeInstanceOf(FencedError)
    await leave()
  }, 60_000)

  it("runs the engine end to end: 100 jobs complete, and another queue instance sees the same stats", async () => {
    const name = uniqueQueue("kafka")
    const log = `kafka://${brokers.join(",")}`
    const queue = new JobQueue(name, { log, concurrency: 5 })
    const errors: Array<unknown> = []
    queue.on("error", (e) => errors.push(e))
    let completed = 0
    queue.on("completed", () => void completed++)
    queue.process("double", async (job) => job.data.n * 2)
    const t0 = Date.now()
    const jobs = await queue.addBulk(Array.from({ length: 100 }, (_, n) => ({ name: "double", data: { n } })))
    expect(jobs).toHaveLength(100)
    await until(() => completed === 100, "100 completed jobs", 60_000)
    const elapsed = Date.now() - t0
    const stats = await queue.stats()
    expect(stats).toEqual({ waiting: 0, active: 0, completed: 100, failed: 0, delayed: 0, paused: 0 })
    const job = await queue.store.get(jobs[42]!.id)
    expect(job?.state).toBe("completed")
    expect(job?.result).toBe(84)

    const reader = new JobQueue(name, { log })
    expect(await reader.stats()).toEqual(stats)
    await reader.close()
    await queue.close()
    expect(errors).toEqual([])
    console.log(`[kafka-log] 100 jobs added and completed in ${elapsed} ms`)
  }, 120_000)
})
