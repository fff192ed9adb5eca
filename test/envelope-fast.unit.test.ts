/**
 * The envelope fast path against Schema, the definition of a valid envelope:
 * - sound: whenever the fast path answers, Schema accepts the same input and decodes it to
 *   an equal value (same keys in the same order, `data`/`result` passed by reference);
 * - taken: every valid envelope as our writers produce it decodes on the fast path.
 * Inputs are valid envelopes, then corrupted at a random place (a key deleted, a value
 * replaced by an awkward one, an extra key, a `__proto__` in metadata), all through JSON.
 */
import { Either, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { fastCommandEnvelope, fastEventEnvelope } from "../machines/envelope-fast.ts"
import { CommandEnvelope, EventEnvelope } from "../machines/schema.ts"

const RUNS = 3_000

// ------------------------------------------------------------- valid envelopes
const queueName = fc.stringMatching(/^[A-Za-z0-9._-]{1,24}$/)
const jobId = fc.string({ minLength: 1, maxLength: 40 })
const millis = fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e15, noNaN: true }))
const count = fc.nat({ max: 1_000 })
const json = fc.jsonValue({ maxDepth: 3 })
/** Some, all or none of the optional fields. */
const optionalKeys = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) => fc.record(model, { requiredKeys: [] })
const metadata = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__proto__"), json, { maxKeys: 4 })
const timeout = fc.integer({ min: 1, max: 2_147_483_647 })
const trace = fc
  .tuple(fc.string({ minLength: 1, maxLength: 60 }), optionalKeys({ tracestate: fc.string({ maxLength: 40 }) }))
  .map(([traceparent, rest]) => ({ traceparent, ...rest }))
const jobError = fc
  .tuple(fc.string(), optionalKeys({ name: fc.string(), stack: fc.string() }))
  .map(([message, rest]) => ({ message, ...rest }))

const addJob = fc
  .tuple(jobId.map((s) => s.slice(0, 256)), fc.option(json, { nil: undefined }), fc.double({ noNaN: true, noDefaultInfinity: true }), millis)
  .chain(([name, data, priority, delay]) =>
    optionalKeys({ metadata, timeout, idempotent: fc.constant(true), trace }).map((rest) => ({ _tag: "AddJob", name, data, priority, delay, ...rest }))
  )
const commandBody = fc.oneof(addJob, fc.constantFrom({ _tag: "RetryJob" }, { _tag: "PauseQueue" }, { _tag: "ResumeQueue" }))
const commandEnvelope = fc.record({ v: fc.constant(1), queue: queueName, jobId: fc.option(jobId, { nil: null }), time: millis, body: commandBody })

const jobAdded = fc
  .record({ name: jobId, data: fc.option(json, { nil: undefined }), priority: fc.integer(), runAt: millis, maxAttempts: count, queuePaused: fc.boolean() })
  .chain((b) => optionalKeys({ metadata, createdAt: millis, timeout, trace }).map((rest) => ({ _tag: "JobAdded", ...b, ...rest })))
const eventBody = fc.oneof(
  jobAdded,
  count.map((attempt) => ({ _tag: "JobStarted", attempt })),
  fc.option(json, { nil: undefined }).map((result) => ({ _tag: "JobCompleted", result })),
  fc.record({ error: jobError, attempt: fc.integer({ min: 1, max: 50 }), delay: millis, runAt: millis }).map((b) => ({ _tag: "JobRetrying", ...b })),
  jobError.map((error) => ({ _tag: "JobFailed", error })),
  fc.constantFrom("JobPromoted", "JobStalled", "JobRetried", "QueuePaused", "QueueResumed").map((_tag) => ({ _tag }))
)
const eventEnvelope = fc.record({ v: fc.constant(1), queue: queueName, jobId: fc.option(jobId, { nil: null }), time: millis, seq: count, body: eventBody })

