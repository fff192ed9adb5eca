// A real, single-node Apache Kafka broker (KRaft, combined broker+controller) for
// jobledger's tests and local development, without Docker.
//
// Kafka's jars come from Maven Central through `mvn` (cached in ~/.m2, the resolved
// classpath in .kafka/<version>/classpath.txt); the broker runs as a detached JVM in its
// own process group, with its files under .kafka/run/ and its data under .kafka/data/.
//
// Used by scripts/kafka.mjs (the CLI) and importable from test setup code:
//   import { startBroker, stopBroker, restartBroker } from "../scripts/kafka-broker.mjs"

import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { makeTlsMaterial } from "./kafka-tls.mjs"

export const DEFAULT_KAFKA_VERSION = "3.9.1"
export const DEFAULT_KAFKA_PORT = 19092
export const INSTALL_HINT =
  "jobledger needs Java 17+ and Maven to run a local Kafka broker: apt-get install openjdk-17-jre-headless maven"

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** Where the resolved classpaths live (.kafka/<version>/), shared by every broker directory. */
const KAFKA_ROOT = path.resolve(process.env.JOBLEDGER_KAFKA_DIR ?? path.join(REPO_ROOT, ".kafka"))

/**
 * The files of one broker: `<dir>/run/` (pid, state, properties, logs) and `<dir>/data/`.
 * The default dir is KAFKA_ROOT (JOBLEDGER_KAFKA_DIR, else .kafka/); tests that stop or
 * restart a broker pass a dir (and port) of their own so they never touch the shared one.
 * The run dir is also the JVM's marker: a pid counts as "our broker" only for its own dir.
 */
function layout(dir) {
  const root = path.resolve(dir ?? KAFKA_ROOT)
  const runDir = path.join(root, "run")
  return {
    root,
    runDir,
    dataDir: path.join(root, "data"),
    pidFile: path.join(runDir, "kafka.pid"),
    stateFile: path.join(runDir, "broker.json"),
    serverLog: path.join(runDir, "server.log"), // the broker's own log (log4j)
    outLog: path.join(runDir, "kafka.out"), // the JVM's stdout/stderr
    propsFile: path.join(runDir, "server.properties"),
    runMarker: `-Djobledger.kafka.run=${runDir}`
  }
}
const DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

/** exitCode: 3 = a tool is missing, 2 = port taken by something else, 1 = anything else. */
export class KafkaBrokerError extends Error {
  constructor(message, exitCode = 1) {
    super(message)
    this.name = "KafkaBrokerError"
    this.exitCode = exitCode
  }
}

const defaultLog = (msg) => process.stderr.write(`[kafka] ${msg}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function resolveVersion(version) {
  const v = version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION
  if (!/^\d+\.\d+\.\d+$/.test(v)) throw new KafkaBrokerError(`bad Kafka version '${v}' (expected e.g. 3.9.1 or 4.1.0)`)
  const major = Number(v.split(".")[0])
  if (major !== 3 && major !== 4) throw new KafkaBrokerError(`Kafka ${v} is not supported here (3.9.x or 4.x only)`)
  return v
}

function resolvePort(port) {
  const p = Number(port ?? process.env.KAFKA_PORT ?? DEFAULT_KAFKA_PORT)
  if (!Number.isInteger(p) || p < 1024 || p > 65534) throw new KafkaBrokerError(`bad Kafka port '${port ?? process.env.KAFKA_PORT}'`)
  return p
}

const majorOf = (version) => Number(version.split(".")[0])

// ---------------------------------------------------------------- tools

function checkJava() {
  const r = spawnSync("java", ["-version"], { encoding: "utf8" })
  if (r.error) throw new KafkaBrokerError(`'java' not found. ${INSTALL_HINT}`, 3)
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`)
  const major = m ? (m[1] === "1" ? Number(m[2]) : Number(m[1])) : 0
  if (major < 17) throw new KafkaBrokerError(`found Java ${major || "(unknown version)"}, need 17+. ${INSTALL_HINT}`, 3)
}

function checkKeytool() {
  const r = spawnSync("keytool", ["-help"], { encoding: "utf8" })
  if (r.error) throw new KafkaBrokerError(`'keytool' not found (it comes with the JDK). ${INSTALL_HINT}`, 3)
}

