/**
 * Keeping Kafka credentials out of everything jobledger says.
 *
 * Secrets are never part of what we print by construction: log URLs cannot carry them
 * (log-url.ts refuses `user:pass@` and credential parameters), and our own messages name the
 * brokers, never the configuration. This module is the second line: every text that may
 * echo a driver's words (kafkajs error messages and their `cause` chains, kafkajs log lines,
 * the CLI's output) passes through `scrub`, which replaces every known secret by `***`.
 *
 * Invariants:
 * - A secret is known from the moment its configuration is resolved (registerSecret) until
 *   the process ends; JOBLEDGER_KAFKA_PASSWORD is always known (read at each scrub).
 * - `scrubError` returns a copy that keeps what classification needs (name, type, code,
 *   retriable, the cause chain) and drops every other field a driver may have attached
 *   (request payloads, broker objects), so an error event logged with `util.inspect` shows
 *   nothing the scrubbed message does not.
 */

/** Shorter strings occur by chance in any text: replacing them would hide nothing and mangle messages. */
const MIN_SECRET_LENGTH = 4

const secrets = new Set<string>()

/** Remembers a secret (a password, a key passphrase, a private key) so that `scrub` hides it. */
export const registerSecret = (secret: string | undefined): void => {
  if (typeof secret === "string" && secret.length >= MIN_SECRET_LENGTH) secrets.add(secret)
}

const known = (): Array<string> => {
  const fromEnv = process.env.JOBLEDGER_KAFKA_PASSWORD
  const all = fromEnv !== undefined && fromEnv.length >= MIN_SECRET_LENGTH ? [...secrets, fromEnv] : [...secrets]
  // longest first: a secret containing another is replaced whole
  return all.sort((a, b) => b.length - a.length)
}

/** `text` with every known secret replaced by `***`. */
export const scrub = (text: string): string => {
  let out = text
  for (const secret of known()) if (out.includes(secret)) out = out.split(secret).join("***")
  return out
}

interface ErrorFields {
  readonly name?: unknown
  readonly message?: unknown
  readonly type?: unknown
  readonly code?: unknown
  readonly retriable?: unknown
  readonly cause?: unknown
  readonly originalError?: unknown
  readonly errors?: unknown
}

/** Fields of a driver error that say what happened (kept, scrubbed); everything else is dropped. */
const KEPT = ["type", "code", "retriable", "broker"] as const

/**
 * A copy of `error` safe to show or keep as a `cause`: scrubbed message, the fields that
 * classify it, and its causes (kafkajs's `cause`, `originalError`, `errors`) copied the same
 * way, to a bounded depth.
 */
export const scrubError = (error: unknown, depth = 0): unknown => {
  if (error === null || typeof error !== "object") return typeof error === "string" ? scrub(error) : error
  const e = error as ErrorFields
  const copy = new Error(scrub(typeof e.message === "string" ? e.message : String(error))) as Error & Record<string, unknown>
  Object.defineProperty(copy, "name", { value: typeof e.name === "string" ? e.name : "Error", enumerable: false, writable: true })
  copy.stack = `${copy.name}: ${copy.message}`
  for (const key of KEPT) {
    const value = (error as Record<string, unknown>)[key]
    if (value !== undefined) copy[key] = typeof value === "string" ? scrub(value) : typeof value === "object" ? undefined : value
  }
  if (depth < 8) {
    if (e.cause !== undefined) copy.cause = scrubError(e.cause, depth + 1)
    if (e.originalError !== undefined) copy.originalError = scrubError(e.originalError, depth + 1)
    if (Array.isArray(e.errors)) copy.errors = e.errors.map((inner) => scrubError(inner, depth + 1))
  }
  return copy
}
