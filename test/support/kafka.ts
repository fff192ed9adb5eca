/**
 * Helpers of the Kafka fault suites: engine child processes, the engine group as the broker
 * sees it, the raw events of a queue, and a private broker (own port and dir) for tests
 * that stop or restart it — the shared broker at KAFKA_BROKERS is never stopped.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { ManagedRuntime } from "effect"
import kafkajs from "kafkajs"
import type { EventEnvelope } from "../../machines/schema.ts"
import { decodeEvent } from "../../src/codec.ts"
import { EventLog, topicsOf } from "../../src/log/event-log.ts"
import { layerFromUrl } from "../../src/log/layers.ts"
import { run } from "../../src/run.ts"
import { type BrokerInfo, restartBroker, startBroker, stopBroker } from "../../scripts/kafka-broker.mjs"
import { alive, type Child, killHard, ROOT, spawnScript } from "./children.ts"

export { alive, type Child, killHard, ROOT }

const ENGINE = join(ROOT, "test", "fixtures", "crash-engine.ts")

export const kafkaBrokerList = (process.env.KAFKA_BROKERS ?? "")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean)

/** An engine process (test/fixtures/crash-engine.ts) on `log`; its output lines are kept. */
export const startEngine = (
  name: string,
  log: string,
  queue: string,
  mode: "slow" | "fast",
  env: Record<string, string> = {}
): Child => spawnScript(name, ENGINE, [log, queue, mode], env)

/** Job ids whose handler started in `child` (`run <id> …` lines), with their run counts. */
export const runsOf = (child: Child): Map<string, number> => {
  const runs = new Map<string, number>()
  for (const line of child.out) {
    const m = /^run (\S+) /.exec(line)
    if (m !== null) runs.set(m[1]!, (runs.get(m[1]!) ?? 0) + 1)
  }
  return runs
}

/** Job ids whose handler is running in `child` now (a `run` line without its `done`). */
export const runningIn = (child: Child): Set<string> => {
  const running = new Set<string>()
  for (const line of child.out) {
    const m = /^(run|done) (\S+)/.exec(line)
    if (m === null) continue
    if (m[1] === "run") running.add(m[2]!)
    else running.delete(m[2]!)
  }
  return running
}

/** The last lines of each child's output, for failure messages. */
export const tails = (children: ReadonlyArray<Child>, n = 8) =>
  children.map((c) => `${c.name}: ${c.out.filter((l) => !/^(run|done) /.test(l)).slice(-n).join(" | ")}`).join("\n")

/** Members of a consumer group and the partitions of `topic` each is assigned, as the broker says. */
export const groupMembers = async (brokers: ReadonlyArray<string>, group: string, topic: string) => {
  const kafka = new kafkajs.Kafka({ clientId: "jobledger-test", brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const { groups } = await admin.describeGroups([group])
    const g = groups[0]
    const members = (g?.members ?? []).map((m) => {
      const decoded = m.memberAssignment.length === 0 ? null : kafkajs.AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
      return { memberId: m.memberId, clientHost: m.clientHost, partitions: decoded?.assignment[topic] ?? [] }
    })
    return { state: g?.state ?? "Dead", protocol: g?.protocol ?? "", members }
  } finally {
    await admin.disconnect()
  }
}

export interface StoredEvent {
  readonly partition: number
  readonly offset: number
  readonly envelope: EventEnvelope
}

/** Every event of a queue as stored (READ_COMMITTED), read with a log of its own. */
export const eventsOf = async (logUrl: string, queue: string): Promise<Array<StoredEvent>> => {
  const runtime = ManagedRuntime.make(layerFromUrl(logUrl))
  try {
    const log = await runtime.runPromise(EventLog)
    const topic = topicsOf(queue).events
    const partitions = (await run(log.partitionCount(topic))) ?? 0
    const out: Array<StoredEvent> = []
    for (let p = 0; p < partitions; p++) {
      const end = await run(log.endOffset(topic, p))
      for (let from = 0; from < end; ) {
        const batch = await run(log.read(topic, p, from, 10_000))
        if (batch.length === 0) break
        for (const r of batch) {
          const decoded = decodeEvent(r.value)
          if (!decoded.ok) throw new Error(`undecodable event at ${p}/${r.offset}: ${decoded.reason}`)
          out.push({ partition: p, offset: r.offset, envelope: decoded.value })
        }
        from = batch[batch.length - 1]!.offset + 1
      }
    }
    return out
  } finally {
    await runtime.dispose()
  }
}

/** Per job id: the tags of its events in log order. */
export const tagsByJob = (events: ReadonlyArray<StoredEvent>): Map<string, Array<string>> => {
  const out = new Map<string, Array<string>>()
  for (const e of events) {
    if (e.envelope.jobId === null) continue
    const list = out.get(e.envelope.jobId) ?? []
    list.push(e.envelope.body._tag)
    out.set(e.envelope.jobId, list)
  }
  return out
}

/**
 * A broker of the test's own (port, temporary dir), for tests that stop or restart it.
 * JOBLEDGER_TEST_BROKER_PORT overrides the port.
 */
export const privateBroker = (port = Number(process.env.JOBLEDGER_TEST_BROKER_PORT ?? 29092)) => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-kafka-"))
  const log = (msg: string) => process.stderr.write(`[private kafka :${port}] ${msg}\n`)
  let info: BrokerInfo | undefined
  return {
    dir,
    port,
    get bootstrap() {
      return `127.0.0.1:${port}`
    },
    start: async () => (info = await startBroker({ dir, port, fresh: true, log })),
    stop: () => stopBroker({ dir, log }),
    /** Starts it again with its data (after a stop). */
    resume: async () => (info = await startBroker({ dir, port, fresh: false, log, ...(info ? { version: info.version } : {}) })),
    restart: (downMs: number) => restartBroker({ dir, downMs, log })
  }
}
