/**
 * Reading partitions without a group of our own: `follow` and `read` of the Kafka EventLog.
 *
 * kafkajs has no manual assignment, so a reader is a consumer in a group of its own
 * (`jobledger.reader.<uuid>`, never committing) that is assigned every partition of its topic;
 * partitions nobody reads are paused, the others are sought to where their reader stands.
 * One consumer per topic serves every partition ("slot"); a second follower of the same
 * partition gets a second consumer. `read` calls share one more consumer per topic.
 *
 * Positions and control records. With transactions, a partition holds commit/abort markers
 * that a READ_COMMITTED consumer never delivers, so "the offset after the last record
 * delivered" (`dataEnd`) can stay below the end offset of the log for good. Each slot also
 * keeps `position`, the consumer's fetch position, which does move past markers (batch
 * `lastOffset()` covers them, and batches holding only markers are reported by kafkajs's
 * END_BATCH_PROCESS event). `settledEnd` uses both to give `endOffset` a value that followers
 * reach (see there).
 */
import type { EachBatchPayload, Kafka as KafkaClient, KafkaMessage } from "kafkajs"
import { randomUUID } from "node:crypto"
import { LogError, type LogRecord } from "./event-log.ts"
import { Serial, urlOf } from "./kafka-client.ts"
import { ManagedConsumer } from "./kafka-consumer.ts"

/** A reader waiting for a follower that makes no progress gives up after this long. */
const STUCK_MS = 30_000

interface Slot {
  readonly topic: string
  readonly partition: number
  /** The next offset the consumer fetches (past control records). */
  position: number
  /** The offset after the last record handed over (and handled). */
  dataEnd: number
  readonly deliver: (records: ReadonlyArray<LogRecord>) => Promise<void> | void
  closed: boolean
  lastProgress: number
  readonly onProgress?: () => void
}

interface EndWaiter {
  readonly topic: string
  readonly partition: number
  readonly end: number
  readonly since: number
  readonly resolve: (end: number) => void
  readonly reject: (e: LogError) => void
}

export const toLogRecord = (topic: string, partition: number, m: KafkaMessage): LogRecord => ({
  topic,
  partition,
  offset: Number(m.offset),
  key: m.key === null || m.key === undefined ? null : m.key.toString("utf8"),
  value: m.value === null || m.value === undefined ? "" : m.value.toString("utf8"),
  timestamp: Number(m.timestamp)
})

/** One consumer reading chosen partitions of one topic. */
class TopicReader {
  readonly slots = new Map<number, Slot>()
  private assigned = new Set<number>()
  private readonly consumer: ManagedConsumer

  constructor(
    kafka: KafkaClient,
    readonly topic: string,
    private readonly progressed: (slot: Slot) => void
  ) {
    this.consumer = new ManagedConsumer({
      kafka,
      groupId: `jobledger.reader.${randomUUID()}`,
      topic,
      eachBatch: (payload) => this.eachBatch(payload),
      onJoin: (partitions) => this.onJoin(partitions),
      onSkipped: (partition, first, last) => this.onSkipped(partition, first, last),
      onCrash: () => {
        this.assigned = new Set()
      }
    })
    this.consumer.start()
  }

  add(slot: Slot): void {
    this.slots.set(slot.partition, slot)
    if (this.assigned.has(slot.partition)) {
      this.consumer.seek(slot.partition, slot.position)
      this.consumer.resume(slot.partition)
    }
  }

  remove(slot: Slot): void {
    slot.closed = true
    if (this.slots.get(slot.partition) !== slot) return
    this.slots.delete(slot.partition)
    this.consumer.pause(slot.partition)
  }

  stop(): Promise<void> {
    for (const slot of this.slots.values()) slot.closed = true
    this.slots.clear()
    return this.consumer.stop()
  }

