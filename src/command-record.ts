/**
 * A producer's command as a record for the log: encoded once, checked against what the
 * engine would refuse, and carrying its decoded form for readers in this process.
 *
 * Invariants:
 * - What this returns, every process decodes the same: in-process readers take `parsed`
 *   (the JSON round trip of the command), never the caller's live objects.
 * - A command the engine would dead-letter (too large for its event, too deep to re-encode,
 *   data JSON drops) is refused here with an InvalidOptionError saying why.
 */
import { startStateOf } from "../machines/job-machine.ts"
import { ENVELOPE_VERSION, type AddJob, type CommandBody, type CommandEnvelope, type TraceContext } from "../machines/schema.ts"
import { MAX_JSON_DEPTH, MAX_RECORD_BYTES, encode, jsonTooDeep } from "./codec.ts"
import type { OutgoingRecord } from "./log/event-log.ts"
import { InvalidOptionError, type ResolvedJobInput } from "./options.ts"
import type { Job } from "./types.ts"

/** The largest encoded AddJob: half a log record, so its JobAdded event always fits in one. */
const MAX_COMMAND_CHARS = MAX_RECORD_BYTES / 2

/** The record of one command of `queue`; throws InvalidOptionError for data the log cannot carry. */
export const commandRecord = (
  queue: string,
  key: string | null,
  body: CommandBody,
  jobId: string | null,
  partition?: number,
  time = Date.now()
): OutgoingRecord => {
  const envelope: CommandEnvelope = { v: ENVELOPE_VERSION, queue, jobId, time, body }
  let value: string
  try {
    value = encode(envelope)
  } catch (e) {
    throw new InvalidOptionError(`job data cannot be serialized to JSON: ${(e as Error).message}`)
  }
  // The engine refuses (dead-letters) records it cannot decode: refuse them here instead,
  // with room left for the event that will carry the same data (JobAdded).
  if (value.length > MAX_COMMAND_CHARS)
    throw new InvalidOptionError(`job is ${value.length} characters of JSON; the limit is ${MAX_COMMAND_CHARS} (keep big payloads elsewhere and pass a reference)`)
  if (jsonTooDeep(value)) throw new InvalidOptionError(`job data is nested deeper than ${MAX_JSON_DEPTH} levels`)
  // commands with user data are parsed back: readers here must see what others decode
  const parsed = body._tag === "AddJob" || body._tag === "UpsertSchedule" ? (JSON.parse(value) as CommandEnvelope) : envelope
  if (parsed.body._tag === "AddJob" && !("data" in parsed.body))
    throw new InvalidOptionError("job data cannot be serialized to JSON: it serializes to nothing (a toJSON returning undefined?)")
  return partition === undefined ? { key, value, parsed } : { key, value, partition, parsed }
}

/**
 * The AddJob record of one checked `add` input, and the job as the engine will create it:
 * its data as the log carries it (JSON: a Date is a string, a Map is {}, later mutations of
 * the caller's object change nothing), in the state the machine starts it in.
 */
export const addJobRecord = (
  queue: string,
  input: ResolvedJobInput,
  id: string,
  now: number,
  maxAttempts: number,
  queuePaused: boolean,
  /** The trace context active at the `add` (see engine/tracing.ts). */
  trace: TraceContext | undefined
): { readonly record: OutgoingRecord; readonly job: Job } => {
  const body: AddJob = {
    _tag: "AddJob",
    name: input.name,
    data: input.data,
    priority: input.priority,
    delay: input.delay,
    ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
    ...(input.timeout === undefined ? {} : { timeout: input.timeout }),
    ...(input.jobId === undefined ? {} : { idempotent: true as const }),
    ...(input.keep === undefined ? {} : { keep: input.keep }),
    ...(trace === undefined ? {} : { trace })
  }
  const record = commandRecord(queue, id, body, id, undefined, now)
  const carried = (record.parsed as CommandEnvelope).body as AddJob
  const job: Job = {
    id,
    name: input.name,
    data: carried.data,
    state: startStateOf({ runAt: now + input.delay, queuePaused }, now),
    attemptsMade: 0,
    maxAttempts,
    priority: input.priority,
    createdAt: now,
    runAt: now + input.delay,
    updatedAt: now,
    ...(carried.metadata === undefined ? {} : { metadata: carried.metadata as Record<string, any> })
  }
  return { record, job }
}
