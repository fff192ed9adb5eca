/**
 * Kafka snapshot records: a state split into chunks and found again from the end of its
 * partition — after later snapshots, behind commit markers, and refused when a chunk is missing.
 */
import { describe, expect, it } from "vitest"
import type { LogRecord } from "../src/log/event-log.ts"
import { readLatestSnapshot, SNAPSHOT_CHUNK_CHARS, snapshotRecords, snapshotsTopicOf } from "../src/log/kafka-snapshots.ts"

/** A partition as a READ_COMMITTED reader sees it: records at their offsets, gaps where markers are. */
const partitionOf = (batches: ReadonlyArray<ReadonlyArray<{ key: string | null; value: string }>>) => {
  const records: Array<LogRecord> = []
  let offset = 0
  for (const batch of batches) {
    for (const r of batch) records.push({ topic: "t", partition: 0, offset: offset++, key: r.key, value: r.value, timestamp: 0 })
    offset++ // the transaction's commit marker
  }
  const reads: Array<[number, number]> = []
  const read = async (from: number, max: number) => {
    reads.push([from, max])
    return records.filter((r) => r.offset >= from && r.offset < from + max)
  }
  return { read, end: offset, reads }
}

describe("Kafka snapshots", () => {
  it("a large state goes out in chunks and comes back whole, the latest of several", async () => {
    const big = "x".repeat(SNAPSHOT_CHUNK_CHARS * 2 + 17)
    const { read, end } = partitionOf([snapshotRecords(0, 10, "old"), snapshotRecords(0, 2_000, big)])
    expect(snapshotRecords(0, 1, big)).toHaveLength(3)
    expect(await readLatestSnapshot(read, end)).toEqual({ offset: 2_000, data: big })
  })

  it("reads only the partition's end, not its history", async () => {
    const many = Array.from({ length: 500 }, (_, i) => snapshotRecords(0, i, `state ${i}`))
    const { read, end, reads } = partitionOf(many)
    expect(await readLatestSnapshot(read, end)).toEqual({ offset: 499, data: "state 499" })
    expect(reads.reduce((n, [, max]) => n + max, 0)).toBeLessThan(20)
  })

  it("skips aborted records and markers at the end (they are not delivered)", async () => {
    const { read, end } = partitionOf([snapshotRecords(0, 7, "kept"), [], [], []])
    expect(await readLatestSnapshot(read, end + 40)).toEqual({ offset: 7, data: "kept" })
  })

  it("a snapshot with a chunk missing, or garbage, is no snapshot (the caller replays)", async () => {
    const chunks = snapshotRecords(0, 5, "y".repeat(SNAPSHOT_CHUNK_CHARS + 1))
    expect((await readLatestSnapshot(partitionOf([[chunks[1]!]]).read, 2))).toBeUndefined()
    expect(await readLatestSnapshot(partitionOf([[{ key: "p0.0", value: "not json" }]]).read, 2)).toBeUndefined()
    expect(await readLatestSnapshot(partitionOf([]).read, 0)).toBeUndefined()
  })

  it("names the snapshots topic after the events topic", () => {
    expect(snapshotsTopicOf("jobledger.email.events")).toBe("jobledger.email.snapshots")
  })
})
