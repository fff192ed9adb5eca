/**
 * When a partition's owner writes a snapshot: after enough events, or after enough time
 * with events, whichever comes first — and never more often than the state's size makes
 * worth it.
 *
 * Invariant: the cost of snapshots per event is bounded. A snapshot costs about the size of
 * the state (live jobs plus retained finished ones), so one is taken only after at least
 * `sizeFactor × size` events: serializing never takes more than a fixed share of the work,
 * however many jobs wait, and a restore reads at most one snapshot plus that many events
 * (plus what `ms` lets through on a quiet queue).
 */

/** The cadence's settings. */
export interface SnapshotEvery {
  /** Events after which a snapshot is due (if the state is small enough for it). */
  readonly events: number
  /** Time after which a snapshot is due if any event was written since the last one. */
  readonly ms: number
  /** A snapshot waits for at least this many events per job held. */
  readonly sizeFactor: number
}

/**
 * 10,000 events or 30 s. Measured here on a drain: a snapshot of 1,000 held jobs costs
 * ~2 ms to serialize and write, i.e. ~0.2 µs per event at this cadence.
 */
export const DEFAULT_SNAPSHOT_EVERY: SnapshotEvery = Object.freeze({ events: 10_000, ms: 30_000, sizeFactor: 2 })

/** The default, or `JOBLEDGER_SNAPSHOT_EVERY=<events>` (tests and experiments). */
export const snapshotEveryFromEnv = (env: NodeJS.ProcessEnv = process.env): SnapshotEvery => {
  const events = Number(env.JOBLEDGER_SNAPSHOT_EVERY)
  return Number.isInteger(events) && events > 0 ? { ...DEFAULT_SNAPSHOT_EVERY, events, sizeFactor: 0 } : DEFAULT_SNAPSHOT_EVERY
}

export class SnapshotCadence {
  /** Events appended since the last durable snapshot (or since the restore's snapshot). */
  private since = 0
  /** `since` when the snapshot in flight was taken. */
  private taken = 0
  private lastAt = Date.now()

  constructor(
    private readonly every: SnapshotEvery,
    private readonly now: () => number = Date.now
  ) {}

  /** The restore read `tail` events after its snapshot (all of them without one). */
  restored(tail: number): void {
    this.since = tail
  }

  appended(): void {
    this.since++
  }

  /** Whether to snapshot now, for a state holding `size` jobs; if so, counts it as taken. */
  due(size: number): boolean {
    if (this.since === 0) return false
    const enough = this.since >= Math.max(this.every.events, this.every.sizeFactor * size)
    if (!enough && this.now() - this.lastAt < this.every.ms) return false
    this.taken = this.since
    return true
  }

  /**
   * Whether a stopping owner should write a snapshot, for a state holding `size` jobs: when
   * events were written since the last one and they outnumber the jobs held, so the next
   * owner reads fewer records (a snapshot's views) than the tail it saves.
   */
  dueAtStop(size: number): boolean {
    if (this.since === 0 || this.since < size) return false
    this.taken = this.since
    return true
  }

  /** The snapshot taken last is durable. */
  written(): void {
    this.since -= this.taken
    this.taken = 0
    this.lastAt = this.now()
  }
}
