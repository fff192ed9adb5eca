/**
 * How jobledger connects to a Kafka cluster: the `kafka` option of `JobQueue` (and the CLI's
 * `--kafka-config <file.json>`), a documented subset of kafkajs's `KafkaConfig`, checked
 * here; and the resolution of a log URL + that option + the environment into one
 * `KafkaConnection`, the only thing the Kafka backend is configured from.
 *
 * Invariants:
 * - Every check throws an Error whose message names the setting and what to fix, and never
 *   shows the value of a credential (a password of the wrong type is "must be a string",
 *   not what it was).
 * - The username and password come from the option, else from JOBLEDGER_KAFKA_USERNAME /
 *   JOBLEDGER_KAFKA_PASSWORD, and only when a SASL mechanism is asked for; never from the URL.
 * - Every secret is registered with secrets.ts as soon as it is resolved, so that messages
 *   that might echo it are scrubbed from then on.
 * - Resolution reads the ca/cert/key files and builds a TLS context once, so a missing file,
 *   a bad PEM or a key that does not match its certificate fails at construction.
 */
import { X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import { createSecureContext, type ConnectionOptions } from "node:tls"
import { CREDENTIALS_SOURCES, type KafkaLocation, SASL_MECHANISMS, type SaslMechanism, displayLogUrl } from "./log-url.ts"
import { registerSecret, scrub } from "./secrets.ts"

/** PEM text, a Buffer of it, or several. */
export type PemInput = string | Buffer | ReadonlyArray<string | Buffer>

/** TLS settings (passed to Node's `tls.connect`). Any of them turns TLS on. */
export interface KafkaTlsOptions {
  /** CAs to trust instead of the system's (PEM). The URL's `?ca=<file>` says the same. */
  ca?: PemInput
  /** Client certificate chain (PEM), for clusters that ask for one (mTLS). URL: `?cert=<file>`. */
  cert?: PemInput
  /** The client certificate's private key (PEM). URL: `?key=<file>`. */
  key?: PemInput
  /** Passphrase of an encrypted `key`. */
  passphrase?: string
  /** Server name for SNI and certificate checks (default: the broker's host name). */
  servername?: string
  /** `false` accepts any broker certificate — only for a test cluster; default `true`. */
  rejectUnauthorized?: boolean
}

/** SASL authentication. The mechanism may come from the URL's `?sasl=` instead. */
export interface KafkaSaslOptions {
  mechanism?: SaslMechanism
  /** Default: JOBLEDGER_KAFKA_USERNAME. Give both or neither. */
  username?: string
  /** Default: JOBLEDGER_KAFKA_PASSWORD. Never printed. */
  password?: string
}

/**
 * Kafka connection settings a log URL cannot say (a subset of kafkajs's `KafkaConfig`; the
 * brokers always come from the URL). Ignored by the SQLite and memory logs.
 */
export interface KafkaOptions {
  /** The client id brokers see (logs, quotas); default `'jobledger'`. */
  clientId?: string
  /** `true`: TLS with the system's CAs; an object: TLS with these settings; `false`: plaintext. */
  ssl?: boolean | KafkaTlsOptions
  sasl?: KafkaSaslOptions
  /** ms to open a connection (TCP and TLS), default 3000. */
  connectionTimeout?: number
  /** ms for SASL authentication, default 10000 (kafkajs's). */
  authenticationTimeout?: number
  /** ms before a SASL session expires at which it is renewed, default 10000 (kafkajs's). */
  reauthenticationThreshold?: number
  /** ms a request may take, default 15000. */
  requestTimeout?: number
}

/** Everything the Kafka backend connects with: the URL's and the option's settings, merged. */
export interface KafkaConnection {
  readonly brokers: ReadonlyArray<string>
  /** How messages name the cluster: `kafka://…` or `kafkas://…` and the brokers (no secret). */
  readonly url: string
  /** TLS options, or undefined for plaintext. */
  readonly ssl: ConnectionOptions | undefined
  readonly sasl: { readonly mechanism: SaslMechanism; readonly username: string; readonly password: string } | undefined
  readonly clientId: string
  readonly connectionTimeout: number | undefined
  readonly authenticationTimeout: number | undefined
  readonly reauthenticationThreshold: number | undefined
  readonly requestTimeout: number | undefined
}

const KAFKA_KEYS = ["clientId", "ssl", "sasl", "connectionTimeout", "authenticationTimeout", "reauthenticationThreshold", "requestTimeout"] as const
const TLS_KEYS = ["ca", "cert", "key", "passphrase", "servername", "rejectUnauthorized"] as const
const SASL_KEYS = ["mechanism", "username", "password"] as const
const TIMEOUT_KEYS = ["connectionTimeout", "authenticationTimeout", "reauthenticationThreshold", "requestTimeout"] as const
const MAX_MS = 2_147_483_647

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v)

