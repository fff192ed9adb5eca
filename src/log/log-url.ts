/**
 * Parsing of log URLs: `memory:[name]`, `sqlite:<path>[?sync=full]`, and Kafka:
 *
 *   kafka://host:port[,host:port…][?param=value&…]     plaintext, unless a parameter asks for TLS
 *   kafkas://host:port[,host:port…][?param=value&…]    TLS (the system's CAs unless ca= is given)
 *
 * Kafka parameters: partitions, replication (topics created), retainMs (history retention of
 * the events and commands topics), tls=1|0, ca=<file>, cert=<file>&key=<file> (a client
 * certificate), sasl=plain|scram-sha-256|scram-sha-512.
 *
 * Invariants:
 * - A log URL never carries a secret: `user:pass@` and credential parameters are refused
 *   (credentials come from JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD or the `kafka`
 *   option), so any URL that parsed may be printed as it is.
 * - Error messages show the URL only as `displayLogUrl` renders it, which hides whatever
 *   might be a secret in a URL that did not parse.
 * - Parsing is pure: files named by ca/cert/key are read when the connection is resolved
 *   (kafka-options.ts), not here.
 */
import { resolve } from "node:path"

/** SASL mechanisms jobledger speaks to Kafka (kafkajs's built-in ones, minus AWS and OAuth). */
export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

export type LogLocation =
  | { readonly kind: "memory"; readonly name: string }
  | { readonly kind: "sqlite"; readonly path: string; readonly synchronous: "NORMAL" | "FULL" }
  | KafkaLocation

export interface KafkaLocation {
  readonly kind: "kafka"
  readonly brokers: ReadonlyArray<string>
  /** Replication factor of the topics the log creates (default: the cluster's). */
  readonly replicationFactor?: number
  /** Partitions of the commands and events topics the log creates (default: the queue's, 3). */
  readonly partitions?: number
  /**
   * `retention.ms` of the events and commands topics (default: keep everything). Kafka
   * deletes older segments; engines and readers restore from their snapshots, and replay
   * starts there. At least MIN_RETAIN_MS, so a snapshot always covers what retention deletes.
   */
  readonly retainMs?: number
  /** TLS as the URL says: true (kafkas://, tls=1, ca/cert/key given), false (tls=0), absent (not said). */
  readonly tls?: boolean
  /** PEM file of the CAs to trust instead of the system's (absolute). */
  readonly caFile?: string
  /** PEM files of a client certificate and its key, for brokers that ask for one (absolute). */
  readonly certFile?: string
  readonly keyFile?: string
  /** SASL mechanism; the username and password never come from the URL. */
  readonly sasl?: SaslMechanism
}

/** The log used when neither the `log` option nor `JOBLEDGER_LOG` is set. */
export const DEFAULT_LOG_URL = "sqlite:./.jobledger/jobs.db"

/** The `log` option, else `JOBLEDGER_LOG`, else the embedded SQLite file. */
export const resolveLogUrl = (option: string | undefined): string =>
  option ?? (process.env.JOBLEDGER_LOG || undefined) ?? DEFAULT_LOG_URL

const USAGE = "use 'memory:', 'sqlite:/path/to/jobs.db' or 'kafka://host:9092[,host2:9092][?replication=3&partitions=6]' ('kafkas://' for TLS)"

const KAFKA_PARAMS = ["replication", "partitions", "retainMs", "tls", "ca", "cert", "key", "sasl"] as const
/**
 * The shortest history retention allowed: an hour. A partition's owner writes a snapshot at
 * least every 30 s while it has work, so everything retention may delete is long covered.
 */
export const MIN_RETAIN_MS = 3_600_000
/** Parameters whose values are file paths: the only place an '@' may appear in a Kafka URL. */
const FILE_PARAMS: ReadonlyArray<string> = ["ca", "cert", "key"]

/** Where credentials come from; the second is said by every refusal of a URL that tried to carry them. */
export const CREDENTIALS_SOURCES =
  "set JOBLEDGER_KAFKA_USERNAME and JOBLEDGER_KAFKA_PASSWORD, or pass kafka: { sasl: { username, password } } (--kafka-config <file.json> on the command line)"
export const CREDENTIALS_HINT = `credentials never go in the log URL: ${CREDENTIALS_SOURCES}, and name the mechanism with ?sasl=scram-sha-512 (or plain, scram-sha-256)`

