/**
 * Snapshots on Kafka: a partition's state is written to `jobledger.<queue>.snapshots`
 * (compacted, one partition per events partition) by the partition's owner, inside the
 * transaction that appends the events it covers — so it never runs ahead of the log, and a
 * fenced zombie, whose transactions abort, never writes one.
 *
 * A snapshot is larger than a Kafka record may be (`max.message.bytes`, ~1 MB), so it goes
 * out as chunks, keyed `p<partition>.<i>` (compaction keeps the latest of each), each
 * carrying the snapshot's id, its index and count, and the events offset it covers. The
 * chunks of one snapshot are consecutive in their partition and the last one is written
 * last, so the latest snapshot is read from the partition's end: its last committed record
 * names the chunks before it.
 */
import { randomUUID } from "node:crypto"
import type { LogRecord, OutgoingRecord, StoredSnapshot } from "./event-log.ts"

/** Characters of state per chunk: at most 3 bytes each in UTF-8, well under `max.message.bytes`. */
export const SNAPSHOT_CHUNK_CHARS = 256 * 1024

/** The snapshots topic of an events topic (`jobledger.<q>.events` → `jobledger.<q>.snapshots`). */
export const snapshotsTopicOf = (eventsTopic: string): string => eventsTopic.replace(/\.events$/, ".snapshots")

/** True for the events topic of a queue (its snapshots topic is created with it). */
export const isEventsTopic = (topic: string): boolean => /^jobledger\..+\.events$/.test(topic)

/** The topic settings of a snapshots topic: compacted (only the latest of each chunk stays), rolled often so compaction runs. */
export const SNAPSHOTS_TOPIC_CONFIG = [
  { name: "cleanup.policy", value: "compact" },
  { name: "segment.ms", value: "600000" },
  { name: "min.cleanable.dirty.ratio", value: "0.1" }
]

interface Chunk {
  readonly v: 1
  readonly id: string
  readonly i: number
  readonly n: number
  readonly offset: number
  readonly data: string
}

/** The records of one snapshot of `partition`, covering events before `offset`. */
export const snapshotRecords = (partition: number, offset: number, state: string): Array<OutgoingRecord> => {
  const id = randomUUID()
  const n = Math.max(1, Math.ceil(state.length / SNAPSHOT_CHUNK_CHARS))
  return Array.from({ length: n }, (_, i) => {
    const chunk: Chunk = { v: 1, id, i, n, offset, data: state.slice(i * SNAPSHOT_CHUNK_CHARS, (i + 1) * SNAPSHOT_CHUNK_CHARS) }
    return { key: `p${partition}.${i}`, value: JSON.stringify(chunk), partition }
  })
}

const chunkOf = (record: LogRecord): Chunk | undefined => {
  try {
    const c = JSON.parse(record.value) as Partial<Chunk>
    const whole = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0
    if (c.v !== 1 || typeof c.id !== "string" || !whole(c.i) || !whole(c.n) || c.i >= c.n || !whole(c.offset) || typeof c.data !== "string") return undefined
    return c as Chunk
  } catch {
    return undefined
  }
}

/**
 * The latest snapshot of a snapshots partition whose committed records end at `end`, read
 * from its end with `read(from, max)`; `undefined` when there is none, or when its chunks
 * are not all there (a snapshot is only a shortcut: the caller replays the events instead).
 */
export const readLatestSnapshot = async (
  read: (from: number, max: number) => Promise<ReadonlyArray<LogRecord>>,
  end: number
): Promise<StoredSnapshot | undefined> => {
  // the last committed record: commit markers and aborted records may follow it
  let last: LogRecord | undefined
  for (let window = 8; last === undefined; window *= 4) {
    const from = Math.max(0, end - window)
    const records = await read(from, end - from)
    last = records.at(-1)
    if (from === 0) break
  }
  const head = last === undefined ? undefined : chunkOf(last)
  if (last === undefined || head === undefined || head.i !== head.n - 1 || last.offset < head.n - 1) return undefined
  const earlier = head.n === 1 ? [] : await read(last.offset - (head.n - 1), head.n - 1)
  const chunks = [...earlier.map(chunkOf), head]
  if (chunks.length !== head.n || chunks.some((c, i) => c === undefined || c.id !== head.id || c.i !== i)) return undefined
  return { offset: head.offset, data: chunks.map((c) => c!.data).join("") }
}
