/**
 * `?retainMs=` on a real Kafka broker: the events and commands topics get retention.ms (new
 * topics at creation, existing ones altered with their other settings kept), and a log whose
 * oldest records retention deleted still restores whole from the snapshots — readers and
 * engines — while replay --verify starts from the snapshot and says where the history starts.
 * Retention itself is simulated with DeleteRecords (the broker's own retention would need an
 * hour): the effect on the log, its start offset moving up, is the same.
 */
import { join } from "node:path"
import kafkajs from "kafkajs"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { JobQueue, replayQueue } from "../src/index.ts"
import { ManagedRuntime } from "effect"
import { EventLog, topicsOf } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { kafkaBrokers, uniqueQueue, until } from "./support/backends.ts"
import { ROOT, runToEnd } from "./support/children.ts"
import { assertBuilt } from "./support/dist.ts"
import { kafkaBrokerList } from "./support/kafka.ts"

const TOPIC = 2 as kafkajs.ConfigResourceTypes
const HOUR = 3_600_000
const BIN = join(ROOT, "bin", "jobledger.mjs")

describe.skipIf(kafkaBrokers === undefined)("history retention on Kafka (?retainMs=)", () => {
  const admin = new kafkajs.Kafka({ brokers: kafkaBrokerList, logLevel: kafkajs.logLevel.NOTHING }).admin()
  const queues: Array<JobQueue> = []
  const open = (name: string, log: string, options: ConstructorParameters<typeof JobQueue>[1] = {}) => {
    const q = new JobQueue(name, { log, ...options })
    q.on("error", () => {})
    queues.push(q)
    return q
  }
  beforeAll(async () => {
    assertBuilt()
    await admin.connect()
  })
  afterAll(async () => {
    await admin.disconnect()
  })
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close({ graceMs: 1_000 })))
    delete process.env.JOBLEDGER_SNAPSHOT_EVERY
  })
  const settingsOf = async (topic: string): Promise<Map<string, string>> => {
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC, name: topic }] })
    return new Map((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]))
  }

  it("sets retention.ms on new topics, and on existing ones keeping their other settings", async () => {
    const name = uniqueQueue("retain")
    const { events, commands } = topicsOf(name)
    const plain = open(name, `kafka://${kafkaBrokers}?partitions=2`)
    await plain.waitUntilReady()
    expect((await settingsOf(events)).get("retention.ms")).toBe("-1")
    // an operator's own setting on the topic
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: TOPIC, name: events, configEntries: [{ name: "retention.ms", value: "-1" }, { name: "max.message.bytes", value: "2000000" }] }]
    })
    await plain.close()
    const retained = open(name, `kafka://${kafkaBrokers}?partitions=2&retainMs=${2 * HOUR}`)
    await retained.waitUntilReady()
    const after = await settingsOf(events)
    expect(after.get("retention.ms")).toBe(String(2 * HOUR))
    expect(after.get("max.message.bytes")).toBe("2000000")
    await retained.add("x", null)
    expect((await settingsOf(commands)).get("retention.ms")).toBe(String(2 * HOUR))
    const fresh = uniqueQueue("retain-new")
    const created = open(fresh, `kafka://${kafkaBrokers}?retainMs=${HOUR}`)
    await created.waitUntilReady()
    expect((await settingsOf(topicsOf(fresh).events)).get("retention.ms")).toBe(String(HOUR))
    expect(() => new JobQueue(name, { log: `kafka://${kafkaBrokers}?retainMs=60000` })).toThrow(/retainMs must be at least 3600000/)
  }, 120_000)

  it("a log whose start retention moved restores from its snapshots; replay --verify starts there", async () => {
    process.env.JOBLEDGER_SNAPSHOT_EVERY = "1"
    const name = uniqueQueue("retain-gone")
    const log = `kafka://${kafkaBrokers}?partitions=2&retainMs=${HOUR}`
    const engine = open(name, log, { concurrency: 8 })
    engine.process("ok", async () => "done")
    await engine.add("ok", { later: true }, { jobId: "later", delay: HOUR })
    await engine.addBulk(Array.from({ length: 40 }, (_, i) => ({ name: "ok", data: { i } })))
    await until(async () => (await engine.stats()).completed === 40, "40 completed", 60_000)
    await engine.close()
    const stats = { waiting: 0, active: 0, completed: 40, failed: 0, delayed: 1, paused: 0 }

    // retention deletes everything below each partition's snapshot
    const events = topicsOf(name).events
    const before = await replayQueue(log, name)
    expect(before.stats).toEqual(stats)
    const snapshotOffsets = await Promise.all(
      [0, 1].map(async (p) => {
        const runtime = ManagedRuntime.make(layerFromUrl(log))
        try {
          const service = await runtime.runPromise(EventLog)
          return (await runtime.runPromise(service.loadSnapshot(events, p)))?.offset ?? 0
        } finally {
          await runtime.dispose()
        }
      })
    )
    expect(snapshotOffsets.every((o) => o > 0)).toBe(true)
    await admin.fetchTopicMetadata({ topics: [events] }) // deleteTopicRecords finds the leaders in the admin's metadata
    await admin.deleteTopicRecords({ topic: events, partitions: snapshotOffsets.map((offset, partition) => ({ partition, offset: String(offset) })) })

    const replayed = await replayQueue(log, name, { verify: true })
    expect(replayed.truncated.map((t) => t.startOffset)).toEqual(snapshotOffsets)
    expect(replayed.verify?.ok, JSON.stringify(replayed.verify?.issues.slice(0, 3))).toBe(true)
    expect(replayed.stats).toEqual(stats)
    expect(replayed.projection.get("later")?.state).toBe("delayed") // its JobAdded is gone; the snapshot holds it

    const reader = open(name, log)
    expect(await reader.stats()).toEqual(stats)
    // the default cadence from here on: the events below come after the last snapshot
    delete process.env.JOBLEDGER_SNAPSHOT_EVERY
    const again = open(name, log)
    again.process("ok", async () => "done")
    await again.add("ok", { after: true }, { jobId: "after-retention" })
    await until(async () => (await again.stats()).completed === 41, "a job after the retention", 60_000)
    // an event after the snapshot for a job whose earlier events are gone: verify knows it from the snapshot
    await again.remove("later")
    await until(async () => (await again.stats()).delayed === 0, "the removal of the delayed job", 60_000)
    await again.close()
    const after = await replayQueue(log, name, { verify: true })
    expect(after.verify?.ok, JSON.stringify(after.verify?.issues.slice(0, 3))).toBe(true)
    expect(after.stats.completed).toBe(41)

    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.JOBLEDGER_LOG
    const cli = await runToEnd(process.execPath, [BIN, "replay", name, "--verify", "--log", log], { cwd: ROOT, env, timeoutMs: 60_000 })
    expect(cli.code, cli.stderr).toBe(0)
    expect(cli.stdout).toMatch(/history of partition \d starts at offset \d+ \(retention\): replayed from its snapshot at offset \d+/)
    expect(cli.stdout).toMatch(/verify: OK .*\(after the snapshots\)/)
    const bounded = await runToEnd(process.execPath, [BIN, "replay", name, "--until", "2020-01-01T00:00:00Z", "--log", log], { cwd: ROOT, env, timeoutMs: 60_000 })
    expect(bounded.code).toBe(1)
    expect(bounded.stderr).toMatch(/retention/)
  }, 180_000)
})
