/**
 * Throughput of one queue over the recent past: how many jobs were added, completed, failed
 * and retried in each fixed bucket of time, from the events' own times.
 *
 * Invariants:
 * - Memory is fixed: `buckets` counters per kind, whatever the rate or the history; an event
 *   older than the window is dropped, one in the future (clock skew between machines) counts
 *   in the newest bucket.
 * - Bucket boundaries are multiples of `bucketMs` since the epoch, so two readers agree on
 *   them and a chart does not shift between two polls.
 * - Pure: the caller says what time it is (`now`), nothing here reads a clock.
 */

/** What a bucket counts. */
export type SeriesKind = "added" | "completed" | "failed" | "retried"

export const SERIES_KINDS: ReadonlyArray<SeriesKind> = ["added", "completed", "failed", "retried"]

/** A window as sent to the dashboard: bucket `i` starts at `start + i * bucketMs`. */
export interface SeriesSnapshot {
  readonly start: number
  readonly bucketMs: number
  readonly counts: { readonly [K in SeriesKind]: ReadonlyArray<number> }
}

/** The event tags each kind counts (a JobStalled that fails the job counts as failed: see `kindOf`). */
export const kindOf = (tag: string, failedForGood: boolean): SeriesKind | undefined => {
  switch (tag) {
    case "JobAdded":
      return "added"
    case "JobCompleted":
      return "completed"
    case "JobFailed":
      return "failed"
    case "JobStalled":
      return failedForGood ? "failed" : undefined
    case "JobRetrying":
    case "JobRetried":
      return "retried"
    default:
      return undefined
  }
}

export class ThroughputSeries {
  private readonly counts: Record<SeriesKind, Float64Array>
  /** The bucket number (time / bucketMs) of slot `newest`. */
  private newestBucket: number
  private newest = 0

  constructor(
    readonly bucketMs: number,
    readonly buckets: number,
    now: number
  ) {
    if (!(bucketMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new Error("a series needs bucketMs > 0 and buckets ≥ 1")
    this.counts = { added: new Float64Array(buckets), completed: new Float64Array(buckets), failed: new Float64Array(buckets), retried: new Float64Array(buckets) }
    this.newestBucket = Math.floor(now / bucketMs)
  }

  /** Counts one event of `kind` that happened at `time`, as seen at `now`. */
  record(kind: SeriesKind, time: number, now: number): void {
    this.advance(now)
    const bucket = Math.min(Math.floor(time / this.bucketMs), this.newestBucket)
    const age = this.newestBucket - bucket
    if (age >= this.buckets) return
    this.counts[kind][(this.newest - age + this.buckets) % this.buckets]! += 1
  }

  /** The window ending with the bucket that holds `now`, oldest bucket first. */
  snapshot(now: number): SeriesSnapshot {
    this.advance(now)
    const ordered = (a: Float64Array) => Array.from({ length: this.buckets }, (_, i) => a[(this.newest + 1 + i) % this.buckets]!)
    return {
      start: (this.newestBucket - this.buckets + 1) * this.bucketMs,
      bucketMs: this.bucketMs,
      counts: { added: ordered(this.counts.added), completed: ordered(this.counts.completed), failed: ordered(this.counts.failed), retried: ordered(this.counts.retried) }
    }
  }

  /** Moves the newest slot up to the bucket of `now`, clearing the slots it passes. */
  private advance(now: number): void {
    const bucket = Math.floor(now / this.bucketMs)
    if (bucket <= this.newestBucket) return
    const steps = Math.min(bucket - this.newestBucket, this.buckets)
    for (let i = 0; i < steps; i++) {
      this.newest = (this.newest + 1) % this.buckets
      for (const kind of SERIES_KINDS) this.counts[kind][this.newest] = 0
    }
    this.newestBucket = bucket
  }
}
