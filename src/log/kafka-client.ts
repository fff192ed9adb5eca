/**
 * Shared pieces of the Kafka backend: the kafkajs client configuration, the mapping of
 * kafkajs failures to LogError / FencedError, and two small concurrency helpers.
 *
 * Every kafkajs retry is bounded (a few seconds), so a call made while the brokers are away
 * fails with a retryable LogError instead of hanging; the callers (Appender, group member,
 * readers) retry on their own schedule.
 */
import kafkajs from "kafkajs"
import type { KafkaConfig, LogEntry, RetryOptions, SASLOptions } from "kafkajs"
import { LogError } from "./event-log.ts"
import type { KafkaConnection } from "./kafka-options.ts"
import { scrub, scrubError } from "./secrets.ts"

export const { Kafka, logLevel } = kafkajs

/** Bounded retries of the client (admin, coordinators): about 6 s in all before giving up. */
export const CLIENT_RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 2_000, retries: 6, factor: 0.2, multiplier: 2 }
/**
 * Retries of transactional sends: short first waits, because the next transaction of a
 * partition often meets CONCURRENT_TRANSACTIONS for a few ms while the markers of the
 * previous one are written (kafkajs #1315).
 */
export const TXN_RETRY: RetryOptions = { initialRetryTime: 10, maxRetryTime: 1_000, retries: 12, factor: 0.2, multiplier: 1.6 }
/** Consumers: bounded too; a consumer that gives up crashes and is restarted by us. */
export const CONSUMER_RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8, factor: 0.2, multiplier: 2 }

export const SESSION_TIMEOUT_MS = 10_000
export const REBALANCE_TIMEOUT_MS = 15_000
export const HEARTBEAT_INTERVAL_MS = 1_000
/** How long a fetch waits at the end of the log; appends wake it at once. */
export const MAX_WAIT_MS = 100

const LOG_LEVELS: Record<string, number> = { nothing: 0, error: 1, warn: 2, info: 4, debug: 5 }

/**
 * kafkajs logs to the console at INFO by default. Ours is silent unless
 * JOBLEDGER_KAFKA_LOG=error|warn|info|debug asks for it (then to stderr, scrubbed of secrets).
 */
const logCreator = () => {
  const wanted = LOG_LEVELS[(process.env.JOBLEDGER_KAFKA_LOG ?? "nothing").toLowerCase()] ?? 0
  return ({ level, label, namespace, log }: LogEntry) => {
    if (level > wanted || level === 0) return
    const { message, ...extra } = log
    process.stderr.write(scrub(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}\n`))
  }
}

/** The kafkajs client configuration of a connection (fresh objects: kafkajs mutates `sasl`). */
export const kafkaConfig = (connection: KafkaConnection): KafkaConfig => ({
  clientId: connection.clientId,
  brokers: [...connection.brokers],
  connectionTimeout: connection.connectionTimeout ?? 3_000,
  requestTimeout: connection.requestTimeout ?? 15_000,
  ...(connection.authenticationTimeout === undefined ? {} : { authenticationTimeout: connection.authenticationTimeout }),
  ...(connection.reauthenticationThreshold === undefined ? {} : { reauthenticationThreshold: connection.reauthenticationThreshold }),
  ...(connection.ssl === undefined ? {} : { ssl: { ...connection.ssl } }),
  ...(connection.sasl === undefined ? {} : { sasl: { ...connection.sasl } as SASLOptions }),
  retry: CLIENT_RETRY,
  logLevel: logLevel.DEBUG,
  logCreator
})

export const urlOf = (brokers: ReadonlyArray<string>) => `kafka://${brokers.join(",")}`

// ------------------------------------------------------------------ errors

interface KafkaishError {
  readonly name?: string
  readonly message?: string
  readonly type?: string
  readonly code?: number | string
  readonly retriable?: boolean
  readonly cause?: unknown
  readonly originalError?: unknown
  readonly errors?: ReadonlyArray<unknown>
}

/** The error and everything it wraps (kafkajs nests causes in retries and aggregates). */
export const causesOf = (error: unknown): Array<KafkaishError> => {
  const out: Array<KafkaishError> = []
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number) => {
    if (e === null || typeof e !== "object" || seen.has(e) || depth > 8) return
    seen.add(e)
    const k = e as KafkaishError
    out.push(k)
    visit(k.cause, depth + 1)
    visit(k.originalError, depth + 1)
    if (Array.isArray(k.errors)) for (const inner of k.errors) visit(inner, depth + 1)
  }
  visit(error, 0)
  return out
}

const FENCING_TYPES = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED", "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"])
/** 47 INVALID_PRODUCER_EPOCH, 90 PRODUCER_FENCED (unknown to kafkajs, so only its code shows). */
const FENCING_CODES = new Set([47, 90])

/** A newer producer with our transactional id exists: we are a zombie. */
export const isFencing = (error: unknown): boolean =>
  causesOf(error).some(
    (c) => (c.type !== undefined && FENCING_TYPES.has(c.type)) || (typeof c.code === "number" && FENCING_CODES.has(c.code))
  )

export const hasType = (error: unknown, type: string): boolean => causesOf(error).some((c) => c.type === type)

const TRANSIENT_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSBrokerNotFound",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSTopicMetadataNotLoaded",
  "KafkaJSStaleTopicMetadataAssignment",
  "KafkaJSGroupCoordinatorNotFound",
  "KafkaJSLockTimeout",
  "KafkaJSTimeout"
])
const PERMANENT_TYPES = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_TOPIC_EXCEPTION",
  "POLICY_VIOLATION",
  "INVALID_REPLICATION_FACTOR",
  "INVALID_PARTITIONS",
  "UNSUPPORTED_VERSION",
  "INVALID_TRANSACTION_TIMEOUT"
])

