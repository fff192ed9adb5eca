/**
 * A kafkajs consumer that survives crashes: kafkajs gives up after its (bounded) retries and
 * "crashes" (CRASH event, consumer disconnected); we then build a fresh consumer with the
 * same group and start it again, with backoff, until `stop()`.
 *
 * Invariants:
 * - Consumption is manual: no auto-commit, no auto-resolve; callers seek and resolve.
 * - `onJoin` is called synchronously inside kafkajs's join, before the first fetch of the new
 *   generation, so pausing and seeking there take effect for that fetch. After a crash the
 *   pause state and positions of kafkajs are gone: `onJoin` must set them again every time.
 * - `pause`/`resume`/`seek` are best effort while no consumer is running; the next `onJoin`
 *   reconciles.
 */
import type { Consumer, EachBatchPayload, Kafka as KafkaClient, PartitionAssigner } from "kafkajs"
import { CONSUMER_RETRY, HEARTBEAT_INTERVAL_MS, MAX_WAIT_MS, REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS } from "./kafka-client.ts"

export interface ManagedConsumerOptions {
  readonly kafka: KafkaClient
  readonly groupId: string
  readonly topic: string
  readonly eachBatch: (payload: EachBatchPayload) => Promise<void>
  /** Partitions of `topic` assigned by this generation; `memberId` changes after a crash. */
  readonly onJoin: (partitions: ReadonlyArray<number>, memberId: string) => void
  /** A fetched batch held only control records or aborted ones: the position moves past it. */
  readonly onSkipped?: (partition: number, firstOffset: number, lastOffset: number) => void
  /** The consumer died (it is no longer a group member); a new one starts after a backoff. */
  readonly onCrash: (error: unknown) => void
  /** Assigners offered to the group, preferred first (default: kafkajs's round-robin). */
  readonly partitionAssigners?: ReadonlyArray<PartitionAssigner>
}

const RESTART_MIN_MS = 500
const RESTART_MAX_MS = 10_000

export class ManagedConsumer {
  private consumer: Consumer | undefined
  private stopped = false
  private failures = 0
  private restartTimer: NodeJS.Timeout | undefined
  private launching: Promise<void> | undefined

  constructor(private readonly options: ManagedConsumerOptions) {}

  start(): void {
    this.launching = this.launch()
  }

  pause(partition: number): void {
    try {
      this.consumer?.pause([{ topic: this.options.topic, partitions: [partition] }])
    } catch {
      // not running: the next join pauses it
    }
  }

  resume(partition: number): void {
    try {
      this.consumer?.resume([{ topic: this.options.topic, partitions: [partition] }])
    } catch {
      // not running: the next join resumes it
    }
  }

  seek(partition: number, offset: number): void {
    try {
      this.consumer?.seek({ topic: this.options.topic, partition, offset: String(offset) })
    } catch {
      // not running: the next join seeks it
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.restartTimer)
    await this.launching?.catch(() => undefined)
    const consumer = this.consumer
    this.consumer = undefined
    await consumer?.disconnect().catch(() => undefined)
  }

  private async launch(): Promise<void> {
    if (this.stopped) return
    const { kafka, groupId, topic, eachBatch, onJoin, onSkipped, onCrash } = this.options
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: SESSION_TIMEOUT_MS,
      rebalanceTimeout: REBALANCE_TIMEOUT_MS,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      maxWaitTimeInMs: MAX_WAIT_MS,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      ...(this.options.partitionAssigners === undefined ? {} : { partitionAssigners: [...this.options.partitionAssigners] }),
      retry: { ...CONSUMER_RETRY, restartOnFailure: async () => false }
    })
    this.consumer = consumer
    const current = () => this.consumer === consumer && !this.stopped
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      if (!current()) return
      this.failures = 0
      onJoin(event.payload.memberAssignment[topic] ?? [], event.payload.memberId)
    })
    if (onSkipped !== undefined)
      consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
        const { batchSize, partition, firstOffset, lastOffset } = event.payload
        if (!current() || batchSize !== 0 || firstOffset === null || firstOffset === undefined) return
        onSkipped(partition, Number(firstOffset), Number(lastOffset))
      })
    consumer.on(consumer.events.CRASH, (event) => {
      if (!current()) return
      onCrash(event.payload.error)
      this.scheduleRestart(consumer)
    })
    try {
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 16,
        eachBatch: async (payload) => {
          if (!current()) return
          await eachBatch(payload)
        }
      })
    } catch (error) {
      if (!current()) return
      onCrash(error)
      this.scheduleRestart(consumer)
    }
  }

  private scheduleRestart(dead: Consumer): void {
    if (this.stopped || this.consumer !== dead) return
    this.consumer = undefined
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.failures++)
    void dead.disconnect().catch(() => undefined)
    clearTimeout(this.restartTimer)
    this.restartTimer = setTimeout(() => {
      this.launching = this.launch()
    }, delay)
  }
}