function checkMaven() {
  const r = spawnSync("mvn", ["-v"], { encoding: "utf8" })
  if (r.error) throw new KafkaBrokerError(`'mvn' not found. ${INSTALL_HINT}`, 3)
}

// ---------------------------------------------------------------- classpath

function pomFor(version) {
  // 3.9's core has no logging backend among its runtime deps: add reload4j (log4j 1 API).
  // 4.x logs through log4j2 but leaves the backend to the distribution: add it.
  const logging =
    majorOf(version) >= 4
      ? [
          ["org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"],
          ["org.apache.logging.log4j", "log4j-core", "2.24.3"]
        ]
      : [["org.slf4j", "slf4j-reload4j", "1.7.36"]]
  const deps = [["org.apache.kafka", "kafka_2.13", version], ...logging]
    .map(
      ([g, a, v]) =>
        `    <dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`
    )
    .join("\n")
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka-broker.mjs: resolves a Kafka broker's runtime classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.jobledger</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
${deps}
  </dependencies>
</project>
`
}

/**
 * Resolves kafka_2.13:<version> and a logging backend with Maven; returns the classpath.
 * Skips Maven when .kafka/<version>/classpath.txt exists, matches the pom and its jars exist.
 */
export function resolveClasspath(version, { log = defaultLog } = {}) {
  version = resolveVersion(version)
  const dir = path.join(KAFKA_ROOT, version)
  const pomFile = path.join(dir, "pom.xml")
  const cpFile = path.join(dir, "classpath.txt")
  const pom = pomFor(version)
  fs.mkdirSync(dir, { recursive: true })
  if (!fs.existsSync(pomFile) || fs.readFileSync(pomFile, "utf8") !== pom) {
    fs.writeFileSync(pomFile, pom)
    fs.rmSync(cpFile, { force: true })
  }
  if (fs.existsSync(cpFile)) {
    const cp = fs.readFileSync(cpFile, "utf8").trim()
    if (cp && cp.split(path.delimiter).every((jar) => fs.existsSync(jar))) return cp
  }
  checkMaven()
  log(`resolving org.apache.kafka:kafka_2.13:${version} with Maven (first run only)...`)
  const t0 = Date.now()
  const tmp = `${cpFile}.tmp`
  const r = spawnSync(
    "mvn",
    [
      "-B",
      "-q",
      "-f",
      pomFile,
      `${DEPENDENCY_PLUGIN}:build-classpath`,
      `-Dmdep.outputFile=${tmp}`,
      "-Dmdep.includeScope=runtime"
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }
  )
  if (r.error || r.status !== 0 || !fs.existsSync(tmp)) {
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n")
    throw new KafkaBrokerError(
      `Maven could not resolve org.apache.kafka:kafka_2.13:${version} (is this version on Maven Central?)\n${out}`
    )
  }
  fs.renameSync(tmp, cpFile)
  log(`resolved in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return fs.readFileSync(cpFile, "utf8").trim()
}

// ---------------------------------------------------------------- config files

/**
 * The listeners of a broker. Plain: PLAINTEXT on `port`, CONTROLLER on port+1. Secured
 * (`security` given): SASL_SSL on `port` (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN), CONTROLLER
 * on port+1, INTERNAL (PLAINTEXT, loopback, inter-broker only) on port+2 and MTLS (SSL with
 * ssl.client.auth=required, no SASL) on port+3.
 */
