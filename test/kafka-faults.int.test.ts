/**
 * Faults on the Kafka log, against real brokers:
 * - a zombie engine (frozen with SIGSTOP past its session timeout) cannot append events for
 *   partitions another engine took over, and comes back as a healthy member;
 * - garbage on the commands topic lands in the dead-letter topic with its reason, and later
 *   good commands are processed;
 * - replay of a queue that does not exist says so and creates no topic;
 * - a broker stopped for ~10 s and started again (a PRIVATE broker on its own port and dir,
 *   never the shared one): engines and producers recover by themselves, and every `add`
 *   that resolved has its job completed; the others rejected with a clear error.
 *
 *   KAFKA_BROKERS=127.0.0.1:19092 npx vitest run test/kafka-faults.int.test.ts
 */
import { randomBytes } from "node:crypto"
import kafkajs from "kafkajs"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { JobQueue, QueueLogError, replayQueue } from "../src/index.ts"
import { engineGroupOf, topicsOf } from "../src/log/event-log.ts"
import { sleep } from "./fixtures/helpers.ts"
import { uniqueQueue, until } from "./support/backends.ts"
import {
  type Child,
  eventsOf,
  groupMembers,
  kafkaBrokerList,
  killHard,
  privateBroker,
  startEngine,
  tagsByJob,
  tails
} from "./support/kafka.ts"

const shared = `kafka://${kafkaBrokerList.join(",")}`

const rawClient = (brokers: ReadonlyArray<string>) =>
  new kafkajs.Kafka({ clientId: "jobledger-test", brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING })

/** Values of a topic's partition 0..n-1 read raw (READ_COMMITTED), through a throwaway consumer. */
const readTopic = async (brokers: ReadonlyArray<string>, topic: string, count: number, timeoutMs = 30_000) => {
  const consumer = rawClient(brokers).consumer({ groupId: `jobledger-test-${uniqueQueue("dl")}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got: Array<string> = []
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${got.length}/${count} records of ${topic}`)), timeoutMs)
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message.value?.toString("utf8") ?? "")
          if (got.length >= count) {
            clearTimeout(timer)
            resolve()
          }
        }
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return got
}

