/**
 * EventLog over Apache Kafka (kafkajs): the `kafka://host:port[,host:port]` backend
 * (`kafkas://` for TLS; SASL and TLS settings arrive resolved in a KafkaConnection).
 *
 * - append: an idempotent producer (acks=all, one request in flight); appends made in the
 *   same tick go out in one request. After a failed send the producer is replaced, because a
 *   kafkajs idempotent producer whose retries ran out may reuse a sequence number.
 * - read / follow: consumers in groups of their own, READ_COMMITTED (kafka-reader.ts).
 * - endOffset: the last stable offset, settled against this process's followers so that
 *   trailing transaction markers never keep `caughtUp()` waiting (kafka-reader.ts).
 * - join: the engine's consumer group (kafka-group.ts).
 * - transact: a Kafka transaction per unit, transactional id per (group, partition), which
 *   fences zombie owners (kafka-txn.ts).
 * - snapshots: the partitions' latest states, in the compacted `jobledger.<q>.snapshots`
 *   topic, written inside the owner's transactions (kafka-snapshots.ts); created with the
 *   events topic.
 *
 * Topics are created with `retention.ms=-1`: the log is the only copy of a job's history.
 * The replication factor is the option (`?replication=N` in the URL), else
 * JOBLEDGER_KAFKA_REPLICATION, else the cluster's default. Creation right after a broker
 * (re)start meets "does not host this topic-partition" / "leader not available" for a while:
 * it is retried with backoff for about 20 s before it fails.
 */
import { Effect, Layer } from "effect"
import type { Admin, ConfigResourceTypes, Kafka as KafkaClient, Message, Producer } from "kafkajs"
import { EventLog, type EventLogService, FencedError, LogError, type OutgoingRecord } from "./event-log.ts"
import { CLIENT_RETRY, causesOf, PRODUCE_CHUNK_BYTES, sizedChunks, isTransient, Kafka, kafkaConfig, sleep, toLogError } from "./kafka-client.ts"
import { checkTls, connectError } from "./kafka-connect.ts"
import { type KafkaConnection, plainConnection } from "./kafka-options.ts"
import { scrub } from "./secrets.ts"
import { GroupMember } from "./kafka-group.ts"
import { Readers } from "./kafka-reader.ts"
import { Transactions } from "./kafka-txn.ts"
import { isEventsTopic, readLatestSnapshot, SNAPSHOTS_TOPIC_CONFIG, snapshotsTopicOf } from "./kafka-snapshots.ts"

const REPORT_EVERY_MS = 30_000

type TopicOffsets = Awaited<ReturnType<Admin["fetchTopicOffsets"]>>

interface PendingAppend {
  readonly topic: string
  readonly records: ReadonlyArray<OutgoingRecord>
  readonly resolve: () => void
  readonly reject: (e: LogError) => void
}

/** Group commit of appends over an idempotent producer, replaced after any failure. */
class Appends {
  private producer: Producer | undefined
  private connecting: Promise<Producer> | undefined
  private pending: Array<PendingAppend> = []
  private running: Promise<void> | undefined
  private closed = false

  constructor(
    private readonly kafka: KafkaClient,
    /** How messages name the cluster. */
    private readonly url: string,
    /** Fails for a record addressed to a partition the topic does not have. */
    private readonly checkPartitions: (topic: string, records: ReadonlyArray<OutgoingRecord>) => Promise<void>
  ) {}

  async start(): Promise<void> {
    await this.get()
  }

