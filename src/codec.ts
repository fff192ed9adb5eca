/**
 * Bytes ↔ envelopes. Every record read from a log is decoded here against the Schema of
 * `machines/schema.ts`; a record that does not decode is refused with a readable reason
 * (the engine dead-letters refused commands; readers report refused events).
 *
 * The common shapes go through `machines/envelope-fast.ts`, which answers only where it
 * agrees with Schema (property-tested); everything else is decoded by Schema itself.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { fastCommandEnvelope, fastEventEnvelope } from "../machines/envelope-fast.ts"
import { CommandEnvelope, EventEnvelope } from "../machines/schema.ts"

/** Records above this size are refused before parsing (the same bound for every backend). */
export const MAX_RECORD_BYTES = 1_048_576
/**
 * Deeper JSON is refused: JSON.stringify recurses, and a value a few thousand levels deep
 * overflows the stack (measured: 1,000 levels pass, 5,000 throw), so a deep command decoded
 * in one process could throw when the engine re-encodes it as an event. 512 leaves room.
 */
export const MAX_JSON_DEPTH = 512

/** True when `text` (JSON) nests arrays/objects deeper than `max`; a linear scan, no parse. */
export const jsonTooDeep = (text: string, max = MAX_JSON_DEPTH): boolean => {
  if (text.length <= max * 2) return false // cannot hold max+1 openings and their closings
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      if (++depth > max) return true
    } else if (c === 93 || c === 125) depth--
  }
  return false
}

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly reason: string }

const decodeCommandEnvelope = Schema.decodeUnknownEither(CommandEnvelope)
const decodeEventEnvelope = Schema.decodeUnknownEither(EventEnvelope)

const parse = <A>(
  raw: string,
  fast: (u: unknown) => A | undefined,
  decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>,
  check?: (json: unknown) => string | undefined
): Decoded<A> => {
  if (raw.length > MAX_RECORD_BYTES) return { ok: false, reason: `record of ${raw.length} bytes exceeds ${MAX_RECORD_BYTES}` }
  if (jsonTooDeep(raw)) return { ok: false, reason: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` }
  }
  const problem = check?.(json)
  if (problem !== undefined) return { ok: false, reason: problem }
  const quick = fast(json)
  if (quick !== undefined) return { ok: true, value: quick }
  // Schema itself may throw on hostile JSON, e.g. while printing a value that cannot become
  // a string ({"toString": null}): such a record is refused like any other, never thrown.
  try {
    const result = decode(json)
    if (Either.isRight(result)) return { ok: true, value: result.right }
    return { ok: false, reason: formatted(result.left) }
  } catch (e) {
    return { ok: false, reason: `refused by the schema: ${e instanceof Error ? e.message : "it threw"}` }
  }
}

const formatted = (error: ParseResult.ParseError): string => {
  try {
    return ParseResult.TreeFormatter.formatErrorSync(error)
  } catch {
    return "does not match the schema (and the value cannot be printed)"
  }
}

/**
 * A `__proto__` key in metadata would not survive decoding: the Record schema assigns it,
 * which sets the decoded object's prototype (the key vanishes and its fields are inherited).
 * Such a command is refused (dead-lettered), as `add` refuses such metadata.
 */
const protoInMetadata = (json: unknown): string | undefined => {
  const metadata = (json as { body?: { metadata?: unknown } } | null)?.body?.metadata
  return typeof metadata === "object" && metadata !== null && Object.hasOwn(metadata, "__proto__")
    ? "metadata may not have a '__proto__' key"
    : undefined
}

export const decodeCommand = (raw: string): Decoded<CommandEnvelope> =>
  parse(raw, fastCommandEnvelope, decodeCommandEnvelope, raw.includes('"__proto__"') ? protoInMetadata : undefined)
export const decodeEvent = (raw: string): Decoded<EventEnvelope> => parse(raw, fastEventEnvelope, decodeEventEnvelope)

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
    if (jsonTooDeep(text)) return `${what} is nested deeper than ${MAX_JSON_DEPTH} levels`
    return undefined
  } catch (e) {
    return `${what} cannot be serialized to JSON: ${(e as Error).message}`
  }
}
