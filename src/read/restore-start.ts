/**
 * Where a partition's state starts when an engine or a reader opens it: the latest snapshot
 * it can restore, with the offset the snapshot covers; else a fresh state at offset 0 — with
 * the finished jobs an operator pruned from the log already counted, so the counts come out
 * the same either way.
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
  if (snapshot !== undefined) {
    const restored = parseSnapshot(snapshot.data, retention)
    if (restored !== undefined) return { state: restored, from: snapshot.offset }
    report(new Error(`${topic}/${partition}: the snapshot at offset ${snapshot.offset} cannot be restored here; replaying the partition from offset 0`))
  }
  return { state: await fromOffsetZero(log, topic, partition, retention), from: 0 }
}

/** A state to apply a partition's events to from offset 0: empty, but for the jobs pruned before them. */
const fromOffsetZero = async (log: EventLogService, topic: string, partition: number, retention: Retention): Promise<PartitionState> => {
  const state = new PartitionState(retention)
  const pruned = log.prunedHistory === undefined ? undefined : await run(log.prunedHistory(topic, partition))
  if (pruned !== undefined) state.countPruned(pruned)
  return state
}

/** A stored snapshot as a state; `undefined` when it is not ours to restore (another version, damaged). */
const parseSnapshot = (data: string, retention: Retention): PartitionState | undefined => {
  try {
    return PartitionState.fromSnapshot(JSON.parse(data), retention)
  } catch {
    return undefined
  }
}