const CREDENTIAL_PARAM = /^(user(name)?|pass(word|wd)?|secret|token|sasl[._-]?(user(name)?|pass(word)?)|auth)$/i

const isKafkaUrl = (url: string) => url.startsWith("kafka://") || url.startsWith("kafkas://")

/** The query of a Kafka URL as [name, raw value] pairs, without decoding (for display). */
const rawParams = (query: string): Array<[string, string | undefined]> =>
  query
    .split("&")
    .filter((part) => part.length > 0)
    .map((part) => {
      const eq = part.indexOf("=")
      return eq < 0 ? [part, undefined] : [part.slice(0, eq), part.slice(eq + 1)]
    })

/**
 * Whether a Kafka URL has an '@' outside the values of ca=/cert=/key= — a `user:pass@`, or a
 * password with an '@' wherever it was put. Such a URL is refused and never echoed.
 */
const hasUserInfo = (url: string): boolean => {
  const rest = url.slice(url.indexOf("://") + 3)
  const q = rest.indexOf("?")
  if ((q < 0 ? rest : rest.slice(0, q)).includes("@")) return true
  if (q < 0) return false
  return rawParams(rest.slice(q + 1)).some(([name, value]) => name.includes("@") || (value?.includes("@") === true && !FILE_PARAMS.includes(name)))
}

/** A parameter's value as shown: file paths and values of the expected form; anything else could be a misplaced secret. */
const shownValue = (name: string, value: string): string => {
  if (FILE_PARAMS.includes(name)) return value
  const v = value.toLowerCase()
  if ((name === "partitions" || name === "replication") && /^\d{0,6}$/.test(v)) return value
  if (name === "retainMs" && /^\d{0,16}$/.test(v)) return value
  if (name === "tls" && /^(1|0|true|false|yes|no|on|off)$/.test(v)) return value
  if (name === "sasl" && (SASL_MECHANISMS as ReadonlyArray<string>).includes(v)) return value
  return "***"
}

/**
 * A log URL as messages and help may show it: a Kafka URL with an '@' outside file paths
 * becomes `kafka://***@…` (nothing of it shown); values of parameters that are not ours (or
 * that name credentials) become `***`; another scheme's `user:pass@` becomes `***@`.
 */
export const displayLogUrl = (url: string): string => {
  if (typeof url !== "string") return String(url)
  if (isKafkaUrl(url)) {
    const scheme = url.slice(0, url.indexOf("://") + 3)
    if (hasUserInfo(url)) return `${scheme}***@…`
    const q = url.indexOf("?")
    if (q < 0) return url
    const shown = rawParams(url.slice(q + 1)).map(([name, value]) => (value === undefined ? name : `${name}=${shownValue(name, value)}`))
    return `${url.slice(0, q)}?${shown.join("&")}`
  }
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^?#]*@)/i.exec(url)
  return m === null || url.startsWith("sqlite:") ? url : `${m[1]}***@${url.slice(m[0].length)}`
}

/** A whole number in [1, max] from a query parameter, or a clear Error. */
const positiveInt = (url: string, name: string, raw: string, max: number): number => {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new Error(`log '${displayLogUrl(url)}': ${name} must be a whole number from 1 to ${max} (got '${raw}')`)
  return n
}

/** Parses a log URL; throws an Error that says what a valid one looks like. */
export const parseLogUrl = (url: string): LogLocation => {
  if (typeof url !== "string" || url.length === 0) throw new Error(`log must be a non-empty URL string: ${USAGE}`)
  if (url === "memory:" || url.startsWith("memory:")) return { kind: "memory", name: url.slice("memory:".length) }
  if (url.startsWith("sqlite:")) {
    const [rawPath = "", query = ""] = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "").split("?")
    if (rawPath.length === 0) throw new Error(`log '${url}' has no file path: ${USAGE}`)
    const params = new URLSearchParams(query)
    const sync = (params.get("sync") ?? "normal").toUpperCase()
    if (sync !== "NORMAL" && sync !== "FULL") throw new Error(`log '${url}': sync must be 'normal' or 'full'`)
    return { kind: "sqlite", path: rawPath === ":memory:" ? rawPath : resolve(rawPath), synchronous: sync }
  }
  if (isKafkaUrl(url)) return parseKafkaUrl(url)
  throw new Error(`unknown log '${displayLogUrl(url)}': ${USAGE}`)
}

