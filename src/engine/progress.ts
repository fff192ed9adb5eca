/**
 * Progress reports of running jobs, coalesced: at most one JobProgress per job per
 * `intervalMs`, the last value wins. A report made within the interval waits for it to end;
 * a job's pending report is written before its outcome (`flushNow`), so the last value a
 * handler reported is in the log.
 *
 * Invariant: every promise `report` returns settles — when its value (or a later one of the
 * same job) is handed to the log (decided, in the next commit), or when the job ends
 * without it (`drop`). Waiting for durability could leave it pending for good (a fenced owner).
 */
interface Pending {
  value: unknown
  timer: NodeJS.Timeout | undefined
  lastWrite: number
  readonly waiters: Array<() => void>
}

export class ProgressCoalescer {
  private readonly jobs = new Map<string, Pending>()

  constructor(
    /** Decides one progress event (a job no longer running refuses it: nothing is written). */
    private readonly write: (jobId: string, value: unknown) => void,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now
  ) {}

  /** Records the job's latest progress; resolves once it (or a later value) is written. */
  report(jobId: string, value: unknown): Promise<void> {
    let p = this.jobs.get(jobId)
    if (p === undefined) {
      p = { value, timer: undefined, lastWrite: -Infinity, waiters: [] }
      this.jobs.set(jobId, p)
    }
    p.value = value
    const done = new Promise<void>((resolve) => p.waiters.push(resolve))
    const wait = p.lastWrite + this.intervalMs - this.now()
    if (wait <= 0) this.flushNow(jobId)
    else if (p.timer === undefined) {
      const entry = p
      p.timer = setTimeout(() => {
        entry.timer = undefined
        this.flushNow(jobId)
      }, wait)
    }
    return done
  }

  /** Writes the job's pending value now, if it has one (before its outcome is decided). */
  flushNow(jobId: string): void {
    const p = this.jobs.get(jobId)
    if (p === undefined || p.waiters.length === 0) return
    clearTimeout(p.timer)
    p.timer = undefined
    p.lastWrite = this.now()
    const waiters = p.waiters.splice(0)
    try {
      this.write(jobId, p.value)
    } finally {
      for (const w of waiters) w()
    }
  }

  /** The job ended: forget it; reports not yet written settle unwritten. */
  drop(jobId: string): void {
    const p = this.jobs.get(jobId)
    if (p === undefined) return
    clearTimeout(p.timer)
    this.jobs.delete(jobId)
    for (const w of p.waiters.splice(0)) w()
  }
}
