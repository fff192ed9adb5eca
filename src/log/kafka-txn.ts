/**
 * `transact` on Kafka: one transactional producer per (engine group, partition), with the
 * transactional id `<group>.p<partition>` — the same for every engine of the queue, so the
 * producer of a new owner fences the old one (zombie) and aborts its open transaction.
 *
 * Invariants:
 * - A producer exists for (group, p) while this process owns p in the group: the group member
 *   opens it (initTransactions: fences, waits for the previous owner's transaction to finish)
 *   before it reads the committed offset and restores, and closes it after the owner is done.
 *   Without a member of the group in this process, `transact` opens one on first use.
 * - Transactions of one partition run one at a time (the Appender also has at most one).
 * - A unit is all-or-nothing: events, its snapshot, dead letters and the command offset
 *   commit together.
 * - A commit whose outcome is unknown (connection lost during EndTxn) is settled before
 *   anything else is written: after re-initialising (which completes the transaction one way
 *   or the other) the tail of the events partition (or the committed offset) tells whether it
 *   landed. If it did, the retried unit's already-written prefix is dropped, so a retry never
 *   writes an event twice.
 */
import type { Kafka as KafkaClient, Producer } from "kafkajs"
import { FencedError, LogError, type LogRecord, type OutgoingRecord, type TransactUnit } from "./event-log.ts"
import { hasType, isFencing, PRODUCE_CHUNK_BYTES, Serial, sizedChunks, sleep, toLogError, TXN_RETRY } from "./kafka-client.ts"
import { snapshotRecords, snapshotsTopicOf } from "./kafka-snapshots.ts"

/** Transactions left open by a dead process are aborted by the broker after this long. */
const TRANSACTION_TIMEOUT_MS = 30_000

export interface TxnDeps {
  readonly kafka: KafkaClient
  readonly brokers: ReadonlyArray<string>
  /** The last `max` committed records of a partition below its last stable offset. */
  readonly tail: (topic: string, partition: number, max: number) => Promise<ReadonlyArray<LogRecord>>
  /** Fails for a record addressed to a partition the topic does not have. */
  readonly checkPartitions: (topic: string, records: ReadonlyArray<{ readonly partition?: number }>) => Promise<void>
  /**
   * A transaction committed with records of `topic`/`partition` up to `end` (exclusive).
   * EndTxn is acknowledged before the broker has written the commit markers, so for a few ms
   * the last stable offset does not cover it yet; the log uses this to read its own writes.
   */
  readonly onCommitted: (topic: string, partition: number, end: number) => void
  /** The committed offset of `group` on `topic`/`partition` (-1 when none). */
  readonly committed: (group: string, topic: string, partition: number) => Promise<number>
  /** Whether `topic` has `partition` (a snapshot goes to the snapshots topic only when it has). */
  readonly hasPartition: (topic: string, partition: number) => Promise<boolean>
}

/** What the group member of a group in this process is told. */
export interface TxnMember {
  /** A transaction of `partition` was refused as a zombie's while the member thinks it owns it. */
  readonly onFenced: (partition: number, token: number) => void
}

interface Entry {
  readonly key: string
  readonly group: string
  readonly partition: number
  readonly transactionalId: string
  /** The ownership this producer belongs to (0 when opened lazily). */
  readonly token: number
  producer: Producer | undefined
  readonly serial: Serial
  /** The producer's state is unknown (EndTxn or abort failed): re-initialise before use. */
  broken: boolean
  /** A unit whose commit may or may not have landed. */
  uncertain: TransactUnit | undefined
  closed: boolean
}

const keyOf = (group: string, partition: number) => `${group}\u0000${partition}`
export const transactionalIdOf = (group: string, partition: number) => `${group}.p${partition}`

const sameRecords = (a: ReadonlyArray<OutgoingRecord>, b: ReadonlyArray<OutgoingRecord>) =>
  a.length <= b.length && a.every((r, i) => r.value === b[i]!.value && r.key === b[i]!.key)

const isEmptyUnit = (unit: TransactUnit) =>
  unit.events.length === 0 && (unit.deadLetters?.length ?? 0) === 0 && (unit.commands?.length ?? 0) === 0 && unit.commit === undefined

