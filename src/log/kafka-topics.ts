/**
 * The topics of the Kafka EventLog: creating them, their partition counts and their settings
 * (kafka-log.ts reads and writes them).
 *
 * Topics are created with `retention.ms=-1`: the log is the only copy of a job's history.
 * The replication factor is the option (`?replication=N` in the URL), else
 * JOBLEDGER_KAFKA_REPLICATION, else the cluster's default. Creation right after a broker
 * (re)start meets "does not host this topic-partition" / "leader not available" for a while:
 * it is retried with backoff for about 20 s before it fails.
 *
 * Invariants:
 * - Only `ensureTopic` sets out to create a topic; `existingPartitions` never names one that
 *   may not exist (on a cluster with auto.create.topics.enable=true that would create it).
 * - Every metadata request names every topic this log has asked about (see `metadataOf`).
 * - A record addressed to a partition its topic does not have is refused before it is sent
 *   (`checkPartitions`): kafkajs would drop it silently.
 */
import type { Admin, ConfigResourceTypes } from "kafkajs"
import { LogError } from "./event-log.ts"
import { causesOf, isTransient, sleep } from "./kafka-client.ts"
import type { KafkaLogOptions } from "./kafka-log.ts"
import { isEventsTopic, SNAPSHOTS_TOPIC_CONFIG, snapshotsTopicOf } from "./kafka-snapshots.ts"