// ------------------------------------------------------------- corruptions
const AWKWARD: ReadonlyArray<unknown> = [
  null, true, false, 0, -0, -1, 1.5, 2_147_483_648, 1e308, "", "x", "a".repeat(257), [], {}, [1], { _tag: "AddJob" },
  "JobStarted", "AddJob", 1, 2
]
type Corruption =
  | { kind: "none" }
  | { kind: "delete"; at: number; key: number }
  | { kind: "replace"; at: number; key: number; value: unknown }
  | { kind: "extra"; at: number; name: string; value: unknown }
  | { kind: "proto" }
const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  { arbitrary: fc.constant({ kind: "none" as const }), weight: 2 },
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), key: fc.nat() }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), key: fc.nat(), value: fc.oneof(fc.constantFrom(...AWKWARD), json) }),
  fc.record({ kind: fc.constant("extra" as const), at: fc.nat(), name: fc.constantFrom("x", "seq", "body", "v", "_tag", "error"), value: json }),
  fc.constant({ kind: "proto" as const })
)

/** The objects of an envelope a corruption may touch: itself, its body, the body's error/metadata. */
const nodesOf = (envelope: Record<string, unknown>): Array<Record<string, unknown>> => {
  const nodes = [envelope]
  const body = envelope.body
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>
    nodes.push(b)
    for (const k of ["error", "metadata", "trace"]) if (typeof b[k] === "object" && b[k] !== null && !Array.isArray(b[k])) nodes.push(b[k] as Record<string, unknown>)
  }
  return nodes
}

/** The JSON text of `valid` after the corruption, as a log would hold it. */
const corrupt = (valid: unknown, c: Corruption): string => {
  const text = JSON.stringify(valid)
  if (c.kind === "none") return text
  if (c.kind === "proto") return text.replace(/"metadata":\{(\}?)/, (_, empty) => `"metadata":{"__proto__":{"x":1}${empty === "" ? "," : "}"}`)
  const envelope = JSON.parse(text) as Record<string, unknown>
  const nodes = nodesOf(envelope)
  const node = nodes[c.at % nodes.length]!
  const keys = Object.keys(node)
  if (c.kind === "extra") node[c.name] = c.value
  else if (keys.length > 0) {
    const key = keys[c.key % keys.length]!
    if (c.kind === "delete") delete node[key]
    else node[key] = c.value
  }
  return JSON.stringify(envelope)
}

/** Keys in order, recursively: equal shapes mean equal key order at every level. */
const shape = (u: unknown): unknown =>
  typeof u === "object" && u !== null && !Array.isArray(u)
    ? Object.keys(u).map((k) => [k, shape((u as Record<string, unknown>)[k])])
    : typeof u

const checkAgainstSchema = <A extends { body: object }>(
  text: string,
  fast: (u: unknown) => A | undefined,
  schema: (u: unknown) => Either.Either<A, unknown>,
  mustBeFast: boolean
) => {
  const input: unknown = JSON.parse(text)
  const fastResult = fast(input)
  // Schema may throw on hostile input (e.g. {"toString": null} where it prints the value): a refusal
  let reference: Either.Either<A, unknown>
  try {
    reference = schema(input)
  } catch (e) {
    reference = Either.left(e)
  }
  if (mustBeFast) {
    expect(Either.isRight(reference), `the generator made an invalid envelope: ${text}`).toBe(true)
    expect(fastResult, `valid envelope missed the fast path: ${text}`).toBeDefined()
  }
  if (fastResult === undefined) return
  if (Either.isLeft(reference)) throw new Error(`fast path accepted what Schema refuses: ${text}`)
  expect(fastResult).toStrictEqual(reference.right)
  expect(shape(fastResult)).toEqual(shape(reference.right))
  const body = fastResult.body as Record<string, unknown>
  const refBody = reference.right.body as Record<string, unknown>
  for (const k of ["data", "result"]) if (k in refBody) expect(body[k]).toBe(refBody[k])
}

