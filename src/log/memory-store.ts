/**
 * LocalStore in process memory, for tests and throw-away runs. Nothing survives the process.
 */
import type { LogRecord, OutgoingRecord, TransactUnit } from "./event-log.ts"
import { type LocalStore, type PendingAppend, partitionForKey } from "./local-store.ts"

/** The index slot of a key; records without one share the topic's `\u0001` slot (no key string can be it). */
const keySlot = (topic: string, key: string | null) => (key === null ? `${topic}\u0001` : `${topic}\u0000${key}`)

export const openMemoryStore = (): LocalStore => {
  const topics = new Map<string, Array<Array<LogRecord>>>()
  const offsets = new Map<string, number>()
  const leases = new Map<string, { owner: string; pid: number; expires: number }>()
  const snapshots = new Map<string, { offset: number; data: string }>()
  /** Records by topic and key, in offset order (the memory log holds all of them anyway). */
  const byKey = new Map<string, Array<LogRecord>>()
  let version = 0

  const partitionsOf = (topic: string): Array<Array<LogRecord>> => {
    const parts = topics.get(topic)
    if (parts === undefined) throw new Error(`topic ${topic} does not exist`)
    return parts
  }

  const appendOne = (topic: string, r: OutgoingRecord, partition: number | undefined, now: number) => {
    const { key, value } = r
    const parts = partitionsOf(topic)
    const p = partition ?? partitionForKey(key, parts.length)
    const log = parts[p]
    if (log === undefined) throw new Error(`topic ${topic} has no partition ${p}`)
    const record: LogRecord = { topic, partition: p, offset: log.length, key, value, timestamp: now }
    log.push(record)
    {
      const slot = keySlot(topic, key)
      const same = byKey.get(slot)
      if (same === undefined) byKey.set(slot, [record])
      else same.push(record)
    }
    return r.parsed === undefined ? record : { ...record, parsed: r.parsed, decided: r.decided }
  }

  const appendAll = (appends: ReadonlyArray<PendingAppend>, now: number) => {
    const out: Array<LogRecord> = []
    for (const a of appends) for (const r of a.records) out.push(appendOne(a.topic, r, r.partition, now))
    version++
    return out
  }

  return {
    ensureTopic: (topic, partitions) => {
      const existing = topics.get(topic)
      if (existing !== undefined) return existing.length
      topics.set(topic, Array.from({ length: partitions }, () => []))
      return partitions
    },
    partitionCount: (topic) => topics.get(topic)?.length,
    listTopics: () => [...topics.keys()].sort(),
    appendAll,
    read: (topic, partition, from, max) => (partitionsOf(topic)[partition] ?? []).slice(from, from + max),
    endOffset: (topic, partition) => (partitionsOf(topic)[partition] ?? []).length,
    committed: (group, topic, partition) => offsets.get(`${group}\u0000${topic}\u0000${partition}`) ?? 0,
    transact: (unit: TransactUnit, owner, now) => {
      const lease = leases.get(unit.group)
      if (lease === undefined || lease.owner !== owner) return "fenced"
      const out: Array<LogRecord> = []
      for (const r of unit.events) out.push(appendOne(unit.eventsTopic, r, unit.partition, now))
      if (unit.deadLetters !== undefined && unit.deadLetterTopic !== undefined)
        for (const r of unit.deadLetters) out.push(appendOne(unit.deadLetterTopic, r, r.partition, now))
      if (unit.commands !== undefined && unit.commandsTopic !== undefined)
        for (const r of unit.commands) out.push(appendOne(unit.commandsTopic, r, r.partition, now))
      if (unit.commit !== undefined)
        offsets.set(`${unit.group}\u0000${unit.commit.topic}\u0000${unit.partition}`, unit.commit.offset)
      if (unit.snapshot !== undefined)
        snapshots.set(`${unit.eventsTopic}\u0000${unit.partition}`, { offset: (partitionsOf(unit.eventsTopic)[unit.partition] ?? []).length, data: unit.snapshot })
      version++
      return out
    },
    acquireLease: (group, owner, pid, ttlMs, now) => {
      const lease = leases.get(group)
      if (lease !== undefined && lease.owner !== owner && lease.expires > now) return false
      leases.set(group, { owner, pid, expires: now + ttlMs })
      return true
    },
    releaseLease: (group, owner) => {
      if (leases.get(group)?.owner === owner) leases.delete(group)
    },
    readByKey: (topic, key) => {
      const records = byKey.get(keySlot(topic, key)) ?? []
      return [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset)
    },
    dataVersion: () => version,
    loadSnapshot: (topic, partition) => snapshots.get(`${topic}\u0000${partition}`),
    close: () => {}
  }
}