const isPem = (v: unknown): boolean =>
  typeof v === "string" || Buffer.isBuffer(v) || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" || Buffer.isBuffer(x)))

const checkKeys = (where: string, value: Record<string, unknown>, allowed: ReadonlyArray<string>, hint = "") => {
  for (const key of Object.keys(value))
    if (!allowed.includes(key)) throw new Error(`${where}: unknown option '${key}' (known: ${allowed.join(", ")})${hint}`)
}

/**
 * Checks a `kafka` option (or the contents of a --kafka-config file); throws an Error naming
 * the first problem. `prefix` starts every setting's name in messages (`kafka.` for the option).
 */
export const validateKafkaOptions = (value: unknown, prefix = "kafka."): KafkaOptions | undefined => {
  if (value === undefined) return undefined
  const root = prefix.replace(/\.$/, "") || "the Kafka settings"
  if (!isPlainObject(value)) throw new Error(`${root} must be an object like { sasl: { mechanism: 'scram-sha-512' }, ssl: true }`)
  if ("brokers" in value) throw new Error(`${prefix}brokers: the brokers come from the log URL (kafka://host:9092,host2:9092)`)
  checkKeys(root, value, KAFKA_KEYS)
  const { clientId, ssl, sasl } = value
  if (clientId !== undefined && (typeof clientId !== "string" || !/^[\x21-\x7e]{1,255}$/.test(clientId)))
    throw new Error(`${prefix}clientId must be 1–255 printable characters without spaces`)
  for (const key of TIMEOUT_KEYS) {
    const ms = value[key]
    if (ms !== undefined && (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > MAX_MS))
      throw new Error(`${prefix}${key} must be a whole number of ms from 1 to ${MAX_MS}`)
  }
  if (ssl !== undefined && typeof ssl !== "boolean") {
    if (!isPlainObject(ssl)) throw new Error(`${prefix}ssl must be true, false or an object { ca, cert, key, passphrase, servername, rejectUnauthorized }`)
    checkKeys(`${prefix}ssl`, ssl, TLS_KEYS)
    for (const key of ["ca", "cert", "key"] as const)
      if (ssl[key] !== undefined && !isPem(ssl[key])) throw new Error(`${prefix}ssl.${key} must be PEM text, a Buffer, or an array of them`)
    if ((ssl.cert === undefined) !== (ssl.key === undefined)) throw new Error(`${prefix}ssl.cert and ${prefix}ssl.key go together`)
    if (ssl.passphrase !== undefined && typeof ssl.passphrase !== "string") throw new Error(`${prefix}ssl.passphrase must be a string`)
    if (ssl.servername !== undefined && (typeof ssl.servername !== "string" || ssl.servername.length === 0))
      throw new Error(`${prefix}ssl.servername must be a non-empty string`)
    if (ssl.rejectUnauthorized !== undefined && typeof ssl.rejectUnauthorized !== "boolean")
      throw new Error(`${prefix}ssl.rejectUnauthorized must be true or false`)
  }
  if (sasl !== undefined) {
    if (!isPlainObject(sasl)) throw new Error(`${prefix}sasl must be an object { mechanism, username, password }`)
    checkKeys(`${prefix}sasl`, sasl, SASL_KEYS, " (AWS IAM and OAUTHBEARER are not supported)")
    const mechanism = sasl.mechanism
    if (mechanism !== undefined && (typeof mechanism !== "string" || !(SASL_MECHANISMS as ReadonlyArray<string>).includes(mechanism.toLowerCase())))
      throw new Error(`${prefix}sasl.mechanism must be one of ${SASL_MECHANISMS.join(", ")}`)
    for (const key of ["username", "password"] as const) {
      const v = sasl[key]
      if (v !== undefined && (typeof v !== "string" || v.length === 0)) throw new Error(`${prefix}sasl.${key} must be a non-empty string`)
    }
    if ((sasl.username === undefined) !== (sasl.password === undefined))
      throw new Error(`${prefix}sasl.username and ${prefix}sasl.password go together (or leave both to JOBLEDGER_KAFKA_USERNAME / JOBLEDGER_KAFKA_PASSWORD)`)
    registerSecret(sasl.password as string | undefined)
  }
  if (isPlainObject(ssl)) {
    registerSecret(ssl.passphrase as string | undefined)
    registerPem(ssl.key)
  }
  return value as KafkaOptions
}