/** The broker refused our credentials or mechanism: trying again with the same ones cannot help. */
const SASL_TYPES = new Set(["SASL_AUTHENTICATION_FAILED", "ILLEGAL_SASL_STATE", "UNSUPPORTED_SASL_MECHANISM"])
export const isAuthFailure = (error: unknown): boolean =>
  causesOf(error).some((c) => c.name === "KafkaJSSASLAuthenticationError" || (c.type !== undefined && SASL_TYPES.has(c.type)))

/**
 * Node's codes for a broker certificate that does not verify (untrusted CA, expired, wrong
 * host name), and OpenSSL alerts by which a broker refused ours or the handshake.
 */
const TLS_VERIFY_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
  "CERT_NOT_YET_VALID",
  "CERT_HAS_EXPIRED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_REVOKED",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])
const TLS_ALERT = /^ERR_SSL_.*(CERTIFICATE|UNKNOWN_CA|HANDSHAKE_FAILURE|WRONG_VERSION_NUMBER|PROTOCOL_VERSION)/
const tlsCode = (error: unknown): string | undefined =>
  causesOf(error)
    .map((c) => c.code)
    .find((code): code is string => typeof code === "string" && (TLS_VERIFY_CODES.has(code) || TLS_ALERT.test(code)))
/** A TLS handshake that failed on a certificate or the protocol (not a network blip). */
export const isTlsFailure = (error: unknown): boolean => tlsCode(error) !== undefined

/** Whether the same call may succeed later (broker away, leader moving, coordinator loading). */
export const isTransient = (error: unknown): boolean => {
  const causes = causesOf(error)
  if (causes.some((c) => c.type !== undefined && PERMANENT_TYPES.has(c.type))) return false
  if (isAuthFailure(error) || isTlsFailure(error)) return false
  return causes.some(
    (c) =>
      (c.name !== undefined && TRANSIENT_NAMES.has(c.name)) ||
      c.retriable === true ||
      (typeof c.code === "string" && /^(ECONN|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)/.test(c.code))
  )
}

const describe = (error: unknown): string => {
  const causes = causesOf(error)
  const top = causes[0]
  if (top === undefined) return String(error)
  const root = causes[causes.length - 1]!
  const msg = top.message ?? String(error)
  return root !== top && root.message !== undefined && root.message !== msg ? `${msg} (${root.message})` : msg
}

/** What to check, for failures whose fix is in the configuration. */
const hintOf = (cause: unknown, retryable: boolean): string => {
  if (isAuthFailure(cause))
    return " — check the username and password (JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD, or kafka.sasl) and the mechanism (?sasl=)"
  const code = tlsCode(cause)
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || code === "HOSTNAME_MISMATCH")
    return ` (${code}) — the broker's certificate does not name the host in the log URL`
  if (code !== undefined && TLS_VERIFY_CODES.has(code))
    return ` (${code}) — the broker's certificate is not trusted: give its CA with ?ca=<file.pem> (or kafka.ssl.ca)`
  if (code !== undefined && /WRONG_VERSION_NUMBER|PROTOCOL_VERSION/.test(code)) return ` (${code}) — is this listener TLS? (kafkas:// / tls=1 speak TLS)`
  if (code !== undefined) return ` (${code}) — the broker refused the TLS handshake: does it need a client certificate (?cert=<file>&key=<file>)?`
  return retryable ? " — are the brokers reachable?" : ""
}

/**
 * A LogError naming the cluster (its URL, or its brokers) and what was being done. Its message and `cause` are
 * scrubbed of secrets (kafkajs messages may echo configuration); classification is done
 * on the original first.
 */
export const toLogError = (cluster: ReadonlyArray<string> | string, what: string, cause: unknown): LogError => {
  if (cause instanceof LogError) return cause
  const url = typeof cluster === "string" ? cluster : urlOf(cluster)
  const retryable = isTransient(cause)
  return new LogError({ message: scrub(`${url}: ${what} failed: ${describe(cause)}${hintOf(cause, retryable)}`), retryable, cause: scrubError(cause) })
}

// ------------------------------------------------------------------ helpers

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Runs tasks one after another (per key, per partition, …). */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve()
  run<A>(task: () => Promise<A>): Promise<A> {
    const next = this.tail.then(task, task)
    this.tail = next.catch(() => undefined)
    return next
  }
  /** Resolves once everything queued so far has run. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined)
  }
}

/** A promise with its resolvers outside (Node 20 has no Promise.withResolvers). */
export const deferred = <A = void>() => {
  let resolve!: (a: A) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<A>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * Bytes of record values per produce request: brokers refuse a request whose record batch
 * for a partition exceeds message.max.bytes (~1 MB by default), so larger writes are split.
 */
export const PRODUCE_CHUNK_BYTES = 768 * 1024

/** Splits records, in order, into runs of at most `maxBytes` (a single larger record runs alone). */
export const sizedChunks = <R extends { readonly key: string | null; readonly value: string }>(
  records: ReadonlyArray<R>,
  maxBytes: number
): Array<ReadonlyArray<R>> => {
  const out: Array<Array<R>> = []
  let current: Array<R> = []
  let bytes = 0
  for (const r of records) {
    const size = r.value.length + (r.key?.length ?? 0) + 64
    if (bytes + size > maxBytes && current.length > 0) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(r)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}