function listenerProperties(port, security) {
  const ctrl = port + 1
  if (!security)
    return {
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${ctrl}`,
      "advertised.listeners": `PLAINTEXT://127.0.0.1:${port}`,
      "inter.broker.listener.name": "PLAINTEXT",
      "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    }
  const { tls, username, password } = security
  const endpoints = `SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${port + 2},MTLS://127.0.0.1:${port + 3}`
  return {
    listeners: `${endpoints},CONTROLLER://127.0.0.1:${ctrl}`,
    "advertised.listeners": endpoints,
    "inter.broker.listener.name": "INTERNAL",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
    // SCRAM credentials live in the cluster metadata (StorageTool format --add-scram)
    "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    // PLAIN's users are the JAAS entries user_<name>="<password>"
    "listener.name.sasl_ssl.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required user_${username}="${password}";`,
    "listener.name.mtls.ssl.client.auth": "required",
    "ssl.keystore.type": "PKCS12",
    "ssl.keystore.location": tls.keystoreFile,
    "ssl.keystore.password": tls.storePassword,
    "ssl.key.password": tls.storePassword,
    "ssl.truststore.type": "PEM",
    "ssl.truststore.location": tls.caFile
  }
}

function serverProperties(L, version, port, security) {
  const ctrl = port + 1
  const props = {
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.quorum.voters": `1@127.0.0.1:${ctrl}`,
    ...listenerProperties(port, security),
    "controller.listener.names": "CONTROLLER",
    "log.dirs": L.dataDir,
    "num.partitions": 1,
    "auto.create.topics.enable": false,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 1,
    "group.initial.rebalance.delay.ms": 0,
    "num.network.threads": 2,
    "num.io.threads": 4,
    "log.retention.hours": 24
  }
  if (majorOf(version) >= 4) {
    props["share.coordinator.state.topic.replication.factor"] = 1
    props["share.coordinator.state.topic.min.isr"] = 1
  }
  return (
    `# Generated by scripts/kafka-broker.mjs (Kafka ${version}, single-node KRaft${security ? ", SASL_SSL" : ""})\n` +
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n") +
    "\n"
  )
}

function loggingConfig(L, version) {
  if (majorOf(version) >= 4) {
    const file = path.join(L.runDir, "log4j2.properties")
    fs.writeFileSync(
      file,
      `# Generated by scripts/kafka-broker.mjs
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${L.serverLog}
appender.file.filePattern = ${L.serverLog}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
`
    )
    return [`-Dlog4j2.configurationFile=${file}`]
  }
  const file = path.join(L.runDir, "log4j.properties")
  fs.writeFileSync(
    file,
    `# Generated by scripts/kafka-broker.mjs
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${L.serverLog}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
`
  )
  return [`-Dlog4j.configuration=file:${file}`]
}

// ---------------------------------------------------------------- process state

function readState(L) {
  try {
    return JSON.parse(fs.readFileSync(L.stateFile, "utf8"))
  } catch {
    return undefined
  }
}

function readPid(L) {
  try {
    const pid = Number(fs.readFileSync(L.pidFile, "utf8").trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** true when pid is alive (not a zombie) and, where /proc exists, is our broker's JVM. */
function isOurBroker(L, pid) {
  if (!pid) return false
  try {
    process.kill(pid, 0)
  } catch (e) {
    if (e.code !== "EPERM") return false
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    if (/\) Z /.test(stat)) return false
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    return cmdline.includes(L.runMarker) && cmdline.includes("kafka.Kafka")
  } catch {
    return !fs.existsSync("/proc/self") // no /proc: trust the pid file
  }
}

function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once("error", () => resolve(false))
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, "utf8").trimEnd().split("\n")
    return text.slice(-lines).join("\n")
  } catch {
    return "(no file)"
  }
}

function logTails(L) {
  return `--- ${path.relative(process.cwd(), L.serverLog)} (last lines) ---\n${tail(L.serverLog)}\n--- ${path.relative(process.cwd(), L.outLog)} (last lines) ---\n${tail(L.outLog, 20)}`
}

// ---------------------------------------------------------------- health

/**
 * One readiness probe: a kafkajs admin connects, lists topics and sees our broker.
 * `ssl` / `sasl` (kafkajs options) probe a secured listener with its credentials.
 */