describe.skipIf(kafkaBrokerList.length === 0)("Kafka faults on the shared broker (KAFKA_BROKERS)", () => {
  const children: Array<Child> = []
  const queues: Array<JobQueue> = []
  afterEach(async () => {
    for (const c of children) if (c.proc.signalCode === null && c.proc.exitCode === null) c.proc.kill("SIGCONT")
    await Promise.all(children.splice(0).map(killHard))
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
  })

  it("a zombie engine (frozen past its session) cannot append for the partitions taken over, then rejoins", async () => {
    const t0 = Date.now()
    const name = uniqueQueue("zombie")
    const log = `${shared}?partitions=2`
    const group = engineGroupOf(name)
    const commands = topicsOf(name).commands
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})
    await producer.stats()

    const zombie = startEngine("Z", log, name, "slow", { CRASH_ENGINE_CONCURRENCY: "3" })
    children.push(zombie)
    await until(async () => (await groupMembers(kafkaBrokerList, group, commands)).members.some((m) => m.partitions.length === 2), `Z to own both partitions\n${tails(children)}`, 60_000)
    const jobs = await producer.addBulk(Array.from({ length: 3 }, (_, i) => ({ name: "slow", data: { i, ms: 6_000 } })))
    await until(async () => (await producer.stats()).active === 3, `3 jobs active in Z\n${tails(children)}`, 20_000)

    // Freeze Z mid-job: no heartbeats, so the group evicts it after its session timeout.
    zombie.proc.kill("SIGSTOP")
    const heir = startEngine("B", log, name, "fast")
    children.push(heir)
    await until(async () => (await producer.stats()).completed === 3, `B to take over and complete the 3 jobs\n${tails(children)}`, 60_000)
    const tTakeover = Date.now()
    for (const job of jobs) expect((await producer.store.get(job.id))?.result).toEqual({ by: heir.proc.pid, mode: "fast" })

    // Thaw Z: its handlers finish at once and it tries to record their completion — refused.
    zombie.proc.kill("SIGCONT")
    await until(() => jobs.every((j) => zombie.out.includes(`done ${j.id}`)), `Z's handlers to finish\n${tails(children)}`, 20_000)
    await until(() => zombie.out.some((l) => /no longer owns/.test(l)), `Z to report that it was fenced\n${tails(children)}`, 30_000)

    const events = await eventsOf(log, name)
    const zombieEvents = events.filter((e) => e.envelope.body._tag === "JobCompleted" && JSON.stringify(e.envelope.body).includes(`"by":${zombie.proc.pid}`))
    expect(zombieEvents).toEqual([])
    const tags = tagsByJob(events)
    for (const job of jobs) {
      const t = tags.get(job.id)!
      expect(t.filter((x) => x === "JobCompleted"), t.join(",")).toHaveLength(1)
      expect(t).toContain("JobStalled")
    }

    // Z rejoins under a new member id: its stale claim is ignored, the group splits 1 + 1, and both engines work.
    await until(
      async () => {
        const g = await groupMembers(kafkaBrokerList, group, commands)
        return g.state === "Stable" && g.members.length === 2 && g.members.every((m) => m.partitions.length === 1)
      },
      `Z and B to own one partition each\n${tails(children)}`,
      60_000
    )
    const more = await producer.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: "slow", data: { i, ms: 10 } })))
    await until(async () => (await producer.stats()).completed === 23, `the 20 later jobs to complete\n${tails(children)}`, 60_000)
    const by = new Set(await Promise.all(more.map(async (j) => ((await producer.store.get(j.id))?.result as { by: number }).by)))
    expect(by).toEqual(new Set([zombie.proc.pid, heir.proc.pid]))

    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues)).toBe(true)
    expect(replayed.stats).toEqual(await producer.stats())
    console.log(`[zombie] takeover ${tTakeover - t0} ms after start; total ${Date.now() - t0} ms`)
  }, 180_000)

  it("garbage on the commands topic goes to the dead-letter topic with its reason; later commands are processed", async () => {
    const name = uniqueQueue("garbage")
    const { commands, deadLetter } = topicsOf(name)
    const engine = new JobQueue(name, { log: shared, concurrency: 5 })
    queues.push(engine)
    const errors: Array<unknown> = []
    engine.on("error", (e) => errors.push(e))
    engine.process("echo", async (job) => job.data)
    const first = await engine.add("echo", { n: 0 })
    await until(async () => (await engine.store.get(first.id))?.state === "completed", "the first job to complete", 60_000)

    const producer = rawClient(kafkaBrokerList).producer({ allowAutoTopicCreation: false })
    await producer.connect()
    const time = Date.now()
    const garbage: Array<{ value: Buffer | string | null; reason: RegExp }> = [
      { value: randomBytes(256), reason: /not JSON/ },
      { value: "{ not json", reason: /not JSON/ },
      { value: null, reason: /not JSON/ },
      { value: JSON.stringify({ hello: "world" }), reason: /is missing|Expected/ },
      { value: JSON.stringify({ v: 1, queue: name, jobId: "x", time, body: { _tag: "Explode" } }), reason: /Explode|Expected/ },
      { value: JSON.stringify({ v: 1, queue: "someone-else", jobId: "y", time, body: { _tag: "AddJob", name: "echo", data: 1, priority: 0, delay: 0 } }), reason: /command for queue 'someone-else'/ },
      { value: JSON.stringify({ v: 1, queue: name, jobId: null, time, body: { _tag: "AddJob", name: "echo", data: 1, priority: 0, delay: 0 } }), reason: /AddJob without a job id/ },
      { value: JSON.stringify({ v: 1, queue: name, jobId: "ghost", time, body: { _tag: "RetryJob" } }), reason: /RetryJob: unknown job 'ghost'/ }
    ]
    // every partition gets garbage, so every owner meets it
    await producer.send({ topic: commands, acks: -1, messages: garbage.map((g, i) => ({ key: null, value: g.value, partition: i % 3 })) })

    // Over 1 MB: the broker's default limit (message.max.bytes ≈ 1 MiB) refuses the record
    // before it is ever stored, so it cannot reach the engine...
    const big = "x".repeat(1_100_000)
    const refused = await producer.send({ topic: commands, acks: -1, messages: [{ value: big, partition: 0 }] }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(String((refused as Error | undefined)?.message ?? refused)).toMatch(/too large|larger than/i)
    // ...unless the topic allows bigger records: then the engine refuses it by its own bound (1 MiB).
    const admin = rawClient(kafkaBrokerList).admin()
    await admin.connect()
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: commands, configEntries: [{ name: "max.message.bytes", value: "3000000" }] }]
    })
    await admin.disconnect()
    await until(
      async () =>
        producer.send({ topic: commands, acks: -1, messages: [{ value: big, partition: 1 }] }).then(
          () => true,
          () => false
        ),
      "the broker to accept a 1.1 MB record once the topic allows it",
      20_000
    )
    garbage.push({ value: big, reason: /record of 1100000 bytes exceeds 1048576/ })
    await producer.disconnect()

    // later good commands still work
    const later = await engine.addBulk(Array.from({ length: 10 }, (_, n) => ({ name: "echo", data: { n } })))
    await until(async () => (await engine.stats()).completed === 11, "the 10 later jobs to complete", 60_000)
    for (const job of later) expect((await engine.store.get(job.id))?.result).toEqual(job.data)

    const letters = (await readTopic(kafkaBrokerList, deadLetter, garbage.length)).map(
      (v) => JSON.parse(v) as { reason: string; source: string; offset: number; raw: string }
    )
    expect(letters).toHaveLength(garbage.length)
    for (const g of garbage) expect(letters.some((l) => g.reason.test(l.reason)), `a dead letter matching ${g.reason}: ${letters.map((l) => l.reason.split("\n")[0]).join(" / ")}`).toBe(true)
    for (const l of letters) {
      expect(l.source).toMatch(new RegExp(`^${commands.replace(/\./g, "\\.")}/[0-2]$`))
      expect(l.raw.length).toBeLessThanOrEqual(65_536)
    }
    // nothing else: no job came from the garbage, and the log replays clean
    const replayed = await replayQueue(shared, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues)).toBe(true)
    expect(replayed.stats).toEqual({ waiting: 0, active: 0, completed: 11, failed: 0, delayed: 0, paused: 0 })
    await sleep(500) // a late dead letter would show up here
    expect(await readTopic(kafkaBrokerList, deadLetter, garbage.length)).toHaveLength(garbage.length)
  }, 180_000)

  it("replay of a queue that does not exist says so and creates no topic", async () => {
    const name = uniqueQueue("typo")
    await expect(replayQueue(shared, name)).rejects.toThrow(new RegExp(`no such queue '${name}'`))
    const admin = rawClient(kafkaBrokerList).admin()
    await admin.connect()
    const topics = await admin.listTopics()
    await admin.disconnect()
    expect(topics.filter((t) => t.includes(name))).toEqual([])
  }, 60_000)

  it("?partitions=N sets the partitions of the queue topics it creates", async () => {
    const name = uniqueQueue("parts")
    const queue = new JobQueue(name, { log: `${shared}?partitions=5&replication=1` })
    queues.push(queue)
    await queue.add("x", 1)
    const replayed = await replayQueue(shared, name)
    expect(replayed.partitions).toBe(5)
  }, 60_000)
})