  private onJoin(partitions: ReadonlyArray<number>): void {
    this.assigned = new Set(partitions)
    for (const p of partitions) {
      const slot = this.slots.get(p)
      if (slot === undefined) this.consumer.pause(p)
      else {
        this.consumer.seek(p, slot.position)
        this.consumer.resume(p)
      }
    }
  }

  private onSkipped(partition: number, first: number, last: number): void {
    const slot = this.slots.get(partition)
    if (slot === undefined || slot.closed || first > slot.position || last + 1 <= slot.position) return
    slot.position = last + 1
    slot.lastProgress = Date.now()
    this.progressed(slot)
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    const slot = this.slots.get(batch.partition)
    if (slot === undefined || slot.closed) {
      this.consumer.pause(batch.partition)
      return
    }
    if (isStale()) return
    const fresh = batch.messages.filter((m) => Number(m.offset) >= slot.position)
    if (fresh.length > 0) {
      try {
        await slot.deliver(fresh.map((m) => toLogRecord(batch.topic, batch.partition, m)))
      } catch {
        // a follower's callback failed: it is its own business, the stream goes on
      }
    }
    if (slot.closed || this.slots.get(batch.partition) !== slot) return
    if (fresh.length > 0) slot.dataEnd = Number(fresh[fresh.length - 1]!.offset) + 1
    slot.position = Math.max(slot.position, Number(batch.lastOffset()) + 1)
    slot.lastProgress = Date.now()
    resolveOffset(batch.lastOffset())
    this.progressed(slot)
    await heartbeat()
  }
}

export class Readers {
  private readonly followers = new Map<string, Array<TopicReader>>()
  private readonly readers = new Map<string, TopicReader>()
  private readonly readLocks = new Map<string, Serial>()
  private readonly waiters = new Set<EndWaiter>()
  private readonly watchdog: NodeJS.Timeout
  private closed = false

  constructor(
    private readonly kafka: KafkaClient,
    private readonly brokers: ReadonlyArray<string>
  ) {
    this.watchdog = setInterval(() => this.checkStuck(), 1_000)
    this.watchdog.unref()
  }

  /** Starts following `topic`/`partition` from `from`; `unfollow` stops it. */
  follow(
    topic: string,
    partition: number,
    from: number,
    onRecords: (records: ReadonlyArray<LogRecord>) => Promise<void>
  ): { readonly stop: () => void } {
    if (this.closed) throw new LogError({ message: `${urlOf(this.brokers)} is closed`, retryable: false })
    const slot: Slot = {
      topic,
      partition,
      position: from,
      dataEnd: from,
      deliver: onRecords,
      closed: false,
      lastProgress: Date.now()
    }
    const list = this.followers.get(topic) ?? []
    this.followers.set(topic, list)
    let reader = list.find((r) => !r.slots.has(partition))
    if (reader === undefined) {
      reader = new TopicReader(this.kafka, topic, (s) => this.progressed(s))
      list.push(reader)
    }
    reader.add(slot)
    const owner = reader
    return {
      stop: () => {
        owner.remove(slot)
        this.progressed(slot)
      }
    }
  }

