/**
 * A fast path for decoding envelopes, beside the Schemas of `schema.ts` (not instead of them).
 *
 * Why: every record read from a log is decoded, and Schema's general interpreter costs a
 * few µs per envelope (measured: the largest share of a replay's CPU, and the bulk of
 * garbage in a drain). The envelopes on the hot path have a handful of fixed shapes, so a
 * direct check of those shapes is several times cheaper.
 *
 * Invariant (soundness): for a value produced by `JSON.parse`, `fastCommandEnvelope(x)` is
 * either `undefined` or equal — same fields, same key order, same `data`/`result` reference —
 * to the Right of `Schema.decodeUnknownEither(CommandEnvelope)(x)`; likewise for events.
 * It answers `undefined` for anything invalid *or merely unusual* (an optional key holding
 * `undefined`, a `__proto__` key in metadata, a non-plain object…); the caller then
 * decodes with Schema, which stays the definition of a valid envelope and gives the reason
 * for a refusal. `test/envelope-fast.unit.test.ts` checks this against Schema on random
 * valid and corrupted envelopes, and that the fast path is taken for every valid one of the
 * hot shapes. Rarer shapes are left to Schema on purpose: a job's own retention (`keep`), a
 * job added by a schedule (`schedule`), a JobRetried carrying the job it brings back, and
 * every other tag (progress, removal, cancellation, schedules, their commands).
 */
import { ENVELOPE_VERSION, type AddJob, type CommandEnvelope, type EventEnvelope, type JobAdded, type JobError } from "./schema.ts"

type Fields = Record<string, unknown>

// Own-key checks only: Schema would also accept inherited keys, which we leave to it.
const has = (o: Fields, key: string): boolean => Object.hasOwn(o, key)

/** A plain object as JSON.parse makes them (arrays and exotic prototypes are left to Schema). */
const isPlain = (u: unknown): u is Fields =>
  typeof u === "object" && u !== null && Object.getPrototypeOf(u) === Object.prototype

// The refinements of schema.ts, restated as predicates (the property test holds them equal).
const QUEUE_NAME = /^[A-Za-z0-9._-]{1,200}$/
const isMillis = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u) && u >= 0
const isCount = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 0
const isFiniteNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)
const isBoundedString = (u: unknown): u is string => typeof u === "string" && u.length >= 1 && u.length <= 256
/** The last name that passed: a log holds one queue's records, so nearly every check is a string compare. */
let lastQueueName = ""
const isQueueName = (u: unknown): u is string => {
  if (u === lastQueueName) return lastQueueName !== ""
  if (typeof u !== "string" || !QUEUE_NAME.test(u)) return false
  lastQueueName = u
  return true
}
const isTimeout = (u: unknown): u is number => typeof u === "number" && Number.isInteger(u) && u >= 1 && u <= 2_147_483_647
const isTrue = (u: unknown): u is true => u === true

/** Sentinel of the optional-field readers: the field is there but not decodable here. */
const BAD = Symbol("bad")

/** An optional field: absent → `undefined`, valid → its value, anything else → BAD. */
const optional = <A>(o: Fields, key: string, valid: (u: unknown) => u is A): A | undefined | typeof BAD => {
  if (!has(o, key)) return undefined
  const value = o[key]
  return valid(value) ? value : BAD
}

/** A trace context `{ traceparent, tracestate? }`: absent → `undefined`, valid → a copy in schema order, else BAD. */
const traceOf = (o: Fields): Fields | undefined | typeof BAD => {
  if (!has(o, "trace")) return undefined
  const t = o.trace
  if (!isPlain(t) || typeof t.traceparent !== "string" || t.traceparent.length < 1 || t.traceparent.length > 128) return BAD
  const tracestate = optional(t, "tracestate", (u): u is string => typeof u === "string" && u.length <= 512)
  if (tracestate === BAD) return BAD
  return withOptionals<Fields>({ traceparent: t.traceparent }, { tracestate })
}

/** Schema's Record(String, Unknown) makes a copy with the same keys in the same order. */
const metadataOf = (o: Fields): Fields | undefined | typeof BAD => {
  if (!has(o, "metadata")) return undefined
  const m = o.metadata
  if (!isPlain(m) || has(m, "__proto__")) return BAD
  const copy: Fields = {}
  for (const key of Object.keys(m)) copy[key] = m[key]
  return copy
}

/**
 * `body` with the optional fields that are present appended in the order given, which is the
 * schema's order (Schema's output omits absent optional keys and orders the rest so).
 */
const withOptionals = <B extends object>(body: B, optionals: Readonly<Record<string, unknown>>): B => {
  for (const key in optionals) if (optionals[key] !== undefined) (body as Fields)[key] = optionals[key]
  return body
}

/** The header every envelope shares, checked; `undefined` when it is not plainly valid. */
const header = (u: unknown): Fields | undefined => {
  if (!isPlain(u) || u.v !== ENVELOPE_VERSION || !has(u, "v")) return undefined
  if (!isQueueName(u.queue) || !isMillis(u.time) || !has(u, "jobId")) return undefined
  const jobId = u.jobId
  if (jobId !== null && !isBoundedString(jobId)) return undefined
  return isPlain(u.body) && typeof u.body._tag === "string" ? u : undefined
}

