/**
 * `join` on Kafka: a member of the engine's consumer group on the commands topic.
 *
 * kafkajs has no assignment callbacks, so ownership is derived from its GROUP_JOIN event
 * (emitted inside the join, before the first fetch of the generation):
 * - a newly assigned partition is paused at once; then, on its own serial chain: open the
 *   transactional producer (fences a zombie and completes its open transaction), read the
 *   group's committed offset, `await spec.assign(p, offset)`, seek to the offset, resume.
 *   No record of the partition is delivered before `assign` returned.
 * - a partition no longer assigned (or all of them after a crash, or a new member id) is
 *   paused and revoked: `await owner.onRevoked()`, then its producer is closed.
 * - a partition kept across a rebalance is sought back to where delivery stands (kafkajs
 *   would restart it from the committed offset, which lags behind uncommitted deliveries).
 *
 * Partitions are assigned by a sticky assigner (kafka-assigner.ts): a rebalance moves only
 * the partitions of a member that left, or those a new member needs.
 *
 * Records reach `owner.onRecords` in offset order, one batch at a time per partition, and the
 * offset is committed only by `transact` (sendOffsets in the owner's transaction).
 *
 * A transaction refused as a zombie's while the group still gives us the partition (a
 * transaction timed out during an outage, or a stale member fenced us) makes the member
 * take the partition again after a short delay: revoke + assign, which fences in turn.
 */
import kafkajs from "kafkajs"
import type { Admin, EachBatchPayload, Kafka as KafkaClient } from "kafkajs"
import type { GroupSpec, PartitionOwner } from "./event-log.ts"
import { deferred, HEARTBEAT_INTERVAL_MS, Serial, sleep } from "./kafka-client.ts"
import { stickyAssigner } from "./kafka-assigner.ts"
import { ManagedConsumer } from "./kafka-consumer.ts"
import { toLogRecord } from "./kafka-reader.ts"
import type { Transactions, TxnMember } from "./kafka-txn.ts"

const ACQUIRE_RETRY_MIN_MS = 250
const ACQUIRE_RETRY_MAX_MS = 5_000
/** After being fenced while still assigned: give a pending rebalance time to show up first. */
const REFENCE_DELAY_MS = 3 * HEARTBEAT_INTERVAL_MS

interface Ownership {
  readonly partition: number
  readonly token: number
  state: "acquiring" | "active" | "revoked"
  owner: PartitionOwner | undefined
  /** The next offset to deliver. */
  position: number
  /** Resolved when the partition is revoked or fenced: frees a delivery stuck on it. */
  readonly lost: ReturnType<typeof deferred<void>>
  refencing: boolean
}

export interface GroupDeps {
  readonly kafka: KafkaClient
  readonly admin: Admin
  readonly transactions: Transactions
  readonly report: (message: string, error: unknown) => void
}

let tokens = 0

export class GroupMember implements TxnMember {
  private readonly owned = new Map<number, Ownership>()
  private readonly chains = new Map<number, Serial>()
  private readonly consumer: ManagedConsumer
  private memberId: string | undefined
  private stopped = false

  constructor(
    private readonly deps: GroupDeps,
    private readonly spec: GroupSpec
  ) {
    this.consumer = new ManagedConsumer({
      kafka: deps.kafka,
      groupId: spec.group,
      topic: spec.topic,
      eachBatch: (payload) => this.eachBatch(payload),
      onJoin: (partitions, memberId) => this.onJoin(partitions, memberId),
      // Members keep their partitions across rebalances: only those of a member that left move.
      partitionAssigners: [
        stickyAssigner(() => ({ memberId: this.memberId, owned: [...this.owned.keys()] })),
        kafkajs.PartitionAssigners.roundRobin
      ],
      onCrash: (error) => {
        deps.report(`consumer of group ${spec.group} crashed; restarting it`, error)
        this.memberId = undefined
        for (const p of [...this.owned.keys()]) this.revoke(p)
      }
    })
  }

  start(): void {
    this.deps.transactions.registerMember(this.spec.group, this)
    this.consumer.start()
  }

