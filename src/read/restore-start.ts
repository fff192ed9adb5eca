/**
 * Where a partition's state starts when an engine or a reader opens it: the latest snapshot
 * it can restore, with the offset the snapshot covers; else a fresh state at the partition's
 * first offset (0) — with the finished jobs an operator pruned from the log already counted,
 * so the counts come out the same either way.
 *
 * A log past its retention (Kafka `?retainMs=`) starts above 0: only a snapshot at or past
 * that start restores the partition whole. Without one the state is rebuilt from what is
 * left, and the loss is reported, never silent.
 */
import { PartitionState } from "../../projections/partition-state.ts"
import type { Retention } from "../../projections/retention.ts"
import type { EventLogService } from "../log/event-log.ts"
import { run } from "../run.ts"

export interface RestoreStart {
  readonly state: PartitionState
  /** The first offset the state has not seen. */
  readonly from: number
}

export const restoreStart = async (
  log: EventLogService,
  topic: string,
  partition: number,
  retention: Retention,
  report: (error: Error) => void
): Promise<RestoreStart> => {
  const snapshot = await run(log.loadSnapshot(topic, partition))
  const first = log.startOffset === undefined ? 0 : await run(log.startOffset(topic, partition))
  if (snapshot !== undefined) {
    const restored = parseSnapshot(snapshot.data, retention)
    if (restored !== undefined && snapshot.offset >= first) return { state: restored, from: snapshot.offset }
    report(
      new Error(
        restored === undefined
          ? `${topic}/${partition}: the snapshot at offset ${snapshot.offset} cannot be restored here; replaying the partition from offset ${first}`
          : `${topic}/${partition}: the snapshot at offset ${snapshot.offset} is older than the log's start (${first}, retention); replaying what is left`
      )
    )
  }
  if (first > 0) report(new Error(`${topic}/${partition}: the log starts at offset ${first} (retention) and no snapshot covers it: jobs added before it are missing here`))
  return { state: await fromOffsetZero(log, topic, partition, retention), from: first }
}

/** A state to apply a partition's events to from offset 0: empty, but for the jobs pruned before them. */
const fromOffsetZero = async (log: EventLogService, topic: string, partition: number, retention: Retention): Promise<PartitionState> => {
  const state = new PartitionState(retention)
  const pruned = log.prunedHistory === undefined ? undefined : await run(log.prunedHistory(topic, partition))
  if (pruned !== undefined) state.countPruned(pruned)
  return state
}

/** A stored snapshot as a state; `undefined` when it is not ours to restore (another version, damaged). */
export const parseSnapshot = (data: string, retention: Retention): PartitionState | undefined => {
  try {
    return PartitionState.fromSnapshot(JSON.parse(data), retention)
  } catch {
    return undefined
  }
}
