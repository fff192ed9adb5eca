/**
 * Kafka TLS/SASL settings without a broker: the log URL grammar (kafkas://, tls, ca, cert,
 * key, sasl) and its refusal of credentials; the `kafka` option's checks; how URL, option and
 * environment resolve into one connection; and the scrubbing of secrets from errors that a
 * driver might make echo them. (The same against a real SASL_SSL broker:
 * kafka-secure.int.test.ts.)
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { inspect } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import { loadKafkaConfig } from "../src/cli/kafka-config.ts"
import { UsageError } from "../src/cli/errors.ts"
import { InvalidOptionError, JobQueue, type QueueOptions } from "../src/index.ts"
import { isTransient, toLogError } from "../src/log/kafka-client.ts"
import { resolveKafkaConnection, validateKafkaOptions } from "../src/log/kafka-options.ts"
import { type KafkaLocation, displayLogUrl, parseLogUrl } from "../src/log/log-url.ts"
import { registerSecret, scrub, scrubError } from "../src/log/secrets.ts"

const DIR = mkdtempSync(join(tmpdir(), "jobledger-tls-unit-"))
/** A CA certificate (public, from a keytool run) — what a ?ca= file holds. */
const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBYTCCAQegAwIBAgIJAOpqEe1QcJaiMAoGCCqGSM49BAMCMBwxGjAYBgNVBAMT
EWpvYmxlZGdlciB0ZXN0IENBMB4XDTI2MTIwMTE5NDk0M1oXDTI2MTIwMzE5NDk0
M1owHDEaMBgGA1UEAxMRam9ibGVkZ2VyIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggq
hkjOPQMBBwNCAAQ1ELjLLdiWHfGG8IPyEBik784aXaXwwLybd7K9/zK1k1o0GUSS
IBT0tkHgLE2IJkfUJLyH2RlaXGBBAxCzWWtwozIwMDAdBgNVHQ4EFgQUE5SUszQG
k6KX8+RibhOfcFVlOUUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
AiEAhhx88IkuSGzDE/FoUDMoFp88qTjmnsyS93yVb5u1ubkCID8ottGhTrOUfxww
c62IBzetkWM0GMJfB7WM4eOv9rKl
-----END CERTIFICATE-----
`
const caFile = join(DIR, "ca.pem")
writeFileSync(caFile, CA_PEM)
const notPem = join(DIR, "not-a-cert.pem")
writeFileSync(notPem, "this is not a certificate\n")

const SECRET = "s3cr3t-Pa55w0rd-unit"

const thrown = (f: () => unknown): Error => {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  throw new Error("expected a throw")
}

describe("log URL: Kafka TLS and SASL parameters", () => {
  it("kafkas:// and tls=1 turn TLS on; ca/cert/key imply it and are resolved to absolute paths; sasl names a mechanism", () => {
    expect(parseLogUrl("kafkas://a:9093")).toEqual({ kind: "kafka", brokers: ["a:9093"], tls: true })
    expect(parseLogUrl("kafka://a:9093?tls=1")).toEqual({ kind: "kafka", brokers: ["a:9093"], tls: true })
    expect(parseLogUrl("kafka://a:9093?tls=0")).toEqual({ kind: "kafka", brokers: ["a:9093"], tls: false })
    expect(parseLogUrl("kafka://a:9093?ca=certs/ca.pem&sasl=SCRAM-SHA-512")).toEqual({
      kind: "kafka",
      brokers: ["a:9093"],
      tls: true,
      caFile: resolve("certs/ca.pem"),
      sasl: "scram-sha-512"
    })
    expect(parseLogUrl("kafkas://a:1,b:2?cert=/c.pem&key=/k.pem&partitions=6")).toMatchObject({ brokers: ["a:1", "b:2"], certFile: "/c.pem", keyFile: "/k.pem", partitions: 6, tls: true })
    // SASL without TLS (SASL_PLAINTEXT) is allowed: the URL says so
    expect(parseLogUrl("kafka://a:1?sasl=plain")).toEqual({ kind: "kafka", brokers: ["a:1"], sasl: "plain" })
    // an '@' inside a file path is not a credential
    expect(parseLogUrl("kafkas://a:1?ca=/home/ops@corp/ca.pem")).toMatchObject({ caFile: "/home/ops@corp/ca.pem" })
  })

  it.each([
    ["kafkas://a:1?tls=0", /kafkas:\/\/ is TLS; tls=0 contradicts it/],
    ["kafka://a:1?tls=0&ca=/ca.pem", /tls=0 contradicts them/],
    ["kafka://a:1?tls=maybe", /tls must be 1 or 0/],
    ["kafkas://a:1?cert=/c.pem", /cert and key go together/],
    ["kafkas://a:1?key=/k.pem", /cert and key go together/],
    ["kafkas://a:1?ca=", /ca must name a PEM file/],
    ["kafkas://a:1?sasl=gssapi", /sasl must be one of plain, scram-sha-256, scram-sha-512/],
    ["kafkas://a:1?sasl=plain&sasl=plain", /sasl is given more than once/]
  ])("refuses %s", (url, message) => {
    expect(() => parseLogUrl(url)).toThrow(message)
  })

  it.each([
    `kafka://user:${SECRET}@a:9092`,
    `kafkas://a:1,user:${SECRET}@b:2?sasl=plain`,
    `kafka://user:p/${SECRET}@a:9092`,
    `kafka://user:p?${SECRET}@a:9092`,
    `kafkas://a:9092?sasl=plain&x=u:${SECRET}@y`
  ])("refuses credentials in the URL without echoing them: %s", (url) => {
    const e = thrown(() => parseLogUrl(url))
    expect(e.message).toMatch(/^log 'kafkas?:\/\/\*\*\*@…': credentials never go in the log URL: set JOBLEDGER_KAFKA_USERNAME and JOBLEDGER_KAFKA_PASSWORD/)
    expect(e.message).not.toContain(SECRET)
    expect(e.message).not.toContain("user:")
  })

  it.each(["password", "username", "sasl.password", "pass", "token", "secret"])("refuses ?%s= as a parameter, naming where credentials go and not the value", (name) => {
    const e = thrown(() => parseLogUrl(`kafkas://a:1?sasl=plain&${name}=${SECRET}`))
    expect(e.message).toMatch(new RegExp(`'${name.replace(".", "\\.")}' is not a parameter: credentials never go in the log URL`))
    expect(e.message).not.toContain(SECRET)
  })

  it("displayLogUrl hides what may be a secret and nothing else", () => {
    expect(displayLogUrl("kafkas://a:1?sasl=plain&ca=/x/ca.pem&partitions=3")).toBe("kafkas://a:1?sasl=plain&ca=/x/ca.pem&partitions=3")
    expect(displayLogUrl(`kafkas://a:1?sasl=plain&pw=${SECRET}`)).toBe("kafkas://a:1?sasl=plain&pw=***")
    expect(displayLogUrl(`kafkas://a:1?sasl=${SECRET}`)).toBe("kafkas://a:1?sasl=***")
    expect(displayLogUrl(`kafka://u:${SECRET}@a:1`)).toBe("kafka://***@…")
    expect(displayLogUrl(`postgres://u:${SECRET}@db/jobs`)).toBe("postgres://***@db/jobs")
    expect(displayLogUrl("sqlite:/data/ops@corp/jobs.db")).toBe("sqlite:/data/ops@corp/jobs.db")
    // unknown parameter names are shown (they are ours to explain), their values never
    expect(thrown(() => parseLogUrl(`kafka://a:1?partition=${SECRET}`)).message).toBe(
      "log 'kafka://a:1?partition=***': unknown parameter 'partition' (kafka takes replication, partitions, retainMs, tls, ca, cert, key, sasl)"
    )
  })
})