export async function probe(bootstrap, { timeoutMs = 3000, ssl, sasl } = {}) {
  const { Kafka, logLevel } = (await import("kafkajs")).default
  const kafka = new Kafka({
    clientId: "jobledger-kafka-probe",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 2000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl: { ...sasl } } : {})
  })
  const admin = kafka.admin({ retry: { retries: 0 } })
  // Bounded by kafkajs's own connection and request timeouts (no Promise.race: a probe that
  // connected late would keep a socket, and the CLI process, alive).
  try {
    await admin.connect()
    await admin.listTopics()
    const cluster = await admin.describeCluster()
    return cluster.brokers.length > 0
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

async function waitReady(L, bootstrap, pid, deadline, exited, client = {}) {
  while (Date.now() < deadline) {
    if (exited.code !== undefined || !isOurBroker(L, pid)) return "exited"
    if (await probe(bootstrap, { timeoutMs: Math.max(500, Math.min(3000, deadline - Date.now())), ...client })) return "ready"
    await sleep(250)
  }
  return "timeout"
}

// ---------------------------------------------------------------- start / stop

/** The Kafka cluster id format: base64url of 16 random bytes, no padding, not starting with '-'. */
function clusterId() {
  for (;;) {
    const id = randomBytes(16).toString("base64url")
    if (!id.startsWith("-")) return id
  }
}

/**
 * Starts the broker (or reuses ours if it is already running and healthy).
 * fresh=true (default) wipes <dir>/data first; fresh=false keeps it (used by restartBroker).
 * dir: the broker's own directory (default .kafka/, or JOBLEDGER_KAFKA_DIR): give another dir
 * and port to run a second, private broker next to the shared one.
 */
export async function startBroker({
  version,
  port,
  dir,
  fresh = true,
  timeoutMs = Number(process.env.KAFKA_START_TIMEOUT_MS ?? 120_000),
  log = defaultLog,
  security
} = {}) {
  version = resolveVersion(version)
  port = resolvePort(port)
  const bootstrap = `127.0.0.1:${port}`
  const t0 = Date.now()
  const L = layout(dir)
  /** How the readiness probe connects: to a secured broker, over SASL_SSL with its user. */
  const client = security ? probeClient(security) : {}
  const ports = security ? [port, port + 1, port + 2, port + 3] : [port, port + 1]

  // Already running?
  const state = readState(L)
  const runningPid = readPid(L)
  if (isOurBroker(L, runningPid)) {
    if (state?.port !== port || state?.version !== version) {
      throw new KafkaBrokerError(
        `jobledger's Kafka broker is already running as ${state?.version ?? "?"} on 127.0.0.1:${state?.port ?? "?"} (pid ${runningPid}); ` +
          `stop it first (node scripts/kafka.mjs stop) to run ${version} on port ${port}`
      )
    }
    const outcome = await waitReady(L, bootstrap, runningPid, Date.now() + timeoutMs, {}, client)
    if (outcome === "ready") {
      log(`already running: kafka ${version} on ${bootstrap} (pid ${runningPid})`)
      return { bootstrap, port, version, pid: runningPid, reused: true, dataDir: L.dataDir, logFile: L.serverLog }
    }
    throw new KafkaBrokerError(
      `jobledger's Kafka broker (pid ${runningPid}) is running but not answering on ${bootstrap}; run 'node scripts/kafka.mjs stop' and start again\n${logTails(L)}`
    )
  }
  fs.rmSync(L.pidFile, { force: true })

  checkJava()
  for (const p of ports) {
    if (!(await portFree(p))) {
      throw new KafkaBrokerError(
        `port ${p} on 127.0.0.1 is in use by another process (not jobledger's Kafka broker); ` +
          `free it or choose another port (the broker uses ports ${port}..${ports[ports.length - 1]})`,
        2
      )
    }
  }
  const cp = resolveClasspath(version, { log })

  fs.mkdirSync(L.runDir, { recursive: true })
  const keep = !fresh && state?.version === version && fs.existsSync(path.join(L.dataDir, "meta.properties"))
  if (!fresh && !keep) log(`no reusable data for kafka ${version} in ${L.dataDir}: starting with a fresh one`)
  if (!keep) {
    fs.rmSync(L.dataDir, { recursive: true, force: true })
    for (const f of fs.readdirSync(L.runDir)) if (f.startsWith("server.log") || f === "kafka.out") fs.rmSync(path.join(L.runDir, f), { force: true })
  }
  fs.mkdirSync(L.dataDir, { recursive: true })
  fs.writeFileSync(L.propsFile, serverProperties(L, version, port, security), { mode: 0o600 })
  const jvm = [
    L.runMarker,
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
    `-Dkafka.logs.dir=${L.runDir}`,
    ...loggingConfig(L, version)
  ]

  if (!keep) {
    const id = clusterId()
    // A short-lived JVM: C1 only and the serial GC start it about 2 s faster than the broker's flags.
    const tool = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", ...loggingConfig(L, version)]
    // SCRAM users are written into the cluster metadata by the format itself (KIP-900)
    const scram = security ? SCRAM_MECHANISMS.flatMap((m) => ["--add-scram", `${m}=[name=${security.username},password=${security.password}]`]) : []
    const r = spawnSync("java", [...tool, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", id, "-c", L.propsFile, ...scram], {
      encoding: "utf8",
      cwd: L.runDir
    })
    if (r.status !== 0) {
      throw new KafkaBrokerError(`kafka.tools.StorageTool format failed (exit ${r.status})\n${r.stdout}${r.stderr}`)
    }
    log(`formatted ${L.dataDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }

  const out = fs.openSync(L.outLog, "a")
  fs.writeSync(out, `=== ${new Date().toISOString()} starting kafka ${version} on ${bootstrap} (${keep ? "kept" : "fresh"} data) ===\n`)
  const child = spawn("java", [...jvm, "-cp", cp, "kafka.Kafka", L.propsFile], {
    cwd: L.runDir,
    detached: true, // own process group (setsid): stopBroker signals the whole group
    stdio: ["ignore", out, out]
  })
  fs.closeSync(out)
  const exited = {}
  child.on("exit", (code, signal) => {
    exited.code = code ?? signal
  })
  child.on("error", (e) => {
    exited.code = e.message
  })
  child.unref()
  const pid = child.pid
  if (!pid) throw new KafkaBrokerError(`could not start java\n${logTails(L)}`)
  fs.writeFileSync(L.pidFile, `${pid}\n`)
  fs.writeFileSync(
    L.stateFile,
    JSON.stringify({ pid, version, port, bootstrap, dataDir: L.dataDir, logFile: L.serverLog, startedAt: new Date().toISOString() }, null, 2) + "\n"
  )
  log(`started kafka ${version} (pid ${pid}), waiting for ${bootstrap}...`)

  const outcome = await waitReady(L, bootstrap, pid, Date.now() + timeoutMs, exited, client)
  if (outcome !== "ready") {
    const why =
      outcome === "exited"
        ? `the broker exited during startup (${exited.code ?? "see logs"})`
        : `the broker did not answer on ${bootstrap} within ${Math.round(timeoutMs / 1000)} s`
    await killGroup(L, pid, 10_000)
    fs.rmSync(L.pidFile, { force: true })
    throw new KafkaBrokerError(`${why}\n${logTails(L)}`)
  }
  log(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${bootstrap}`)
  return { bootstrap, port, version, pid, reused: false, dataDir: L.dataDir, logFile: L.serverLog }
}

async function killGroup(L, pid, timeoutMs) {
  const signal = (sig) => {
    try {
      process.kill(-pid, sig)
    } catch {
      try {
        process.kill(pid, sig)
      } catch {}
    }
  }
  signal("SIGTERM")
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!isOurBroker(L, pid)) return "terminated"
    await sleep(200)
  }
  signal("SIGKILL")
  for (let i = 0; i < 50 && isOurBroker(L, pid); i++) await sleep(100)
  return "killed"
}