const registerPem = (pem: unknown) => {
  for (const part of Array.isArray(pem) ? pem : [pem]) registerSecret(Buffer.isBuffer(part) ? part.toString("utf8") : (part as string | undefined))
}

const pemArray = (v: PemInput): Array<string | Buffer> => (Array.isArray(v) ? [...v] : [v as string | Buffer])

const CERTIFICATE_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * Node accepts anything as `ca` and then fails every handshake ("unable to get local issuer
 * certificate"): check that each entry holds PEM certificates, and that they parse.
 */
const checkCertificates = (where: string, what: string, pems: ReadonlyArray<string | Buffer>): void => {
  for (const pem of pems) {
    const blocks = (Buffer.isBuffer(pem) ? pem.toString("utf8") : pem).match(CERTIFICATE_PEM) ?? []
    if (blocks.length === 0) throw new Error(`${where}: ${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
    for (const block of blocks) {
      try {
        new X509Certificate(block)
      } catch (e) {
        throw new Error(`${where}: ${what} has a certificate that does not parse (${(e as Error).message})`)
      }
    }
  }
}

/**
 * The connection to the cluster of `location`, with the `kafka` option and the environment.
 * Throws an Error (URL shown with displayLogUrl, no secret) when they contradict each
 * other, a file cannot be read, the TLS material is invalid, or credentials are missing.
 */
export const resolveKafkaConnection = (
  location: KafkaLocation,
  option: KafkaOptions | undefined,
  env: Record<string, string | undefined> = process.env
): KafkaConnection => {
  const opts = validateKafkaOptions(option) ?? {}
  const urlOf = (tls: boolean) => `${tls ? "kafkas" : "kafka"}://${location.brokers.join(",")}`
  const where = `log '${displayLogUrl(urlOf(location.tls === true))}'`

  // ---- TLS: on when the URL or the option says so; contradictions are refused
  const optSsl = opts.ssl
  if (location.tls === false && optSsl !== undefined && optSsl !== false)
    throw new Error(`${where}: tls=0 in the URL contradicts kafka.ssl`)
  if (location.tls === true && optSsl === false) throw new Error(`${where}: the URL asks for TLS (kafkas://, tls=1, ca, cert or key) and kafka.ssl is false`)
  const tlsOn = location.tls === true || (optSsl !== undefined && optSsl !== false)
  let ssl: ConnectionOptions | undefined
  if (tlsOn) {
    const fromOption: KafkaTlsOptions = typeof optSsl === "object" ? optSsl : {}
    const read = (name: "ca" | "cert" | "key", file: string | undefined): Buffer | undefined => {
      if (file === undefined) return undefined
      if (fromOption[name] !== undefined) throw new Error(`${where}: ${name} is given twice (?${name}= in the URL and kafka.ssl.${name})`)
      try {
        return readFileSync(file)
      } catch (e) {
        throw new Error(`${where}: cannot read the ${name} file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
      }
    }
    const ca = read("ca", location.caFile) ?? fromOption.ca
    const cert = read("cert", location.certFile) ?? fromOption.cert
    const key = read("key", location.keyFile) ?? fromOption.key
    if (location.keyFile !== undefined) registerPem(key)
    ssl = {
      ...(ca === undefined ? {} : { ca: pemArray(ca) }),
      ...(cert === undefined ? {} : { cert: pemArray(cert) }),
      ...(key === undefined ? {} : { key: pemArray(key) }),
      ...(fromOption.passphrase === undefined ? {} : { passphrase: fromOption.passphrase }),
      ...(fromOption.servername === undefined ? {} : { servername: fromOption.servername }),
      ...(fromOption.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: fromOption.rejectUnauthorized })
    }
    if (ca !== undefined) checkCertificates(where, location.caFile === undefined ? "kafka.ssl.ca" : `the ca file ${location.caFile}`, pemArray(ca))
    if (cert !== undefined) checkCertificates(where, location.certFile === undefined ? "kafka.ssl.cert" : `the cert file ${location.certFile}`, pemArray(cert))
    try {
      // the same checks tls.connect makes: unreadable PEM, wrong passphrase, key ≠ certificate
      createSecureContext(ssl)
    } catch (e) {
      throw new Error(`${where}: the TLS settings are not usable: ${scrub((e as Error).message)}`)
    }
  }

  // ---- SASL: the mechanism from the URL or the option, the credentials never from the URL
  const optMechanism = opts.sasl?.mechanism?.toLowerCase() as SaslMechanism | undefined
  if (location.sasl !== undefined && optMechanism !== undefined && optMechanism !== location.sasl)
    throw new Error(`${where}: sasl=${location.sasl} in the URL contradicts kafka.sasl.mechanism '${optMechanism}'`)
  const mechanism = location.sasl ?? optMechanism
  if (opts.sasl !== undefined && mechanism === undefined)
    throw new Error(`${where}: kafka.sasl needs a mechanism: ?sasl=scram-sha-512 (or plain, scram-sha-256) in the URL, or kafka.sasl.mechanism`)
  let sasl: KafkaConnection["sasl"]
  if (mechanism !== undefined) {
    let username = opts.sasl?.username
    let password = opts.sasl?.password
    if (username === undefined) {
      username = env.JOBLEDGER_KAFKA_USERNAME || undefined
      password = env.JOBLEDGER_KAFKA_PASSWORD || undefined
      const missing = [username === undefined ? "JOBLEDGER_KAFKA_USERNAME" : "", password === undefined ? "JOBLEDGER_KAFKA_PASSWORD" : ""].filter(Boolean)
      if (missing.length > 0)
        throw new Error(`${where}: sasl=${mechanism} needs a username and password, and ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set: ${CREDENTIALS_SOURCES}`)
    }
    registerSecret(password)
    sasl = { mechanism, username: username!, password: password! }
  }

  return {
    brokers: location.brokers,
    url: urlOf(tlsOn),
    ssl,
    sasl,
    clientId: opts.clientId ?? "jobledger",
    connectionTimeout: opts.connectionTimeout,
    authenticationTimeout: opts.authenticationTimeout,
    reauthenticationThreshold: opts.reauthenticationThreshold,
    requestTimeout: opts.requestTimeout
  }
}

/** A plaintext connection to `brokers` with the defaults (tests, tools). */
export const plainConnection = (brokers: ReadonlyArray<string>): KafkaConnection =>
  resolveKafkaConnection({ kind: "kafka", brokers }, undefined, {})