describe("envelope fast path ≡ Schema", () => {
  const decodeCommand = Schema.decodeUnknownEither(CommandEnvelope)
  const decodeEvent = Schema.decodeUnknownEither(EventEnvelope)

  it("commands: sound on corrupted input, taken for every valid one", () => {
    let fastHits = 0
    fc.assert(
      fc.property(commandEnvelope, corruption, (valid, c) => {
        const text = corrupt(valid, c)
        checkAgainstSchema(text, fastCommandEnvelope, decodeCommand, c.kind === "none")
        if (fastCommandEnvelope(JSON.parse(text)) !== undefined) fastHits++
      }),
      { numRuns: RUNS }
    )
    expect(fastHits).toBeGreaterThan(RUNS / 4)
  })

  it("events: sound on corrupted input, taken for every valid one", () => {
    fc.assert(
      fc.property(eventEnvelope, corruption, (valid, c) => {
        checkAgainstSchema(corrupt(valid, c), fastEventEnvelope, decodeEvent, c.kind === "none")
      }),
      { numRuns: RUNS }
    )
  })

  it("non-objects, arrays, unknown tags and versions are left to Schema", () => {
    for (const u of [null, 1, "x", [], [1], { v: 2, queue: "q", jobId: null, time: 1, seq: 0, body: { _tag: "QueuePaused" } }]) {
      expect(fastEventEnvelope(u)).toBeUndefined()
      expect(fastCommandEnvelope(u)).toBeUndefined()
    }
    expect(fastEventEnvelope({ v: 1, queue: "q", jobId: "j", time: 1, seq: 0, body: { _tag: "JobExploded" } })).toBeUndefined()
    expect(fastCommandEnvelope({ v: 1, queue: "q", jobId: "j", time: 1, body: { _tag: "JobStarted", attempt: 0 } })).toBeUndefined()
  })

  it("the rare shapes (a job's own keep, a job from a schedule, a JobRetried carrying its job) are left to Schema, which decodes them", () => {
    const keep = { completed: { count: 0 }, failed: { age: 60_000 } }
    const add = { v: 1, queue: "q", jobId: "j", time: 1, body: { _tag: "AddJob", name: "n", data: 1, priority: 0, delay: 0, keep } }
    expect(fastCommandEnvelope(add)).toBeUndefined()
    expect(Either.getOrThrow(Schema.decodeUnknownEither(CommandEnvelope)(add)).body).toMatchObject({ keep })
    const job = { name: "n", data: null, priority: 0, createdAt: 1, runAt: 1, maxAttempts: 2, stalledCount: 0, attemptsMade: 2 }
    const retried = { v: 1, queue: "q", jobId: "j", time: 2, seq: 5, body: { _tag: "JobRetried", job } }
    expect(fastEventEnvelope(retried)).toBeUndefined()
    const schedule = { id: "daily", tick: 1_000 }
    const fromSchedule = { v: 1, queue: "q", jobId: "daily:1000", time: 2, seq: 0, body: { _tag: "JobAdded", name: "n", data: null, priority: 0, runAt: 2, maxAttempts: 0, queuePaused: false, schedule } }
    expect(fastEventEnvelope(fromSchedule)).toBeUndefined()
    expect(Either.getOrThrow(Schema.decodeUnknownEither(EventEnvelope)(fromSchedule)).body).toMatchObject({ schedule })
    expect(Either.getOrThrow(Schema.decodeUnknownEither(EventEnvelope)(retried)).body).toEqual({ _tag: "JobRetried", job })
  })

  it("an optional key holding undefined (never in JSON) is left to Schema", () => {
    const body = { _tag: "AddJob", name: "n", data: 1, priority: 0, delay: 0, timeout: undefined }
    expect(fastCommandEnvelope({ v: 1, queue: "q", jobId: "j", time: 1, body })).toBeUndefined()
  })
})