/** A partition's leader is moving (broker restart): worth asking again after metadata settles. */
export const LEADER_ERRORS = new Set(["NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "UNKNOWN_TOPIC_OR_PARTITION"])

/** kafkajs's ConfigResourceTypes.TOPIC and ConfigSource.TOPIC_CONFIG (const enums in its types, numbers on the wire). */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes
const SET_ON_TOPIC = 1

/** Topics whose partition count `KafkaLogOptions.partitions` sets. */
const isQueueTopic = (topic: string) => /^jobledger\..+\.(commands|events)$/.test(topic)

/** Errors of topic creation or metadata that go away once the controller and leaders settle. */
const SETTLING_ERRORS = new Set([
  ...LEADER_ERRORS,
  "NOT_CONTROLLER",
  "REQUEST_TIMED_OUT",
  "COORDINATOR_NOT_AVAILABLE",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "NOT_COORDINATOR",
  "BROKER_NOT_AVAILABLE"
])
const PERMANENT_CREATE_ERRORS = new Set(["INVALID_REPLICATION_FACTOR", "INVALID_PARTITIONS", "INVALID_TOPIC_EXCEPTION", "POLICY_VIOLATION", "TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "INVALID_CONFIG", "INVALID_REQUEST"])
const settling = (error: unknown) => {
  const causes = causesOf(error)
  if (causes.some((c) => c.type !== undefined && PERMANENT_CREATE_ERRORS.has(c.type))) return false
  return isTransient(error) || causes.some((c) => c.type !== undefined && SETTLING_ERRORS.has(c.type))
}
/** Waits between attempts of topic creation and offset reads: 0.2, 0.4, 0.8, 1.6, 2, 2, … s — about 20 s in all. */
const CREATE_RETRY_DELAYS_MS = [200, 400, 800, 1_600, 2_000, 2_000, 2_000, 2_000, 2_000, 2_000, 2_000, 2_000]

const replicationFactor = (options: KafkaLogOptions): number | undefined => {
  if (options.replicationFactor !== undefined) return options.replicationFactor
  const raw = process.env.JOBLEDGER_KAFKA_REPLICATION
  if (raw === undefined || raw === "") return undefined
  const n = Number(raw)
  return Number.isInteger(n) && n > 0 ? n : undefined
}

export interface KafkaTopicsDeps {
  /** The log's admin client, connected by the log. */
  readonly admin: Admin
  /** How messages name the cluster. */
  readonly url: string
  readonly options: KafkaLogOptions
  /** Problems the log survives, throttled (a retried creation, say). */
  readonly report: (message: string, error: unknown) => void
}

/** The topic management of one Kafka EventLog (see the module's invariants). */
export interface KafkaTopics {
  /**
   * Creates `topic` unless it exists (an events topic with its snapshots topic) and keeps its
   * `retention.ms` to the option; returns its partition count.
   */
  readonly ensureTopic: (topic: string, asked: number) => Promise<number>
  /** The partition count of `topic`, `undefined` when it does not exist (never creates it). */
  readonly existingPartitions: (topic: string) => Promise<number | undefined>
  /** Fails for a record addressed to a partition the topic does not have. */
  readonly checkPartitions: (topic: string, records: ReadonlyArray<{ readonly partition?: number }>) => Promise<void>
  /** Runs `f` again while it fails with an error that settles by itself (see SETTLING_ERRORS). */
  readonly settled: <A>(what: string, f: () => Promise<A>) => Promise<A>
}

export const kafkaTopics = ({ admin, url, options, report }: KafkaTopicsDeps): KafkaTopics => {
  /**
   * The metadata of `topic`. kafkajs's admin caches the metadata of the topics the last
   * request named, replacing the rest: a request naming one topic makes a concurrent
   * `fetchTopicOffsets` of another find no partitions (and fail inside kafkajs). So every
   * request names every topic this log has asked about, and the cache never shrinks.
   */
  const named = new Set<string>()
  const metadataOf = async (topic: string) => {
    named.add(topic)
    const { topics } = await admin.fetchTopicMetadata({ topics: [...named] })
    return topics.find((t) => t.name === topic)
  }
  /** Partition counts of topics, refreshed when a record names a partition beyond it. */
  const partitionCounts = new Map<string, number>()
  const partitionCount = async (topic: string, atLeast: number): Promise<number> => {
    const known = partitionCounts.get(topic)
    if (known !== undefined && known > atLeast) return known
    const count = (await metadataOf(topic))?.partitions.length ?? 0
    partitionCounts.set(topic, count)
    return count
  }
  // kafkajs silently drops messages addressed to a partition that does not exist: refuse them.
  const checkPartitions = async (topic: string, records: ReadonlyArray<{ readonly partition?: number }>) => {
    let max = -1
    for (const r of records) if (r.partition !== undefined && r.partition > max) max = r.partition
    if (max < 0) return
    const count = await partitionCount(topic, max)
    if (max >= count || records.some((r) => r.partition !== undefined && (!Number.isInteger(r.partition) || r.partition < 0)))
      throw new LogError({ message: `${url}: topic ${topic} has ${count} partitions; partition ${max} does not exist`, retryable: false })
  }

  /** Runs `f` again while it fails with an error that settles by itself (see SETTLING_ERRORS). */
  const settled = async <A>(what: string, f: () => Promise<A>): Promise<A> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await f()
      } catch (e) {
        const wait = CREATE_RETRY_DELAYS_MS[attempt]
        if (wait === undefined || !settling(e)) throw e
        report(`${what} failed; retrying`, e)
        await sleep(wait)
      }
    }
  }

  /** The partition count of `topic`, `undefined` when it does not exist (never creates it). */
  const existingPartitions = async (topic: string): Promise<number | undefined> => {
    // listTopics is a metadata request for all topics: unlike a request naming the topic, it
    // cannot trigger auto-creation on a cluster with auto.create.topics.enable=true.
    const names = await admin.listTopics()
    if (!names.includes(topic)) return undefined
    return (await metadataOf(topic))?.partitions.length
  }

  const ensureTopic = async (topic: string, asked: number): Promise<number> => {
    const partitions = options.partitions !== undefined && isQueueTopic(topic) ? options.partitions : asked
    const retention = String(isQueueTopic(topic) ? (options.retainMs ?? -1) : -1)
    const count = await createTopic(topic, partitions, [{ name: "retention.ms", value: retention }])
    if (options.retainMs !== undefined && isQueueTopic(topic)) await keepRetention(topic, retention)
    // the events' snapshots live beside them, one partition per events partition
    if (isEventsTopic(topic)) await createTopic(snapshotsTopicOf(topic), count, SNAPSHOTS_TOPIC_CONFIG)
    return count
  }

  /**
   * Sets `retention.ms` of an existing topic if it differs. AlterConfigs replaces a topic's
   * whole set of settings, so every one set on the topic goes back with it.
   */
  const keepRetention = async (topic: string, retention: string): Promise<void> => {
    const described = await settled(`reading the settings of topic ${topic}`, () =>
      admin.describeConfigs({ includeSynonyms: false, resources: [{ type: TOPIC_RESOURCE, name: topic }] })
    )
    const entries = described.resources[0]?.configEntries ?? []
    if (entries.find((e) => e.configName === "retention.ms")?.configValue === retention) return
    const kept = entries
      .filter((e) => e.configSource === SET_ON_TOPIC && !e.readOnly && !e.isSensitive && e.configName !== "retention.ms")
      .map((e) => ({ name: e.configName, value: e.configValue }))
    await settled(`setting retention.ms=${retention} on topic ${topic}`, () =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: TOPIC_RESOURCE, name: topic, configEntries: [...kept, { name: "retention.ms", value: retention }] }]
      })
    )
  }

  const createTopic = async (topic: string, partitions: number, configEntries: Array<{ name: string; value: string }>): Promise<number> => {
    const rf = replicationFactor(options)
    // Created by us or by someone else meanwhile (TOPIC_ALREADY_EXISTS is not an error here).
    await settled(`creating topic ${topic}`, () =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            numPartitions: partitions,
            ...(rf === undefined ? {} : { replicationFactor: rf }),
            configEntries
          }
        ]
      })
    )
    // Wait until every partition has a leader (metadata may not know the topic for a moment).
    for (let i = 0; ; i++) {
      const meta = await settled(`reading metadata of topic ${topic}`, () => metadataOf(topic))
      if (meta !== undefined && meta.partitions.length > 0 && meta.partitions.every((p) => p.leader >= 0)) {
        partitionCounts.set(topic, meta.partitions.length)
        return meta.partitions.length
      }
      if (i >= 100) throw new LogError({ message: `${url}: topic ${topic} has no leader for some partition after 10 s`, retryable: true })
      await sleep(100)
    }
  }

  return { ensureTopic, existingPartitions, checkPartitions, settled }
}
