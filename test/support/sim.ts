/**
 * A tiny engine stand-in for property tests: turns a list of random choices into a legal
 * event log (every event accepted by the job machine, seqs without gaps), as an owner
 * would append it. Pure and deterministic in its choices.
 */
import fc from "fast-check"
import { beginJob, stepJob, type JobLife } from "../../machines/job-machine.ts"
import { ENVELOPE_VERSION, type EventBody, type EventEnvelope, type JobAdded, type JobEventBody, type QueueEventBody, type RetriedJob } from "../../machines/schema.ts"

export const QUEUE = "emails"
const ERR = { name: "Error", message: "boom" }

/** A JobAdded body with defaults. */
export const added = (over: Partial<JobAdded> = {}): JobAdded => ({
  _tag: "JobAdded",
  name: "send",
  data: { to: "a@b.c" },
  priority: 0,
  runAt: 0,
  maxAttempts: 2,
  queuePaused: false,
  ...over
})

/** An envelope for `body`. */
export const envelope = (jobId: string | null, seq: number, body: EventBody, time = 1000 + seq): EventEnvelope => ({
  v: ENVELOPE_VERSION,
  queue: QUEUE,
  jobId,
  time,
  seq,
  body
})

/** Events worth trying on a job with `life`: the likely next ones and a few near misses. */
export function candidates(life: JobLife, time: number): ReadonlyArray<JobEventBody | QueueEventBody> {
  const a = life.attemptsMade
  return [
    { _tag: "JobStarted", attempt: a },
    { _tag: "JobCompleted", result: { ok: a } },
    { _tag: "JobRetrying", error: ERR, attempt: a + 1, delay: 10, runAt: time + 10 },
    { _tag: "JobFailed", error: ERR },
    { _tag: "JobStalled" },
    { _tag: "JobPromoted" },
    { _tag: "JobRetried" },
    { _tag: "JobProgress", value: { at: time } },
    { _tag: "JobCancelled", error: { name: "CancelledError", message: "cancelled" } },
    { _tag: "JobRemoved", from: life.state },
    { _tag: "QueuePaused" },
    { _tag: "QueueResumed" },
    { _tag: "JobStarted", attempt: a + 1 },
    { _tag: "JobRetrying", error: ERR, attempt: a, delay: 5, runAt: time + 5 },
    added()
  ]
}

/** One random step: which job (or the queue) and which candidate event. */
export interface Choice {
  readonly job: number
  readonly pick: number
  readonly delayed: boolean
  /** 0 toggles the queue's pause instead (one choice in ten). */
  readonly toggle: number
}
export const choiceArb = (jobs = 8): fc.Arbitrary<Choice> => fc.record({ job: fc.nat(jobs - 1), pick: fc.nat(), delayed: fc.boolean(), toggle: fc.nat(9) })

/**
 * A legal log from choices: a toggle pauses or resumes the queue; a new job gets JobAdded
 * (job k may retry k % 3 times); an existing one the picked candidate if the machine accepts
 * it, else the next accepted job event candidate.
 */
export function simulate(choices: ReadonlyArray<Choice>, removals = true): Array<EventEnvelope> {
  const jobs = new Map<string, { life: JobLife; seq: number; added: JobAdded }>()
  const log: Array<EventEnvelope> = []
  let paused = false
  let queueSeq = -1
  let time = 1000
  for (const c of choices) {
    time += 1
    if (c.toggle === 0) {
      paused = !paused
      log.push(envelope(null, ++queueSeq, { _tag: paused ? "QueuePaused" : "QueueResumed" }, time))
      continue
    }
    const id = `job-${c.job}`
    const job = jobs.get(id)
    if (job === undefined) {
      const body = added({ runAt: c.delayed ? time + 50 : time, queuePaused: paused, maxAttempts: c.job % 3, priority: c.job % 2, createdAt: time })
      jobs.set(id, { life: beginJob(body, time).life, seq: 0, added: body })
      log.push(envelope(id, 0, body, time))
      continue
    }
    const life = sync(job.life, paused)
    // removal is legal almost everywhere: offered in one step out of eight, or runs stay shallow
    const options = candidates(life, time).filter(
      (b): b is JobEventBody => b._tag !== "QueuePaused" && b._tag !== "QueueResumed" && (b._tag !== "JobRemoved" || (removals && c.pick % 8 === 0))
    )
    for (let k = 0; k < options.length; k++) {
      const candidate = options[(c.pick + k) % options.length]!
      // as the engine writes it: a JobRetried carries the failed job it brings back
      const body: JobEventBody = candidate._tag === "JobRetried" && life.state === "failed" ? { _tag: "JobRetried", job: retriedOf(job.added, life) } : candidate
      const step = stepJob(life, body)
      if (!step.ok) continue
      job.life = step.life
      job.seq += 1
      log.push(envelope(id, job.seq, body, time))
      break
    }
  }
  return log
}

const retriedOf = (a: JobAdded, life: JobLife): RetriedJob => ({
  name: a.name,
  data: a.data,
  priority: a.priority,
  createdAt: a.createdAt ?? 0,
  runAt: life.runAt,
  maxAttempts: life.maxAttempts,
  stalledCount: life.stalledCount,
  attemptsMade: life.attemptsMade
})

function sync(life: JobLife, paused: boolean): JobLife {
  if (life.queuePaused === paused) return life
  const step = stepJob(life, { _tag: paused ? "QueuePaused" : "QueueResumed" })
  return step.ok ? step.life : life
}

/** A legal log of up to `maxLength` events over at most `jobs` job ids. */
export const logArb = (maxLength = 120, jobs = 8, removals = true): fc.Arbitrary<Array<EventEnvelope>> =>
  fc.array(choiceArb(jobs), { maxLength, size: "max" }).map((choices) => simulate(choices, removals))