describe.skipIf(kafkaBrokerList.length === 0)("Kafka broker outage (private broker, stopped ~10 s)", () => {
  const broker = privateBroker(Number(process.env.JOBLEDGER_TEST_BROKER_PORT ?? 29092))
  const queues: Array<JobQueue> = []
  beforeAll(async () => {
    await broker.start()
  }, 180_000)
  afterAll(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 }).catch(() => undefined)))
    await broker.stop()
  }, 60_000)

  it("engines and producers recover by themselves; every add that resolved has its job completed", async () => {
    const t0 = Date.now()
    const name = uniqueQueue("outage")
    const log = `kafka://${broker.bootstrap}`
    const engine = new JobQueue(name, { log, concurrency: 5 })
    queues.push(engine)
    const engineErrors: Array<string> = []
    engine.on("error", (e) => engineErrors.push(String((e as Error)?.message ?? e)))
    engine.process("work", async (job) => {
      await sleep(5)
      return job.data
    })
    const producer = new JobQueue(name, { log })
    queues.push(producer)
    producer.on("error", () => {})

    const before = await producer.addBulk(Array.from({ length: 50 }, (_, n) => ({ name: "work", data: { n } })))
    await until(async () => (await producer.stats()).completed === 50, "the first 50 jobs", 60_000)

    // A steady stream of adds across the outage: each either resolves or rejects.
    const resolved: Array<string> = [...before.map((j) => j.id)]
    const rejected: Array<unknown> = []
    const inFlight: Array<Promise<void>> = []
    let adding = true
    let n = 50
    const adder = (async () => {
      while (adding) {
        inFlight.push(
          producer.add("work", { n: n++ }).then(
            (job) => void resolved.push(job.id),
            (e: unknown) => void rejected.push(e)
          )
        )
        await sleep(200)
      }
    })()

    await sleep(1_000)
    await broker.stop()
    const tStop = Date.now()
    await sleep(10_000)
    await broker.resume()
    const tUp = Date.now()
    const resolvedAtRestart = resolved.length
    await until(() => resolved.length >= resolvedAtRestart + 10, "adds to resolve again after the restart", 60_000)
    adding = false
    await adder
    await Promise.all(inFlight)

    await until(
      async () => {
        const s = await producer.stats().catch(() => undefined)
        return s !== undefined && s.completed >= resolved.length && s.waiting === 0 && s.active === 0
      },
      `every resolved add (${resolved.length}) to complete`,
      120_000
    )
    const tDone = Date.now()

    // rejections are clear: the log, the queue, and what to check
    for (const e of rejected) {
      expect(e).toBeInstanceOf(QueueLogError)
      expect((e as Error).message).toMatch(new RegExp(`queue '${name}' on kafka://${broker.bootstrap.replace(/\./g, "\\.")}: .*(reachable|failed)`))
    }
    // nothing that resolved was dropped; nothing completed twice
    const tags = tagsByJob(await eventsOf(log, name))
    for (const id of resolved) {
      const t = tags.get(id) ?? []
      expect(t.filter((x) => x === "JobCompleted"), `${id}: ${t.join(",")}`).toHaveLength(1)
    }
    for (const [id, t] of tags) expect(t.filter((x) => x === "JobCompleted"), `${id}: ${t.join(",")}`).toHaveLength(1)
    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues)).toBe(true)
    expect(replayed.stats).toEqual(await producer.stats())
    console.log(
      `[outage] broker down ${tUp - tStop} ms; ${resolved.length} adds resolved, ${rejected.length} rejected ` +
        `(e.g. ${rejected[0] === undefined ? "-" : (rejected[0] as Error).message.slice(0, 160)}); ` +
        `all resolved jobs completed ${tDone - tUp} ms after the restart; ${tags.size} jobs in the log; ` +
        `${engineErrors.length} engine errors reported; total ${Date.now() - t0} ms`
    )
  }, 240_000)
})