export class Transactions {
  private readonly entries = new Map<string, Entry>()
  private readonly members = new Map<string, TxnMember>()
  private closed = false

  constructor(private readonly deps: TxnDeps) {}

  registerMember(group: string, member: TxnMember): void {
    if (this.members.has(group))
      throw new LogError({
        message: `this log already has a member of group '${group}': open a second log (process) for a second engine`,
        retryable: false
      })
    this.members.set(group, member)
  }

  unregisterMember(group: string, member: TxnMember): void {
    if (this.members.get(group) === member) this.members.delete(group)
  }

  /**
   * (Re)creates the producer of (group, partition) for ownership `token` and initialises it:
   * every older producer with the id is fenced and its open transaction completed.
   */
  async open(group: string, partition: number, token: number): Promise<void> {
    const key = keyOf(group, partition)
    const previous = this.entries.get(key)
    if (previous !== undefined) await this.dispose(previous)
    const entry: Entry = {
      key,
      group,
      partition,
      transactionalId: transactionalIdOf(group, partition),
      token,
      producer: undefined,
      serial: new Serial(),
      broken: true,
      uncertain: undefined,
      closed: false
    }
    this.entries.set(key, entry)
    try {
      await entry.serial.run(() => this.initialise(entry))
    } catch (e) {
      if (this.entries.get(key) === entry) this.entries.delete(key)
      await this.dispose(entry)
      throw e
    }
  }

  /** Closes the producer of (group, partition) if it still belongs to ownership `token`. */
  async close(group: string, partition: number, token: number): Promise<void> {
    const key = keyOf(group, partition)
    const entry = this.entries.get(key)
    if (entry === undefined || entry.token !== token) return
    this.entries.delete(key)
    await entry.serial.run(() => this.dispose(entry))
  }