// ---------------------------------------------------------------- commands

const addJob = (b: Fields): CommandEnvelope["body"] | undefined => {
  // `data` is Unknown: Schema keeps whatever is there, `undefined` when the key is missing
  if (!isBoundedString(b.name) || !isFiniteNumber(b.priority) || !isMillis(b.delay)) return undefined
  if (has(b, "keep") || has(b, "schedule")) return undefined // rare: left to Schema
  const metadata = metadataOf(b)
  const timeout = optional(b, "timeout", isTimeout)
  const idempotent = optional(b, "idempotent", isTrue)
  const trace = traceOf(b)
  if (metadata === BAD || timeout === BAD || idempotent === BAD || trace === BAD) return undefined
  return withOptionals<AddJob>(
    { _tag: "AddJob", name: b.name, data: b.data, priority: b.priority, delay: b.delay },
    { metadata, timeout, idempotent, trace }
  )
}

const RETRY_JOB = { _tag: "RetryJob" } as const
const PAUSE_QUEUE = { _tag: "PauseQueue" } as const
const RESUME_QUEUE = { _tag: "ResumeQueue" } as const

const commandBody = (b: Fields): CommandEnvelope["body"] | undefined => {
  switch (b._tag) {
    case "AddJob":
      return addJob(b)
    case "RetryJob":
      return { ...RETRY_JOB }
    case "PauseQueue":
      return { ...PAUSE_QUEUE }
    case "ResumeQueue":
      return { ...RESUME_QUEUE }
    default:
      return undefined
  }
}

/** The decoded command, or `undefined`: decode with Schema instead (see the invariant above). */
export const fastCommandEnvelope = (u: unknown): CommandEnvelope | undefined => {
  const h = header(u)
  if (h === undefined) return undefined
  const body = commandBody(h.body as Fields)
  if (body === undefined) return undefined
  return { v: ENVELOPE_VERSION, queue: h.queue as string, jobId: h.jobId as string | null, time: h.time as number, body }
}

// ---------------------------------------------------------------- events

const isString = (u: unknown): u is string => typeof u === "string"

const jobError = (u: unknown): JobError | undefined => {
  if (!isPlain(u) || typeof u.message !== "string") return undefined
  const name = optional(u, "name", isString)
  const stack = optional(u, "stack", isString)
  if (name === BAD || stack === BAD) return undefined
  return withOptionals<JobError>({ message: u.message }, { name, stack })
}

const jobAdded = (b: Fields): EventEnvelope["body"] | undefined => {
  if (!isBoundedString(b.name) || !isFiniteNumber(b.priority) || !isMillis(b.runAt)) return undefined
  if (!isCount(b.maxAttempts) || typeof b.queuePaused !== "boolean") return undefined
  if (has(b, "keep") || has(b, "schedule")) return undefined // rare: left to Schema
  const metadata = metadataOf(b)
  const createdAt = optional(b, "createdAt", isMillis)
  const timeout = optional(b, "timeout", isTimeout)
  const trace = traceOf(b)
  if (metadata === BAD || createdAt === BAD || timeout === BAD || trace === BAD) return undefined
  const required = {
    _tag: "JobAdded" as const,
    name: b.name,
    data: b.data,
    priority: b.priority,
    runAt: b.runAt,
    maxAttempts: b.maxAttempts,
    queuePaused: b.queuePaused
  }
  return withOptionals<JobAdded>(required, { metadata, createdAt, timeout, trace })
}

const eventBody = (b: Fields): EventEnvelope["body"] | undefined => {
  switch (b._tag) {
    case "JobAdded":
      return jobAdded(b)
    case "JobStarted":
      return isCount(b.attempt) ? { _tag: "JobStarted", attempt: b.attempt } : undefined
    case "JobCompleted":
      return { _tag: "JobCompleted", result: b.result } // Unknown, like `data` above
    case "JobRetrying": {
      const error = jobError(b.error)
      if (error === undefined || !isCount(b.attempt) || b.attempt <= 0 || !isMillis(b.delay) || !isMillis(b.runAt)) return undefined
      return { _tag: "JobRetrying", error, attempt: b.attempt, delay: b.delay, runAt: b.runAt }
    }
    case "JobFailed": {
      const error = jobError(b.error)
      return error === undefined ? undefined : { _tag: "JobFailed", error }
    }
    case "JobRetried":
      return has(b, "job") ? undefined : { _tag: "JobRetried" } // carrying its job: rare, left to Schema
    case "JobPromoted":
    case "JobStalled":
    case "QueuePaused":
    case "QueueResumed":
      return { _tag: b._tag }
    default:
      return undefined
  }
}

/** The decoded event, or `undefined`: decode with Schema instead (see the invariant above). */
export const fastEventEnvelope = (u: unknown): EventEnvelope | undefined => {
  const h = header(u)
  if (h === undefined || !isCount(h.seq)) return undefined
  const body = eventBody(h.body as Fields)
  if (body === undefined) return undefined
  return { v: ENVELOPE_VERSION, queue: h.queue as string, jobId: h.jobId as string | null, time: h.time as number, seq: h.seq, body }
}