/** Stops our broker of `dir` (SIGTERM to its process group, SIGKILL after timeoutMs). Keeps its data. */
export async function stopBroker({ dir, timeoutMs = 30_000, log = defaultLog } = {}) {
  const L = layout(dir)
  const pid = readPid(L)
  if (!isOurBroker(L, pid)) {
    fs.rmSync(L.pidFile, { force: true })
    return { stopped: false }
  }
  const t0 = Date.now()
  const how = await killGroup(L, pid, timeoutMs)
  fs.rmSync(L.pidFile, { force: true })
  log(`stopped kafka (pid ${pid}, ${how}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return { stopped: true, pid, how }
}

/**
 * Stops and starts the broker of `dir` again with the same version, port and data (for
 * broker-restart tests), after `downMs` without a broker (default 0).
 */
export async function restartBroker({ dir, timeoutMs, downMs = 0, log = defaultLog } = {}) {
  const L = layout(dir)
  const state = readState(L)
  if (!state) throw new KafkaBrokerError("no broker to restart: run startBroker() / 'node scripts/kafka.mjs start' first")
  await stopBroker({ dir, log })
  if (downMs > 0) await sleep(downMs)
  return startBroker({ version: state.version, port: state.port, dir, fresh: false, timeoutMs, log })
}

// ---------------------------------------------------------------- secured broker

/** The SCRAM mechanisms the secured broker's user is created for. */
export const SCRAM_MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]

/** kafkajs options that reach a secured broker's SASL_SSL listener as its user. */
function probeClient(security) {
  return {
    ssl: { ca: [fs.readFileSync(security.tls.caFile, "utf8")] },
    sasl: { mechanism: "scram-sha-256", username: security.username, password: security.password }
  }
}

/** A port p such that p..p+n-1 are all free on 127.0.0.1 (from the ephemeral range). */
export async function freePorts(n) {
  const listen = (port) =>
    new Promise((resolve) => {
      const srv = net.createServer()
      srv.once("error", () => resolve(undefined))
      srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
        const got = srv.address().port
        srv.close(() => resolve(got))
      })
    })
  for (;;) {
    const port = await listen(0)
    if (port === undefined || port >= 65_000) continue
    let ok = true
    for (let i = 1; i < n && ok; i++) ok = (await listen(port + i)) !== undefined
    if (ok) return port
  }
}

/**
 * Starts a single-node broker like startBroker, whose client listener is SASL_SSL, as
 * managed clusters run it:
 * - TLS: a CA, the broker's keystore and a client certificate made with keytool into
 *   <dir>/tls/ (scripts/kafka-tls.mjs);
 * - SASL: SCRAM-SHA-256 and SCRAM-SHA-512 credentials of one user written into the cluster
 *   metadata by `StorageTool format --add-scram`, and the same user for PLAIN (JAAS);
 * - ports: SASL_SSL `port`, CONTROLLER port+1, INTERNAL port+2 (PLAINTEXT on loopback, for
 *   inter-broker traffic only), MTLS port+3 (SSL with a required client certificate).
 * `dir` defaults to a new temporary directory and `port` to a free run of four ports
 * (KAFKA_SECURE_PORT overrides it). The user's password is a fresh random one; it and the
 * file paths are in the result and in <dir>/run/secure.json, for tests.
 */
export async function startSecureBroker({ version, port, dir, timeoutMs, log = defaultLog } = {}) {
  checkJava()
  checkKeytool()
  const root = path.resolve(dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "jobledger-kafka-secure-")))
  const base = port ?? (process.env.KAFKA_SECURE_PORT ? resolvePort(process.env.KAFKA_SECURE_PORT) : await freePorts(4))
  const tls = await makeTlsMaterial(path.join(root, "tls"), { log })
  const username = "jobledger-test"
  const password = `pw-${randomBytes(16).toString("hex")}`
  const info = await startBroker({ version, port: base, dir: root, fresh: true, timeoutMs, log, security: { tls, username, password } })
  const secure = {
    bootstrap: info.bootstrap,
    mtlsBootstrap: `127.0.0.1:${base + 3}`,
    internalBootstrap: `127.0.0.1:${base + 2}`,
    caFile: tls.caFile,
    wrongCaFile: tls.wrongCaFile,
    clientCertFile: tls.clientCertFile,
    clientKeyFile: tls.clientKeyFile,
    username,
    password,
    mechanisms: ["plain", "scram-sha-256", "scram-sha-512"],
    version: info.version
  }
  const infoFile = path.join(layout(root).runDir, "secure.json")
  fs.writeFileSync(infoFile, JSON.stringify(secure, null, 2) + "\n", { mode: 0o600 })
  log(`SASL_SSL listener at ${secure.bootstrap} (user ${username}), mTLS listener at ${secure.mtlsBootstrap}`)
  return { ...info, dir: root, infoFile, secure }
}

/** { running, healthy, bootstrap, version, port, pid, rssBytes } of our broker (of `dir`). */
export async function brokerStatus({ dir } = {}) {
  const L = layout(dir)
  const state = readState(L)
  const pid = readPid(L)
  const port = state?.port ?? resolvePort()
  const bootstrap = `127.0.0.1:${port}`
  if (!isOurBroker(L, pid)) return { running: false, healthy: false, bootstrap, version: state?.version, port }
  const healthy = await probe(bootstrap, { timeoutMs: 3000 })
  return { running: true, healthy, bootstrap, version: state?.version, port, pid, rssBytes: rssBytes(pid) }
}

const DEFAULT_LAYOUT = layout()
/** Files of the default broker (.kafka/ or JOBLEDGER_KAFKA_DIR). */
export const paths = {
  root: DEFAULT_LAYOUT.root,
  runDir: DEFAULT_LAYOUT.runDir,
  dataDir: DEFAULT_LAYOUT.dataDir,
  serverLog: DEFAULT_LAYOUT.serverLog,
  outLog: DEFAULT_LAYOUT.outLog
}