/** `tls=` as a boolean. */
const flag = (url: string, name: string, raw: string): boolean => {
  const v = raw.trim().toLowerCase()
  if (v === "1" || v === "true" || v === "yes" || v === "on") return true
  if (v === "0" || v === "false" || v === "no" || v === "off") return false
  throw new Error(`log '${displayLogUrl(url)}': ${name} must be 1 or 0`)
}

const parseKafkaUrl = (url: string): KafkaLocation => {
  const shown = displayLogUrl(url)
  if (hasUserInfo(url)) throw new Error(`log '${shown}': ${CREDENTIALS_HINT}`)
  const secure = url.startsWith("kafkas://")
  const rest = url.slice(secure ? "kafkas://".length : "kafka://".length)
  const q = rest.indexOf("?")
  const hosts = q < 0 ? rest : rest.slice(0, q)
  const params = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))
  const credential = [...params.keys()].find((k) => CREDENTIAL_PARAM.test(k))
  if (credential !== undefined) throw new Error(`log '${shown}': '${credential}' is not a parameter: ${CREDENTIALS_HINT}`)
  const unknown = [...params.keys()].find((k) => !(KAFKA_PARAMS as ReadonlyArray<string>).includes(k))
  if (unknown !== undefined) throw new Error(`log '${shown}': unknown parameter '${unknown}' (kafka takes ${KAFKA_PARAMS.join(", ")})`)
  for (const name of KAFKA_PARAMS)
    if (params.getAll(name).length > 1) throw new Error(`log '${shown}': ${name} is given more than once`)
  const brokers = hosts
    .replace(/\/.*$/, "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b.length > 0)
  const bad = brokers.find((b) => !/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b))
  if (brokers.length === 0 || bad !== undefined)
    throw new Error(`log '${shown}': every broker must be host:port (${bad ?? "none given"}); ${USAGE}`)

  const replication = params.get("replication")
  const partitions = params.get("partitions")
  const retainRaw = params.get("retainMs")
  const retainMs = retainRaw === null ? undefined : positiveInt(url, "retainMs", retainRaw, Number.MAX_SAFE_INTEGER)
  if (retainMs !== undefined && retainMs < MIN_RETAIN_MS)
    throw new Error(`log '${shown}': retainMs must be at least ${MIN_RETAIN_MS} (1 h), so that a snapshot covers whatever Kafka deletes; got ${retainMs}`)
  const file = (name: string): string | undefined => {
    const raw = params.get(name)
    if (raw === null) return undefined
    if (raw.trim() === "") throw new Error(`log '${shown}': ${name} must name a PEM file`)
    return resolve(raw)
  }
  const caFile = file("ca")
  const certFile = file("cert")
  const keyFile = file("key")
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new Error(`log '${shown}': cert and key go together (a client certificate and its private key, PEM files)`)
  const tlsParam = params.get("tls")
  const tlsAsked = tlsParam === null ? undefined : flag(url, "tls", tlsParam)
  const needsTls = caFile !== undefined || certFile !== undefined
  if (tlsAsked === false && secure) throw new Error(`log '${shown}': kafkas:// is TLS; tls=0 contradicts it (use kafka:// for plaintext)`)
  if (tlsAsked === false && needsTls) throw new Error(`log '${shown}': ca, cert and key are TLS settings; tls=0 contradicts them`)
  const tls = secure || tlsAsked === true || needsTls ? true : tlsAsked
  const saslRaw = params.get("sasl")
  let sasl: SaslMechanism | undefined
  if (saslRaw !== null) {
    const m = saslRaw.trim().toLowerCase()
    if (!(SASL_MECHANISMS as ReadonlyArray<string>).includes(m))
      throw new Error(`log '${shown}': sasl must be one of ${SASL_MECHANISMS.join(", ")}`)
    sasl = m as SaslMechanism
  }
  return {
    kind: "kafka",
    brokers,
    ...(replication === null ? {} : { replicationFactor: positiveInt(url, "replication", replication, 32_767) }),
    ...(partitions === null ? {} : { partitions: positiveInt(url, "partitions", partitions, 10_000) }),
    ...(retainMs === undefined ? {} : { retainMs }),
    ...(tls === undefined ? {} : { tls }),
    ...(caFile === undefined ? {} : { caFile }),
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(sasl === undefined ? {} : { sasl })
  }
}
