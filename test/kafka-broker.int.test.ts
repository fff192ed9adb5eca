/**
 * Integration test against a real Kafka broker at KAFKA_BROKERS (e.g. 127.0.0.1:19092),
 * which the test command starts before vitest runs (scripts/kafka.mjs start). By hand:
 *   export KAFKA_BROKERS=$(node scripts/kafka.mjs start | tail -n 1)
 */
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { Kafka, logLevel, type Admin, type Consumer, type KafkaMessage, type Producer } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const brokers = (process.env.KAFKA_BROKERS ?? "")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean)

const uid = () => randomUUID().slice(0, 8)
// scripts/test.mjs's opt-out (JOBLEDGER_SKIP_KAFKA=1): the broker suites skip, loudly. Without
// it, a missing KAFKA_BROKERS fails the suite rather than skipping it.
const skipKafka = process.env.JOBLEDGER_SKIP_KAFKA === "1" && brokers.length === 0
if (skipKafka) console.warn("SKIPPED: kafka broker suite (JOBLEDGER_SKIP_KAFKA=1 and no KAFKA_BROKERS)")

describe.skipIf(skipKafka)("kafka broker (KAFKA_BROKERS)", () => {
  let kafka: Kafka
  let admin: Admin
  const cleanups: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    if (brokers.length === 0) {
      throw new Error(
        "KAFKA_BROKERS is not set: start a broker with `node scripts/kafka.mjs start` and export KAFKA_BROKERS=<its last output line>"
      )
    }
    kafka = new Kafka({ clientId: `jobledger-test-${uid()}`, brokers, logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
  })

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
    await admin?.disconnect()
  })

  const track = <T extends Producer | Consumer>(client: T): T => {
    cleanups.push(() => client.disconnect())
    return client
  }

  async function createTopic(partitions: number): Promise<string> {
    const topic = `jobledger-test-${uid()}`
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
    expect(created).toBe(true)
    return topic
  }

  /** Reads `count` messages of `topic` from the beginning with a fresh group; returns them in arrival order. */
  async function consume(topic: string, count: number, timeoutMs = 30_000): Promise<Array<KafkaMessage & { partition: number }>> {
    const consumer = track(kafka.consumer({ groupId: `jobledger-test-${uid()}` }))
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const got: Array<KafkaMessage & { partition: number }> = []
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${got.length}/${count} messages of ${topic} in ${timeoutMs} ms`)), timeoutMs)
      void consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            got.push({ ...message, partition })
            if (got.length >= count) {
              clearTimeout(timer)
              resolve()
            }
          }
        })
        .catch(reject)
    })
    await consumer.disconnect()
    return got
  }

  it("creates a 3-partition topic, produces with acks=-1 and consumes every message back", async () => {
    const topic = await createTopic(3)
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics
    expect(meta?.partitions).toHaveLength(3)

    const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }))
    await producer.connect()
    const sent = Array.from({ length: 30 }, (_, i) => ({ key: `job-${i % 7}`, value: `event-${i}` }))
    const results = await producer.send({ topic, acks: -1, messages: sent })
    expect(results.every((r) => r.errorCode === 0)).toBe(true)

    const got = await consume(topic, sent.length)
    expect(got.map((m) => m.value?.toString()).sort()).toEqual(sent.map((m) => m.value).sort())
    // Keyed messages land on one partition per key, in order.
    const byKey = new Map<string, Set<number>>()
    for (const m of got) {
      const key = m.key!.toString()
      byKey.set(key, (byKey.get(key) ?? new Set()).add(m.partition))
    }
    for (const parts of byKey.values()) expect(parts.size).toBe(1)
    expect(new Set(got.map((m) => m.partition)).size).toBeGreaterThan(1)
    for (const key of byKey.keys()) {
      const order = got.filter((m) => m.key!.toString() === key).map((m) => Number(m.value!.toString().slice(6)))
      expect(order).toEqual([...order].sort((a, b) => a - b))
    }
  }, 60_000)

  it("commits transactions (aborted ones stay invisible) and fences a zombie producer with the same transactionalId", async () => {
    const topic = await createTopic(3)
    const transactionalId = `jobledger-test-tx-${uid()}`
    const txProducer = () =>
      track(kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 }))

    const first = txProducer()
    await first.connect()
    const committed = await first.transaction()
    await committed.send({ topic, acks: -1, messages: [{ key: "a", value: "committed-1" }, { key: "b", value: "committed-2" }] })
    await committed.commit()

    const aborted = await first.transaction()
    await aborted.send({ topic, acks: -1, messages: [{ key: "a", value: "aborted-1" }] })
    await aborted.abort()

    // A second producer with the same transactionalId bumps the epoch: the first is a zombie now.
    const second = txProducer()
    await second.connect()
    const tx2 = await second.transaction()
    await tx2.send({ topic, acks: -1, messages: [{ key: "c", value: "committed-3" }] })
    await tx2.commit()

    const zombie = await first.transaction()
    const fenced = await zombie.send({ topic, acks: -1, messages: [{ key: "a", value: "zombie-1" }] }).then(
      () => undefined,
      (e: unknown) => e as Error & { type?: string; cause?: { type?: string } }
    )
    expect(fenced, "the fenced producer's send must fail").toBeInstanceOf(Error)
    const what = `${fenced?.name} ${fenced?.type ?? ""} ${fenced?.cause?.type ?? ""} ${fenced?.message}`
    expect(what).toMatch(/FENCED|PRODUCER_EPOCH|fenc/i)
    await zombie.abort().catch(() => {})

    // READ_COMMITTED (kafkajs's default) sees exactly the committed messages.
    const got = await consume(topic, 3)
    expect(got.map((m) => m.value?.toString()).sort()).toEqual(["committed-1", "committed-2", "committed-3"])
  }, 60_000)

  it("commits consumed offsets inside a transaction (sendOffsets: consume-transform-produce)", async () => {
    const input = await createTopic(3)
    const output = await createTopic(1)
    const groupId = `jobledger-test-${uid()}`
    const seed = track(kafka.producer())
    await seed.connect()
    const [seeded] = await seed.send({ topic: input, acks: -1, messages: [{ key: "k", value: "in-1" }] })
    // The offset to commit after processing the seeded message: the next one to read.
    const partition = seeded!.partition
    const offset = String(Number(seeded!.baseOffset) + 1)

    const producer = track(kafka.producer({ transactionalId: `jobledger-test-tx-${uid()}`, idempotent: true, maxInFlightRequests: 1 }))
    await producer.connect()
    // kafkajs does not retry CONCURRENT_TRANSACTIONS on addOffsetsToTxn (#430): retry it here.
    for (let attempt = 0; ; attempt++) {
      const tx = await producer.transaction()
      try {
        await tx.send({ topic: output, acks: -1, messages: [{ key: "k", value: "out-1" }] })
        await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition, offset }] }] })
        await tx.commit()
        break
      } catch (e) {
        await tx.abort().catch(() => {})
        if (attempt >= 5 || !/CONCURRENT_TRANSACTIONS/.test(String((e as { type?: string }).type))) throw e
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt))
      }
    }

    // commit() returns once the coordinator has logged PrepareCommit; the markers that make the
    // offsets visible are written after that, and kafkajs's OffsetFetch has no require_stable: poll.
    let committed: string | undefined
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const offsets = await admin.fetchOffsets({ groupId, topics: [input] })
      committed = offsets[0]?.partitions.find((p) => p.partition === partition)?.offset
      if (committed === offset) break
    }
    expect(committed).toBe(offset)
    const got = await consume(output, 1)
    expect(got[0]?.value?.toString()).toBe("out-1")
  }, 60_000)
})

describe("docker-compose.yml", () => {
  it("passes `docker compose config -q`", (ctx) => {
    const has = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: "utf8" })
      return !r.error && r.status === 0
    }
    const skip = (reason: string): never => {
      console.warn(`SKIPPED: ${reason}`)
      return ctx.skip(reason)
    }
    if (!has("docker", ["--version"])) skip("the docker CLI is not installed: docker-compose.yml not validated")
    // The compose plugin (docker compose) first; the standalone docker-compose binary otherwise.
    const compose: [string, string[]] | undefined = has("docker", ["compose", "version"])
      ? ["docker", ["compose"]]
      : has("docker-compose", ["version"])
        ? ["docker-compose", []]
        : undefined
    if (!compose) skip("the docker CLI has no compose plugin (and there is no docker-compose): docker-compose.yml not validated")
    const [cmd, pre] = compose!
    const r = spawnSync(cmd, [...pre, "-f", path.join(REPO_ROOT, "docker-compose.yml"), "config", "-q"], {
      cwd: REPO_ROOT,
      encoding: "utf8"
    })
    expect(r.error).toBeUndefined()
    expect(r.status, `${cmd} ${[...pre, "config", "-q"].join(" ")}:\n${r.stdout}${r.stderr}`).toBe(0)
  })
})