  /**
   * Up to `max` committed records of a partition from `from`, stopping at `end` (the last
   * stable offset when the call began). Reads of one partition run one at a time.
   */
  read(topic: string, partition: number, from: number, max: number, end: number): Promise<Array<LogRecord>> {
    if (from >= end || max <= 0) return Promise.resolve([])
    const key = `${topic}\u0000${partition}`
    let lock = this.readLocks.get(key)
    if (lock === undefined) {
      lock = new Serial()
      this.readLocks.set(key, lock)
    }
    return lock.run(
      () =>
        new Promise<Array<LogRecord>>((resolve, reject) => {
          if (this.closed) return reject(new LogError({ message: `${urlOf(this.brokers)} is closed`, retryable: false }))
          let reader = this.readers.get(topic)
          if (reader === undefined) {
            reader = new TopicReader(this.kafka, topic, (s) => this.progressed(s))
            this.readers.set(topic, reader)
          }
          const owner = reader
          const out: Array<LogRecord> = []
          let done = false
          const finish = (error?: LogError) => {
            if (done) return
            done = true
            clearInterval(timer)
            owner.remove(slot)
            if (error === undefined) resolve(out.length > max ? out.slice(0, max) : out)
            else reject(error)
          }
          const slot: Slot = {
            topic,
            partition,
            position: from,
            dataEnd: from,
            closed: false,
            lastProgress: Date.now(),
            deliver: (records) => {
              for (const r of records) if (r.offset < end && out.length < max) out.push(r)
            },
            onProgress: () => {
              if (out.length >= max || slot.position >= end) finish()
            }
          }
          const timer = setInterval(() => {
            if (this.closed) finish(new LogError({ message: `${urlOf(this.brokers)} is closed`, retryable: false }))
            else if (Date.now() - slot.lastProgress > STUCK_MS)
              finish(
                new LogError({
                  message: `${urlOf(this.brokers)}: reading ${topic}/${partition} from ${from} made no progress for ${STUCK_MS / 1000} s — are the brokers reachable?`,
                  retryable: true
                })
              )
          }, 1_000)
          owner.add(slot)
        })
    )
  }

  /**
   * The end offset `end` (last stable offset) as the followers of this process see it: when
   * the partition has followers here, waits until each has fetched past `end`, then returns
   * min(end, the smallest `dataEnd` among them). Every follower's delivered position is then
   * ≥ the result, and no committed record below `end` is left undelivered; trailing control
   * records no longer keep a waiter from resolving. Without followers, `end` itself.
   */
  settledEnd(topic: string, partition: number, end: number): Promise<number> {
    const slots = this.followSlots(topic, partition)
    if (slots.length === 0) return Promise.resolve(end)
    return new Promise<number>((resolve, reject) => {
      const waiter: EndWaiter = { topic, partition, end, since: Date.now(), resolve, reject }
      this.waiters.add(waiter)
      this.check(waiter)
    })
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.watchdog)
    const all = [...this.readers.values(), ...[...this.followers.values()].flat()]
    this.readers.clear()
    this.followers.clear()
    for (const w of this.waiters) w.reject(new LogError({ message: `${urlOf(this.brokers)} is closed`, retryable: false }))
    this.waiters.clear()
    await Promise.all(all.map((r) => r.stop()))
  }

  private followSlots(topic: string, partition: number): Array<Slot> {
    const out: Array<Slot> = []
    for (const reader of this.followers.get(topic) ?? []) {
      const slot = reader.slots.get(partition)
      if (slot !== undefined && !slot.closed) out.push(slot)
    }
    return out
  }

  private progressed(slot: Slot): void {
    slot.onProgress?.()
    for (const w of this.waiters) if (w.topic === slot.topic && w.partition === slot.partition) this.check(w)
  }

  private check(w: EndWaiter): boolean {
    const slots = this.followSlots(w.topic, w.partition)
    if (slots.some((s) => s.position < w.end)) return false
    this.waiters.delete(w)
    w.resolve(Math.min(w.end, ...slots.map((s) => s.dataEnd)))
    return true
  }

  private checkStuck(): void {
    const now = Date.now()
    for (const w of this.waiters) {
      if (this.check(w)) continue
      const behind = this.followSlots(w.topic, w.partition).filter((s) => s.position < w.end)
      const last = Math.max(w.since, ...behind.map((s) => s.lastProgress))
      if (now - last > STUCK_MS) {
        this.waiters.delete(w)
        w.reject(
          new LogError({
            message: `${urlOf(this.brokers)}: following ${w.topic}/${w.partition} made no progress for ${STUCK_MS / 1000} s (at ${Math.min(...behind.map((s) => s.position))}, end ${w.end}) — are the brokers reachable?`,
            retryable: true
          })
        )
      }
    }
  }
}
