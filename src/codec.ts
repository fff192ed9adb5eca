/**
 * Bytes ↔ envelopes. Every record read from a log is decoded here with the Schema of
 * `machines/schema.ts`; a record that does not decode is refused with a readable reason
 * (the engine dead-letters refused commands; readers report refused events).
 */
import { Either, ParseResult, Schema } from "effect"
import { CommandEnvelope, EventEnvelope } from "../machines/schema.ts"

/** Records above this size are refused before parsing (the same bound for every backend). */
export const MAX_RECORD_BYTES = 1_048_576

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: string }

const decodeCommandEnvelope = Schema.decodeUnknownEither(CommandEnvelope)
const decodeEventEnvelope = Schema.decodeUnknownEither(EventEnvelope)

const parse = <A>(
  raw: string,
  decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>
): Decoded<A> => {
  if (raw.length > MAX_RECORD_BYTES) return { ok: false, reason: `record of ${raw.length} bytes exceeds ${MAX_RECORD_BYTES}` }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` }
  }
  const result = decode(json)
  return Either.isRight(result)
    ? { ok: true, value: result.right }
    : { ok: false, reason: ParseResult.TreeFormatter.formatErrorSync(result.left) }
}

export const decodeCommand = (raw: string): Decoded<CommandEnvelope> => parse(raw, decodeCommandEnvelope)
export const decodeEvent = (raw: string): Decoded<EventEnvelope> => parse(raw, decodeEventEnvelope)

/** Our own envelopes are typed; encoding them is JSON and cannot fail for values we built. */
export const encode = (envelope: CommandEnvelope | EventEnvelope): string => JSON.stringify(envelope)

/**
 * Checks that a value survives the trip through the log as JSON. Returns a reason when it
 * does not (a cycle, a BigInt, a function at the top level…).
 */
export const jsonProblem = (value: unknown, what: string): string | undefined => {
  if (value === undefined) return undefined
  try {
    const text = JSON.stringify(value)
    if (text === undefined) return `${what} cannot be serialized to JSON (it is a ${typeof value})`
    if (text.length > MAX_RECORD_BYTES / 2) return `${what} is ${text.length} bytes of JSON; the limit is ${MAX_RECORD_BYTES / 2}`
    return undefined
  } catch (e) {
    return `${what} cannot be serialized to JSON: ${(e as Error).message}`
  }
}