  async append(topic: string, records: ReadonlyArray<OutgoingRecord>): Promise<void> {
    if (records.length === 0) return
    if (this.closed) throw new LogError({ message: `${this.url} is closed`, retryable: false })
    await this.checkPartitions(topic, records)
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ topic, records, resolve, reject })
      this.running ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain())
    })
  }

  async close(): Promise<void> {
    this.closed = true
    await this.running
    await this.connecting?.catch(() => undefined)
    const producer = this.producer
    this.producer = undefined
    await producer?.disconnect().catch(() => undefined)
  }

  private get(): Promise<Producer> {
    if (this.producer !== undefined) return Promise.resolve(this.producer)
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: CLIENT_RETRY
      })
      try {
        await producer.connect()
      } catch (e) {
        await producer.disconnect().catch(() => undefined)
        throw e
      }
      this.producer = producer
      return producer
    })().finally(() => {
      this.connecting = undefined
    })
    return this.connecting
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending
      this.pending = []
      try {
        const producer = await this.get()
        for (const topicMessages of chunks(batch)) await producer.sendBatch({ acks: -1, topicMessages })
        for (const p of batch) p.resolve()
      } catch (cause) {
        const error = toLogError(this.url, `appending to ${[...new Set(batch.map((p) => p.topic))].join(", ")}`, cause)
        for (const p of batch) p.reject(error)
        const broken = this.producer
        this.producer = undefined
        void broken?.disconnect().catch(() => undefined)
      }
    }
    this.running = undefined
  }
}

/** Splits appends (in order) into produce requests of bounded size, grouped by topic. */
const chunks = (batch: ReadonlyArray<PendingAppend>): Array<Array<{ topic: string; messages: Array<Message> }>> => {
  const tagged = batch.flatMap(({ topic, records }) => records.map((r) => ({ topic, key: r.key, value: r.value, partition: r.partition })))
  return sizedChunks(tagged, PRODUCE_CHUNK_BYTES).map((chunk) => {
    const byTopic = new Map<string, Array<Message>>()
    for (const r of chunk) {
      const messages = byTopic.get(r.topic) ?? byTopic.set(r.topic, []).get(r.topic)!
      messages.push(r.partition === undefined ? { key: r.key, value: r.value } : { key: r.key, value: r.value, partition: r.partition })
    }
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }))
  })
}