describe("the kafka option", () => {
  it.each([
    [{ brokers: ["a:1"] }, /^kafka\.brokers: the brokers come from the log URL/],
    [{ ssll: true }, /^kafka: unknown option 'ssll' \(known: clientId, ssl, sasl,/],
    [{ sasl: { mechanism: "aws" } }, /^kafka\.sasl\.mechanism must be one of plain, scram-sha-256, scram-sha-512$/],
    [{ sasl: { username: "u" } }, /^kafka\.sasl\.username and kafka\.sasl\.password go together/],
    [{ sasl: { username: "u", password: 1234567 } }, /^kafka\.sasl\.password must be a non-empty string$/],
    [{ sasl: { username: "u", password: "" } }, /^kafka\.sasl\.password must be a non-empty string$/],
    [{ sasl: { accessKeyId: SECRET } }, /unknown option 'accessKeyId'.*AWS IAM and OAUTHBEARER are not supported/],
    [{ ssl: { ca: 42 } }, /^kafka\.ssl\.ca must be PEM text, a Buffer, or an array of them$/],
    [{ ssl: { cert: "x" } }, /^kafka\.ssl\.cert and kafka\.ssl\.key go together$/],
    [{ ssl: { rejectUnauthorized: "no" } }, /^kafka\.ssl\.rejectUnauthorized must be true or false$/],
    [{ ssl: "yes" }, /^kafka\.ssl must be true, false or an object/],
    [{ requestTimeout: 0 }, /^kafka\.requestTimeout must be a whole number of ms from 1/],
    [{ connectionTimeout: 1.5 }, /^kafka\.connectionTimeout must be a whole number of ms/],
    [{ clientId: "has space" }, /^kafka\.clientId must be 1–255 printable characters without spaces$/],
    ["kafka", /^kafka must be an object/]
  ])("refuses %j with a message that names the setting", (option, message) => {
    const e = thrown(() => validateKafkaOptions(option))
    expect(e.message).toMatch(message)
    expect(e.message).not.toContain(SECRET)
    expect(e.message).not.toContain("1234567")
  })

  it("JobQueue turns bad Kafka settings into InvalidOptionErrors at construction, on every backend", () => {
    for (const log of ["memory:", "kafka://127.0.0.1:1"]) {
      const e = thrown(() => new JobQueue("q", { log, kafka: { sasl: { mechanism: "gssapi" } } } as unknown as QueueOptions))
      expect(e).toBeInstanceOf(InvalidOptionError)
      expect(e.message).toMatch(/kafka\.sasl\.mechanism must be one of/)
    }
    const e = thrown(() => new JobQueue("q", { log: "kafkas://127.0.0.1:1?sasl=scram-sha-256", kafka: { sasl: { username: "u", password: SECRET } }, kafak: {} } as QueueOptions))
    expect(e.message).toMatch(/unknown option 'kafak'/)
  })
})

describe("resolving URL + option + environment into a connection", () => {
  const location = (url: string) => parseLogUrl(url) as KafkaLocation
  const resolveWith = (url: string, option?: Parameters<typeof resolveKafkaConnection>[1], env: Record<string, string> = {}) =>
    resolveKafkaConnection(location(url), option, env)

  it("plaintext by default; kafkas:// is TLS with the system CAs; ?ca= replaces them with the file's", () => {
    const plain = resolveWith("kafka://a:1")
    expect(plain).toMatchObject({ url: "kafka://a:1", ssl: undefined, sasl: undefined, clientId: "jobledger" })
    expect(resolveWith("kafkas://a:1")).toMatchObject({ url: "kafkas://a:1", ssl: {} })
    const withCa = resolveWith(`kafkas://a:1,b:2?ca=${caFile}`)
    expect(withCa.url).toBe("kafkas://a:1,b:2")
    expect(String(withCa.ssl?.ca)).toBe(CA_PEM)
    expect(resolveWith("kafka://a:1", { ssl: true }).ssl).toEqual({})
    expect(resolveWith("kafka://a:1", { ssl: { ca: CA_PEM, servername: "kafka.internal" }, clientId: "billing" })).toMatchObject({
      ssl: { ca: [CA_PEM], servername: "kafka.internal" },
      clientId: "billing"
    })
  })

  it("credentials: the option's, else the environment's, only when a mechanism is asked for", () => {
    const env = { JOBLEDGER_KAFKA_USERNAME: "env-user", JOBLEDGER_KAFKA_PASSWORD: "env-password" }
    expect(resolveWith("kafkas://a:1?sasl=scram-sha-256", undefined, env).sasl).toEqual({ mechanism: "scram-sha-256", username: "env-user", password: "env-password" })
    expect(resolveWith("kafkas://a:1?sasl=plain", { sasl: { username: "opt", password: "opt-password" } }, env).sasl).toEqual({ mechanism: "plain", username: "opt", password: "opt-password" })
    expect(resolveWith("kafkas://a:1", { sasl: { mechanism: "scram-sha-512" } }, env).sasl?.mechanism).toBe("scram-sha-512")
    // credentials in the environment alone do not turn SASL on
    expect(resolveWith("kafkas://a:1", undefined, env).sasl).toBeUndefined()
  })

  it.each([
    ["kafkas://a:1?sasl=scram-sha-512", undefined, {}, /sasl=scram-sha-512 needs a username and password, and JOBLEDGER_KAFKA_USERNAME and JOBLEDGER_KAFKA_PASSWORD are not set: set JOBLEDGER_KAFKA_USERNAME/],
    ["kafkas://a:1?sasl=plain", undefined, { JOBLEDGER_KAFKA_USERNAME: "u" }, /and JOBLEDGER_KAFKA_PASSWORD is not set/],
    ["kafkas://a:1", { sasl: { username: "u", password: SECRET } }, {}, /kafka\.sasl needs a mechanism: \?sasl=scram-sha-512/],
    ["kafkas://a:1?sasl=plain", { sasl: { mechanism: "scram-sha-256" as const } }, {}, /sasl=plain in the URL contradicts kafka\.sasl\.mechanism 'scram-sha-256'/],
    ["kafka://a:1?tls=0", { ssl: true }, {}, /tls=0 in the URL contradicts kafka\.ssl/],
    ["kafkas://a:1", { ssl: false }, {}, /the URL asks for TLS .* and kafka\.ssl is false/],
    [`kafkas://a:1?ca=${caFile}`, { ssl: { ca: CA_PEM } }, {}, /ca is given twice \(\?ca= in the URL and kafka\.ssl\.ca\)/],
    ["kafkas://a:1?ca=/nonexistent/ca.pem", undefined, {}, /cannot read the ca file \/nonexistent\/ca\.pem \(ENOENT\)/],
    [`kafkas://a:1?ca=${notPem}`, undefined, {}, /the ca file .*not-a-cert\.pem holds no PEM certificate/],
    ["kafkas://a:1", { ssl: { cert: CA_PEM, key: "not a key" } }, {}, /the TLS settings are not usable: /]
  ])("refuses %s with %j (env %j)", (url, option, env, message) => {
    const e = thrown(() => resolveWith(url, option, env as Record<string, string>))
    expect(e.message).toMatch(message)
    expect(e.message).not.toContain(SECRET)
  })
})

describe("secrets are scrubbed from what a driver says", () => {
  afterEach(() => {
    delete process.env.JOBLEDGER_KAFKA_PASSWORD
  })

  it("a password is known once its settings are resolved, and JOBLEDGER_KAFKA_PASSWORD always", () => {
    const fresh = `resolved-${randomUUID()}`
    expect(scrub(`x ${fresh} y`)).toBe(`x ${fresh} y`)
    resolveKafkaConnection({ kind: "kafka", brokers: ["a:1"], sasl: "plain" }, { sasl: { username: "u", password: fresh } }, {})
    expect(scrub(`x ${fresh} y`)).toBe("x *** y")
    process.env.JOBLEDGER_KAFKA_PASSWORD = `env-${SECRET}`
    expect(scrub(`auth with env-${SECRET}!`)).toBe("auth with ***!")
  })

  it("toLogError: the message and the whole cause chain are scrubbed, driver fields dropped, classification kept", () => {
    registerSecret(SECRET)
    // a kafkajs-shaped failure that echoes configuration at every level
    const root = Object.assign(new Error(`SASL PLAIN authentication failed for ${SECRET}`), {
      name: "KafkaJSSASLAuthenticationError",
      retriable: false,
      request: { username: "u", password: SECRET }
    })
    const wrapper = Object.assign(new Error(`retries exceeded: ${SECRET}`), { name: "KafkaJSNonRetriableError", retriable: false, cause: root, config: { sasl: { password: SECRET } } })
    const error = toLogError(["a:1"], "connecting", wrapper)
    expect(error.retryable).toBe(false)
    expect(error.message).toMatch(/^kafka:\/\/a:1: connecting failed: retries exceeded: \*\*\* \(SASL PLAIN authentication failed for \*\*\*\) — check the username and password/)
    const shown = `${error.message}\n${inspect(error, { depth: 20, showHidden: true })}\n${JSON.stringify(error)}`
    expect(shown).not.toContain(SECRET)
    const cause = error.cause as { name: string; cause: { name: string; retriable: boolean } }
    expect(cause.name).toBe("KafkaJSNonRetriableError")
    expect(cause.cause).toMatchObject({ name: "KafkaJSSASLAuthenticationError", retriable: false })
    expect(isTransient(error)).toBe(false)
    // a plain connection failure stays retryable through the copy
    const refused = toLogError(["a:1"], "connecting", Object.assign(new Error("connect ECONNREFUSED"), { name: "KafkaJSConnectionError", code: "ECONNREFUSED", retriable: true }))
    expect(refused.retryable).toBe(true)
    expect(isTransient(scrubError(refused.cause))).toBe(true)
  })

  it("a certificate that does not verify is not retryable, and the message says to give the CA", () => {
    const tlsError = Object.assign(new Error("Connection error: self-signed certificate in certificate chain"), { name: "KafkaJSConnectionError", code: "SELF_SIGNED_CERT_IN_CHAIN", retriable: true })
    const wrapped = Object.assign(new Error(tlsError.message), { name: "KafkaJSNumberOfRetriesExceeded", retriable: false, cause: tlsError })
    const error = toLogError("kafkas://a:1", "connecting", wrapped)
    expect(error.retryable).toBe(false)
    expect(error.message).toBe(
      "kafkas://a:1: connecting failed: Connection error: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN) — the broker's certificate is not trusted: give its CA with ?ca=<file.pem> (or kafka.ssl.ca)"
    )
  })
})

describe("--kafka-config <file.json>", () => {
  it("loads and checks the settings; a file that is not JSON is reported by position, never quoted", () => {
    const good = join(DIR, "good.json")
    writeFileSync(good, JSON.stringify({ clientId: "ops", sasl: { mechanism: "scram-sha-512", username: "u", password: SECRET } }))
    expect(loadKafkaConfig(good)).toEqual({ clientId: "ops", sasl: { mechanism: "scram-sha-512", username: "u", password: SECRET } })
    expect(loadKafkaConfig(undefined)).toBeUndefined()

    const broken = join(DIR, "broken.json")
    writeFileSync(broken, `{\n  "sasl": { "username": "u", "password": ${SECRET} }\n}\n`)
    const e = thrown(() => loadKafkaConfig(broken))
    expect(e).toBeInstanceOf(UsageError)
    expect(e.message).toBe(`--kafka-config ${broken} is not valid JSON (unexpected token)`)
    const cut = join(DIR, "cut.json")
    writeFileSync(cut, `{\n  "sasl": { "username": "u", "password": "${SECRET}" `)
    expect(thrown(() => loadKafkaConfig(cut)).message).toMatch(/ is not valid JSON at line 2, column \d+ \((expected [a-z ',}]+|unexpected end of json input)\)$/)
    expect(thrown(() => loadKafkaConfig(cut)).message).not.toContain(SECRET)

    const wrong = join(DIR, "wrong.json")
    writeFileSync(wrong, JSON.stringify({ sasl: { username: "u", password: 12345678 } }))
    expect(thrown(() => loadKafkaConfig(wrong)).message).toBe(`--kafka-config ${wrong}: sasl.password must be a non-empty string`)
    expect(thrown(() => loadKafkaConfig(join(DIR, "missing.json"))).message).toMatch(/cannot read it \(ENOENT\)/)
  })
})
