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
 * - ensureTopic / partitionCount: the topics themselves — creation, partition counts,
 *   retention and replication settings (kafka-topics.ts).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Admin, Kafka as KafkaClient, Message, Producer } from "kafkajs"
import { EventLog, type EventLogService, FencedError, LogError, type OutgoingRecord } from "./event-log.ts"
import { CLIENT_RETRY, causesOf, PRODUCE_CHUNK_BYTES, sizedChunks, Kafka, kafkaConfig, sleep, toLogError } from "./kafka-client.ts"
import { checkTls, connectError } from "./kafka-connect.ts"
import { type KafkaConnection, plainConnection } from "./kafka-options.ts"
import { scrub } from "./secrets.ts"
import { GroupMember } from "./kafka-group.ts"
import { Readers } from "./kafka-reader.ts"
import { Transactions } from "./kafka-txn.ts"
import { readLatestSnapshot, snapshotsTopicOf } from "./kafka-snapshots.ts"
import { kafkaTopics, LEADER_ERRORS } from "./kafka-topics.ts"

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
  const report = makeReporter(url)
  const { ensureTopic, existingPartitions, checkPartitions, settled } = kafkaTopics({ admin, url, options, report })
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