/** A partition's leader is moving (broker restart): worth asking again after metadata settles. */
const LEADER_ERRORS = new Set(["NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "UNKNOWN_TOPIC_OR_PARTITION"])
const leaderMoved = (error: unknown) => causesOf(error).some((c) => c.type !== undefined && LEADER_ERRORS.has(c.type))

export interface KafkaLogOptions {
  /**
   * Replication factor of the topics this log creates. Default: JOBLEDGER_KAFKA_REPLICATION,
   * else the cluster's `default.replication.factor`.
   */
  readonly replicationFactor?: number
  /**
   * Partitions of the commands and events topics this log creates (`jobledger.<q>.commands`,
   * `jobledger.<q>.events`), instead of the count the caller asks for. Existing topics keep
   * theirs; other topics (dead letters) get what the caller asks.
   */
  readonly partitions?: number
  /**
   * `retention.ms` of the commands and events topics (`?retainMs=`): set when they are
   * created, and on existing ones when it differs (their other topic settings kept).
   * Default: -1, keep everything.
   */
  readonly retainMs?: number
}

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

/** Problems the log survives (consumer restarts, retried takeovers): to stderr, throttled. */
const makeReporter = (url: string) => {
  const last = new Map<string, number>()
  return (message: string, error: unknown) => {
    const now = Date.now()
    if (now - (last.get(message) ?? 0) < REPORT_EVERY_MS) return
    last.set(message, now)
    const detail = error === undefined ? "" : `: ${error instanceof Error ? error.message : String(error)}`
    process.stderr.write(scrub(`[jobledger] ${url}: ${message}${detail}\n`))
  }
}

const open = async (connection: KafkaConnection, options: KafkaLogOptions) => {
  const { brokers, url } = connection
  // a broker certificate that does not verify fails here at once, not after kafkajs's retries
  await checkTls(connection)
  const kafka = new Kafka(kafkaConfig(connection))
  const admin: Admin = kafka.admin({ retry: CLIENT_RETRY })
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
  const appends = new Appends(kafka, url, checkPartitions)
  try {
    await admin.connect()
    await appends.start()
  } catch (cause) {
    await appends.close().catch(() => undefined)
    await admin.disconnect().catch(() => undefined)
    throw connectError(connection, cause)
  }
  const readers = new Readers(kafka, brokers)
  const report = makeReporter(url)

  /** Ends of this process's committed transactions, which the brokers may not show yet. */
  const committedEnds = new Map<string, number>()
  const onCommitted = (topic: string, partition: number, end: number) => {
    const key = `${topic}\u0000${partition}`
    if (end > (committedEnds.get(key) ?? 0)) committedEnds.set(key, end)
  }

  const fetchOffsets = async (topic: string) => {
    // kafkajs's fetchTopicOffsets gives up at once on a leader change (NOT_LEADER…): retry a bit.
    for (let attempt = 0; ; attempt++) {
      try {
        return await admin.fetchTopicOffsets(topic)
      } catch (e) {
        if (attempt >= 5 || !leaderMoved(e)) throw e
        await sleep(100 * 2 ** attempt)
      }
    }
  }
  /**
   * One request answers every partition of a topic, so concurrent callers share one — but
   * only a request sent after they called (they must see everything appended before).
   */
  const offsetRequests = new Map<string, { current: Promise<TopicOffsets>; next: Promise<TopicOffsets> | undefined }>()
  const topicOffsets = (topic: string): Promise<TopicOffsets> => {
    const state = offsetRequests.get(topic)
    const start = (): Promise<TopicOffsets> => {
      const current = fetchOffsets(topic)
      const entry = { current, next: undefined as Promise<TopicOffsets> | undefined }
      offsetRequests.set(topic, entry)
      const done = () => {
        if (offsetRequests.get(topic) === entry && entry.next === undefined) offsetRequests.delete(topic)
      }
      current.then(done, done)
      return current
    }
    if (state === undefined) return start()
    state.next ??= state.current.then(start, start)
    return state.next
  }

  /**
   * The last stable offset (the end of what READ_COMMITTED readers see), or the end of this
   * process's last committed transaction on the partition if its markers are not written yet.
   */
  const lastStable = async (topic: string, partition: number): Promise<number> => {
    const offsets = await topicOffsets(topic)
    const found = offsets.find((o) => o.partition === partition)
    if (found === undefined)
      throw new LogError({ message: `${url}: topic ${topic} has no partition ${partition}`, retryable: false })
    return Math.max(Number(found.offset), committedEnds.get(`${topic}\u0000${partition}`) ?? 0)
  }

  const committed = async (group: string, topic: string, partition: number): Promise<number> => {
    // A fresh broker answers COORDINATOR_LOAD_IN_PROGRESS while it loads __consumer_offsets
    // (seconds on Kafka 4.x), longer than kafkajs's own retries: wait for it to settle.
    const [entry] = await settled(`reading the committed offsets of group ${group}`, () =>
      admin.fetchOffsets({ groupId: group, topics: [topic] })
    )
    const found = entry?.partitions.find((p) => p.partition === partition)
    return found === undefined ? -1 : Number(found.offset)
  }

  const transactions = new Transactions({
    kafka,
    brokers,
    committed,
    checkPartitions,
    onCommitted,
    // never names a topic that may not exist (a cluster that auto-creates topics would create it)
    hasPartition: async (topic, partition) => ((await existingPartitions(topic)) ?? 0) > partition,
    tail: async (topic, partition, max) => {
      const end = await lastStable(topic, partition)
      return readers.read(topic, partition, Math.max(0, end - max), max, end)
    }
  })
  const members = new Set<GroupMember>()

  const attempt = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, LogError> =>
    Effect.tryPromise({ try: f, catch: (cause) => toLogError(url, what, cause) })

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

  const service: EventLogService = {
    backend: "kafka",
    url,
    ensureTopic: (topic, partitions) => attempt(`creating topic ${topic}`, () => ensureTopic(topic, partitions)),
    partitionCount: (topic) => attempt(`looking up topic ${topic}`, () => existingPartitions(topic)),
    listTopics: () => attempt("listing topics", () => admin.listTopics()),
    append: (topic, records) =>
      records.length === 0
        ? Effect.void
        : Effect.tryPromise({
            try: () => appends.append(topic, records),
            catch: (cause) => toLogError(url, `appending to ${topic}`, cause)
          }),
    read: (topic, partition, from, max) =>
      attempt(`reading ${topic}/${partition}`, async () => {
        const end = await lastStable(topic, partition)
        return readers.read(topic, partition, from, max, end)
      }),
    endOffset: (topic, partition) =>
      attempt(`end offset of ${topic}/${partition}`, async () =>
        readers.settledEnd(topic, partition, await lastStable(topic, partition))
      ),
    committedOffset: (group, topic, partition) =>
      attempt(`committed offset of group ${group} on ${topic}/${partition}`, async () =>
        Math.max(0, await committed(group, topic, partition))
      ),
    follow: (topic, partition, from, onRecords) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => readers.follow(topic, partition, from, onRecords),
          catch: (cause) => toLogError(url, `following ${topic}/${partition}`, cause)
        }),
        (handle) => Effect.sync(() => handle.stop())
      ).pipe(Effect.asVoid),
    join: (spec) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => {
            const member = new GroupMember({ kafka, admin, transactions, report }, spec)
            member.start()
            members.add(member)
            return member
          },
          catch: (cause) => toLogError(url, `joining group ${spec.group}`, cause)
        }),
        (member) =>
          Effect.promise(async () => {
            await member.stop()
            members.delete(member)
          })
      ).pipe(Effect.asVoid),
    transact: (unit) =>
      Effect.tryPromise({
        try: () => transactions.transact(unit),
        catch: (cause) =>
          cause instanceof FencedError ? cause : toLogError(url, `transaction on ${unit.eventsTopic}/${unit.partition}`, cause)
      }),
    startOffset: (topic, partition) =>
      attempt(`start offset of ${topic}/${partition}`, async () => {
        const found = (await topicOffsets(topic)).find((o) => o.partition === partition)
        return found === undefined ? 0 : Math.max(0, Number(found.low))
      }),
    loadSnapshot: (topic, partition) =>
      attempt(`reading the snapshot of ${topic}/${partition}`, async () => {
        const snapshots = snapshotsTopicOf(topic)
        if (((await existingPartitions(snapshots)) ?? 0) <= partition) return undefined
        const end = await lastStable(snapshots, partition)
        if (end === 0) return undefined
        return readLatestSnapshot((from, max) => readers.read(snapshots, partition, from, max, end), end)
      })
  }

  const close = async () => {
    await Promise.all([...members].map((m) => m.stop().catch(() => undefined)))
    members.clear()
    await readers.close()
    await transactions.closeAll()
    await appends.close()
    await admin.disconnect().catch(() => undefined)
  }

  return { service, close }
}

export const KafkaLog = {
  /**
   * A log on a Kafka cluster: `brokers` (host:port, plaintext) or a resolved connection
   * (TLS, SASL: kafka-options.ts); connects now, disconnects on release.
   */
  layer: (cluster: ReadonlyArray<string> | KafkaConnection, options: KafkaLogOptions = {}): Layer.Layer<EventLog, LogError> => {
    const connection = isConnection(cluster) ? cluster : plainConnection(cluster)
    return Layer.scoped(
      EventLog,
      Effect.acquireRelease(
        Effect.tryPromise({ try: () => open(connection, options), catch: (cause) => connectError(connection, cause) }),
        (log) => Effect.promise(() => log.close())
      ).pipe(Effect.map((log) => log.service))
    )
  }
}

const isConnection = (cluster: ReadonlyArray<string> | KafkaConnection): cluster is KafkaConnection => !Array.isArray(cluster)