  /** Gives every partition back (owners finish), then leaves the group. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const p of [...this.owned.keys()]) this.revoke(p)
    await Promise.all([...this.chains.values()].map((c) => c.idle()))
    await this.consumer.stop()
    this.deps.transactions.unregisterMember(this.spec.group, this)
  }

  onFenced(partition: number, token: number): void {
    const st = this.owned.get(partition)
    if (st === undefined || st.token !== token || st.state !== "active" || st.refencing || this.stopped) return
    st.refencing = true
    st.lost.resolve()
    this.consumer.pause(partition)
    setTimeout(() => {
      if (this.owned.get(partition) !== st || this.stopped) return
      this.deps.report(`${this.spec.topic} partition ${partition}: fenced while still assigned; taking it again`, undefined)
      this.revoke(partition)
      this.acquire(partition)
    }, REFENCE_DELAY_MS).unref()
  }

  // ---------------------------------------------------------------- assignment

  private chain(partition: number): Serial {
    let chain = this.chains.get(partition)
    if (chain === undefined) {
      chain = new Serial()
      this.chains.set(partition, chain)
    }
    return chain
  }

  private onJoin(partitions: ReadonlyArray<number>, memberId: string): void {
    if (this.stopped) {
      for (const p of partitions) this.consumer.pause(p)
      return
    }
    const fresh = memberId !== this.memberId
    this.memberId = memberId
    const assigned = new Set(partitions)
    for (const p of [...this.owned.keys()]) if (fresh || !assigned.has(p)) this.revoke(p)
    for (const p of partitions) {
      const st = this.owned.get(p)
      if (st === undefined) {
        this.consumer.pause(p)
        this.acquire(p)
      } else if (st.state === "acquiring") {
        this.consumer.pause(p)
      } else {
        this.consumer.seek(p, st.position)
        this.consumer.resume(p)
      }
    }
  }

  private acquire(partition: number): void {
    const st: Ownership = {
      partition,
      token: ++tokens,
      state: "acquiring",
      owner: undefined,
      position: 0,
      lost: deferred<void>(),
      refencing: false
    }
    this.owned.set(partition, st)
    this.consumer.pause(partition)
    const { transactions } = this.deps
    const { group, topic } = this.spec
    const current = () => this.owned.get(partition) === st && !this.stopped
    void this.chain(partition).run(async () => {
      for (let failures = 0; current(); failures++) {
        try {
          await transactions.open(group, partition, st.token)
          if (!current()) return
          const from = await this.committedOffset(partition)
          if (!current()) return
          st.owner = await this.spec.assign(partition, from)
          // If revoked meanwhile, the revoke queued behind us calls onRevoked.
          if (!current()) return
          st.position = from
          st.state = "active"
          this.consumer.seek(partition, from)
          this.consumer.resume(partition)
          return
        } catch (error) {
          this.deps.report(`taking ${topic} partition ${partition} for group ${group} failed; retrying`, error)
          if (st.owner !== undefined) {
            const owner = st.owner
            st.owner = undefined
            await owner.onRevoked().catch(() => undefined)
          }
          await sleep(Math.min(ACQUIRE_RETRY_MAX_MS, ACQUIRE_RETRY_MIN_MS * 2 ** failures))
        }
      }
    })
  }

  private revoke(partition: number): void {
    const st = this.owned.get(partition)
    if (st === undefined) return
    this.owned.delete(partition)
    st.state = "revoked"
    st.lost.resolve()
    this.consumer.pause(partition)
    void this.chain(partition).run(async () => {
      const owner = st.owner
      st.owner = undefined
      if (owner !== undefined) {
        try {
          await owner.onRevoked()
        } catch (error) {
          this.deps.report(`revoking ${this.spec.topic} partition ${partition}: the owner failed`, error)
        }
      }
      await this.deps.transactions.close(this.spec.group, partition, st.token)
    })
  }

  /** The group's committed offset; without one, the first offset still in the log. */
  private async committedOffset(partition: number): Promise<number> {
    const { admin } = this.deps
    const { group, topic } = this.spec
    const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    const found = entry?.partitions.find((p) => p.partition === partition)
    const offset = found === undefined ? -1 : Number(found.offset)
    if (offset >= 0) return offset
    const offsets = await admin.fetchTopicOffsets(topic)
    const low = offsets.find((o) => o.partition === partition)?.low
    return low === undefined ? 0 : Math.max(0, Number(low))
  }

  // ---------------------------------------------------------------- delivery

  private async eachBatch({ batch, resolveOffset, heartbeat, isStale }: EachBatchPayload): Promise<void> {
    const partition = batch.partition
    const st = this.owned.get(partition)
    if (st === undefined || st.state !== "active" || st.owner === undefined) {
      this.consumer.pause(partition)
      return
    }
    if (isStale()) return
    const fresh = batch.messages.filter((m) => Number(m.offset) >= st.position)
    if (fresh.length > 0) {
      const records = fresh.map((m) => toLogRecord(batch.topic, partition, m))
      // onRecords resolves when the commands' effects are durable; a fenced or revoked owner
      // may never get there, so losing the partition also ends the wait.
      try {
        await Promise.race([st.owner.onRecords(records), st.lost.promise])
      } catch (error) {
        // Not known to be handled: deliver the batch again (at least once), after a pause.
        this.deps.report(`${this.spec.topic} partition ${partition}: the owner failed on a batch; redelivering`, error)
        await sleep(1_000)
        if (this.owned.get(partition) === st) this.consumer.seek(partition, st.position)
        return
      }
    }
    if (this.owned.get(partition) !== st || st.state !== "active" || st.refencing) return
    st.position = Math.max(st.position, Number(batch.lastOffset()) + 1)
    resolveOffset(batch.lastOffset())
    await heartbeat()
  }
}