  async closeAll(): Promise<void> {
    this.closed = true
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map((e) => e.serial.run(() => this.dispose(e))))
  }

  transact(unit: TransactUnit): Promise<void> {
    if (isEmptyUnit(unit)) return Promise.resolve()
    const key = keyOf(unit.group, unit.partition)
    let entry = this.entries.get(key)
    if (entry === undefined) {
      if (this.closed) return Promise.reject(new LogError({ message: "the kafka log is closed", retryable: false }))
      if (this.members.has(unit.group)) return Promise.reject(this.notOwner(unit))
      // No engine of this group here: a direct user of the log; open on first use.
      entry = {
        key,
        group: unit.group,
        partition: unit.partition,
        transactionalId: transactionalIdOf(unit.group, unit.partition),
        token: 0,
        producer: undefined,
        serial: new Serial(),
        broken: true,
        uncertain: undefined,
        closed: false
      }
      this.entries.set(key, entry)
    }
    const target = entry
    return target.serial.run(() => this.run(target, unit))
  }

  // ---------------------------------------------------------------- internals

  private notOwner(unit: TransactUnit): FencedError {
    return new FencedError({
      message: `this engine no longer owns ${unit.eventsTopic} partition ${unit.partition} (group ${unit.group})`
    })
  }

  private async dispose(entry: Entry): Promise<void> {
    entry.closed = true
    const producer = entry.producer
    entry.producer = undefined
    await producer?.disconnect().catch(() => undefined)
  }

  private async initialise(entry: Entry): Promise<void> {
    const old = entry.producer
    entry.producer = undefined
    await old?.disconnect().catch(() => undefined)
    const producer = this.deps.kafka.producer({
      transactionalId: entry.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: TRANSACTION_TIMEOUT_MS,
      allowAutoTopicCreation: false,
      retry: TXN_RETRY
    })
    try {
      await producer.connect()
      // kafkajs sends InitProducerId(transactionalId) on the first transaction: do it now, so
      // older producers are fenced before the caller reads offsets or restores.
      const tx = await producer.transaction()
      await tx.abort()
    } catch (e) {
      await producer.disconnect().catch(() => undefined)
      throw toLogError(this.deps.brokers, `initialising transactional producer ${entry.transactionalId}`, e)
    }
    if (entry.closed) {
      await producer.disconnect().catch(() => undefined)
      throw new LogError({ message: `transactional producer ${entry.transactionalId} closed`, retryable: false })
    }
    entry.producer = producer
    entry.broken = false
  }

  private fenced(entry: Entry, unit: TransactUnit): FencedError {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key)
    void this.dispose(entry)
    if (entry.token !== 0) this.members.get(entry.group)?.onFenced(entry.partition, entry.token)
    return this.notOwner(unit)
  }

  /** Whether `unit` is in the log (called after a re-initialisation completed it). */
  private async landed(unit: TransactUnit): Promise<boolean> {
    const last = unit.events[unit.events.length - 1]
    if (last !== undefined) {
      const tail = await this.deps.tail(unit.eventsTopic, unit.partition, unit.events.length + 2)
      return tail.length > 0 && tail[tail.length - 1]!.value === last.value
    }
    if (unit.commit !== undefined) {
      const committed = await this.deps.committed(unit.group, unit.commit.topic, unit.partition)
      return committed >= unit.commit.offset
    }
    return false
  }

  /** `unit` without what `done` already wrote (the Appender retries failed batches as a prefix). */
  private withoutLanded(unit: TransactUnit, done: TransactUnit): TransactUnit {
    const deadDone = done.deadLetters ?? []
    const dead = unit.deadLetters ?? []
    if (!sameRecords(done.events, unit.events) || !sameRecords(deadDone, dead)) return unit
    const commandsDone = done.commands ?? []
    const commands = unit.commands ?? []
    if (!sameRecords(commandsDone, commands)) return unit
    const rest: TransactUnit = {
      ...unit,
      events: unit.events.slice(done.events.length),
      deadLetters: dead.slice(deadDone.length),
      commands: commands.slice(commandsDone.length)
    }
    if (rest.commit !== undefined && done.commit !== undefined && rest.commit.offset <= done.commit.offset) {
      const { commit: _, ...withoutCommit } = rest
      return withoutCommit
    }
    return rest
  }

  private async run(entry: Entry, original: TransactUnit): Promise<void> {
    const { brokers } = this.deps
    let unit = original
    if (entry.closed || this.entries.get(entry.key) !== entry) throw this.notOwner(unit)
    if (entry.broken) {
      try {
        await this.initialise(entry)
      } catch (e) {
        if (isFencing(e)) throw this.fenced(entry, unit)
        throw e
      }
    }
    if (entry.uncertain !== undefined) {
      const done = entry.uncertain
      let landed: boolean
      try {
        landed = await this.landed(done)
      } catch (e) {
        throw toLogError(brokers, `checking whether the last transaction of ${entry.transactionalId} committed`, e)
      }
      entry.uncertain = undefined
      if (landed) unit = this.withoutLanded(unit, done)
      if (isEmptyUnit(unit)) return
    }
    try {
      await this.deps.checkPartitions(unit.eventsTopic, [{ partition: unit.partition }])
      if (unit.deadLetterTopic !== undefined && (unit.deadLetters?.length ?? 0) > 0)
        await this.deps.checkPartitions(unit.deadLetterTopic, unit.deadLetters!)
    } catch (e) {
      throw toLogError(brokers, `transaction of ${entry.transactionalId}`, e)
    }
    // A snapshot is only a shortcut: without its topic (a log created by an older version and
    // not reopened since) the unit goes out without it rather than fail.
    const snapshotsTopic = snapshotsTopicOf(unit.eventsTopic)
    const withSnapshot = unit.snapshot !== undefined && unit.events.length > 0 && (await this.deps.hasPartition(snapshotsTopic, unit.partition).catch(() => false))
    const producer = entry.producer!
    let tx: Awaited<ReturnType<Producer["transaction"]>>
    try {
      tx = await producer.transaction()
    } catch (e) {
      entry.broken = true
      if (isFencing(e)) throw this.fenced(entry, unit)
      throw toLogError(brokers, `beginning a transaction of ${entry.transactionalId}`, e)
    }
    let eventsEnd: number | undefined
    try {
      // A unit decided from a large backlog can hold thousands of events: it goes out as
      // several produce requests of bounded size, all inside this one transaction (a single
      // request over the broker's message.max.bytes would be refused on every retry).
      for (const events of sizedChunks(unit.events, PRODUCE_CHUNK_BYTES)) {
        const written = await tx.sendBatch({
          topicMessages: [{ topic: unit.eventsTopic, messages: events.map((r) => ({ key: r.key, value: r.value, partition: unit.partition })) }],
          acks: -1
        })
        const mine = written.find((m) => m.topicName === unit.eventsTopic && m.partition === unit.partition)
        const base = mine?.baseOffset ?? mine?.offset
        if (base !== undefined) eventsEnd = Number(base) + events.length
      }
      // the state as of these events, covering everything before `eventsEnd`, in the same transaction
      if (withSnapshot && eventsEnd !== undefined)
        for (const chunk of sizedChunks(snapshotRecords(unit.partition, eventsEnd, unit.snapshot!), PRODUCE_CHUNK_BYTES))
          await tx.sendBatch({
            topicMessages: [{ topic: snapshotsTopic, messages: chunk.map((r) => ({ key: r.key, value: r.value, partition: unit.partition })) }],
            acks: -1
          })
      const dead = unit.deadLetterTopic === undefined ? [] : (unit.deadLetters ?? [])
      for (const letters of sizedChunks(dead, PRODUCE_CHUNK_BYTES))
        await tx.sendBatch({
          topicMessages: [
            {
              topic: unit.deadLetterTopic!,
              messages: letters.map((r) => (r.partition === undefined ? { key: r.key, value: r.value } : { key: r.key, value: r.value, partition: r.partition }))
            }
          ],
          acks: -1
        })
      // commands go out with the events (partition by key, as a producer's would): a
      // schedule's tick and the job it adds commit together or not at all
      if (unit.commandsTopic !== undefined)
        for (const chunk of sizedChunks(unit.commands ?? [], PRODUCE_CHUNK_BYTES))
          await tx.sendBatch({ topicMessages: [{ topic: unit.commandsTopic, messages: chunk.map((r) => ({ key: r.key, value: r.value })) }], acks: -1 })
      const commit = unit.commit
      if (commit !== undefined) {
        // kafkajs does not retry AddOffsetsToTxn on CONCURRENT_TRANSACTIONS (#430): we do.
        for (let attempt = 0; ; attempt++) {
          try {
            await tx.sendOffsets({
              consumerGroupId: unit.group,
              topics: [{ topic: commit.topic, partitions: [{ partition: unit.partition, offset: String(commit.offset) }] }]
            })
            break
          } catch (e) {
            if (attempt >= 12 || !hasType(e, "CONCURRENT_TRANSACTIONS")) throw e
            await sleep(Math.min(500, 5 * 2 ** attempt))
          }
        }
      }
    } catch (e) {
      // Abort, and never reuse this producer: kafkajs may not have counted the sequence numbers
      // of a partial produce, and a reused sequence makes the broker drop the next batch as a
      // "duplicate". Re-initialising gets a new epoch (sequences restart) and aborts for sure.
      entry.broken = true
      await tx.abort().catch(() => undefined)
      if (isFencing(e)) throw this.fenced(entry, unit)
      throw toLogError(brokers, `transaction of ${entry.transactionalId}`, e)
    }
    try {
      await tx.commit()
      if (eventsEnd !== undefined) this.deps.onCommitted(unit.eventsTopic, unit.partition, eventsEnd)
    } catch (e) {
      entry.broken = true
      if (isFencing(e)) throw this.fenced(entry, unit)
      entry.uncertain = unit
      // Settle it now if the brokers answer: re-initialising completes the transaction.
      try {
        await this.initialise(entry)
        const landed = await this.landed(unit)
        entry.uncertain = undefined
        if (landed) return
      } catch (inner) {
        if (isFencing(inner)) throw this.fenced(entry, unit)
      }
      throw toLogError(brokers, `committing a transaction of ${entry.transactionalId}`, e)
    }
  }
}
