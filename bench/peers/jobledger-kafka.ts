/**
 * jobledger on an Apache Kafka log (KAFKA_BROKERS=host:port[,host:port]).
 * The harness skips this peer when KAFKA_BROKERS is unset.
 *
 * Assumptions about the engine (see bench/README.md):
 * - log URL `kafka://<KAFKA_BROKERS>`; the engine names its topics and its
 *   consumer group after the queue (`jobledger.<queue>.commands|events|dead-letter`,
 *   group `jobledger.<queue>.engine`), so cleanup deletes every topic and group
 *   whose name contains `bench-<runId>`;
 * - the producer uses acks=all (src/log/kafka-log.ts; the engine does not report it at runtime).
 * Replay (workload 5) is measured on the SQLite log only.
 */
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { makeJobledgerPeer, type Backend } from "./jobledger.ts"
import type { RunContext } from "./peer.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const brokers = () => {
  const b = process.env.KAFKA_BROKERS
  if (!b) throw new Error("KAFKA_BROKERS is not set")
  return b
}

interface KafkaAdmin {
  connect(): Promise<void>
  disconnect(): Promise<void>
  listTopics(): Promise<string[]>
  deleteTopics(o: { topics: string[]; timeout?: number }): Promise<void>
  listGroups(): Promise<{ groups: Array<{ groupId: string }> }>
  deleteGroups(ids: string[]): Promise<unknown>
  describeCluster(): Promise<{ brokers: Array<{ nodeId: number; host: string; port: number }>; controller: number | null }>
}

function admin(): KafkaAdmin {
  const req = createRequire(join(root, "package.json"))
  const { Kafka, logLevel } = req("kafkajs") as {
    Kafka: new (o: { clientId: string; brokers: string[]; logLevel: number }) => { admin(): KafkaAdmin }
    logLevel: { NOTHING: number }
  }
  return new Kafka({ clientId: "jobledger-bench", brokers: brokers().split(","), logLevel: logLevel.NOTHING }).admin()
}

const kafkaBackend: Backend = {
  kind: "kafka",
  logFor: () => `kafka://${brokers()}`,
  async describe() {
    const a = admin()
    await a.connect()
    try {
      const c = await a.describeCluster()
      return {
        backend: `Kafka at ${brokers()} (${c.brokers.length} broker${c.brokers.length === 1 ? "" : "s"})`,
        durability: "Kafka producer acks=all (idempotent, as set in src/log/kafka-log.ts); broker replication/flush as configured on the broker",
      }
    } finally {
      await a.disconnect()
    }
  },
  async cleanup(ctx: RunContext) {
    const a = admin()
    await a.connect()
    try {
      const tag = `bench-${ctx.runId}`
      const groups = (await a.listGroups()).groups.map((g) => g.groupId).filter((g) => g.includes(tag))
      if (groups.length) await a.deleteGroups(groups).catch((e: unknown) => ctx.log(`cleanup: deleteGroups: ${String(e)}`))
      const mine = (await a.listTopics()).filter((t) => t.includes(tag))
      if (mine.length) await a.deleteTopics({ topics: mine, timeout: 30_000 })
      ctx.log(`cleanup: deleted ${mine.length} topics, ${groups.length} consumer groups`)
    } finally {
      await a.disconnect()
    }
  },
}

export default makeJobledgerPeer("jobledger-kafka", kafkaBackend)
