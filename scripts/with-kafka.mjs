/**
 * Brings up the Kafka brokers a command needs, runs it, tears the brokers down — shared by
 * `npm test` and `npm run bench`.
 *
 * The plain broker (KAFKA_BROKERS for the suites):
 * - KAFKA_BROKERS set: that broker is used as is.
 * - JOBLEDGER_SKIP_KAFKA=1: no broker; the command runs without Kafka (and says so).
 * - Otherwise a local single-node KRaft broker is started from Maven-resolved Apache Kafka
 *   jars (scripts/kafka-broker.mjs) and stopped when the command ends (a broker that was
 *   already running is used and left running).
 *
 * The secured broker (`{ secure: true }`, npm test): a second local broker whose client
 * listener is SASL_SSL (startSecureBroker), in a temporary directory on free ports, started
 * in parallel with the plain one — also when KAFKA_BROKERS is set, since that broker is not
 * secured — and removed with its directory at the end. Its description (bootstrap, CA file,
 * the test user and its throwaway password) is a file named by JOBLEDGER_TEST_SECURE_KAFKA.
 * JOBLEDGER_TEST_SECURE_KAFKA already set: used as is. Without Java or keytool it is not
 * started and its suite skips, saying so.
 */
import fs from "node:fs"

const fail = (message) => {
  console.error(`\n${message}`)
  console.error("Set KAFKA_BROKERS=host:port to use another broker, or JOBLEDGER_SKIP_KAFKA=1 to run without Kafka.")
  process.exit(3)
}

/** The plain broker: { env, stop } (stop is a no-op for a broker we did not start). */
async function plainBroker(env) {
  if (env.KAFKA_BROKERS) {
    console.log(`\n== Kafka: using KAFKA_BROKERS=${env.KAFKA_BROKERS}`)
    return { env: {}, stop: async () => {} }
  }
  console.log("\n== Kafka: starting a local broker (npm run kafka:start)")
  const broker = await import("./kafka-broker.mjs")
  let bootstrap, reused
  try {
    ;({ bootstrap, reused } = await broker.startBroker({}))
  } catch (e) {
    // The default port is held by something else (another checkout's broker, say): the
    // command only needs *a* broker, so it gets one on a free port pair.
    if (!(e instanceof broker.KafkaBrokerError) || e.exitCode !== 2) throw e
    const port = await broker.freePorts(2)
    console.log(`${e.message}\n→ starting this checkout's broker on port ${port} instead`)
    ;({ bootstrap, reused } = await broker.startBroker({ port }))
  }
  console.log(`Kafka broker ready at ${bootstrap}${reused ? " (it was already running: it is left running)" : ""}`)
  return {
    env: { KAFKA_BROKERS: bootstrap },
    stop: async () => {
      if (reused) return
      console.log("\n== Kafka: stopping the local broker")
      await broker.stopBroker()
    }
  }
}

/** The SASL_SSL broker: { env, stop }; nothing when it cannot be made here (its suite says so). */
async function secureBroker(env) {
  if (env.JOBLEDGER_TEST_SECURE_KAFKA) {
    console.log(`\n== Kafka (SASL_SSL): using JOBLEDGER_TEST_SECURE_KAFKA=${env.JOBLEDGER_TEST_SECURE_KAFKA}`)
    return { env: {}, stop: async () => {} }
  }
  const broker = await import("./kafka-broker.mjs")
  const log = (msg) => process.stderr.write(`[kafka sasl_ssl] ${msg}\n`)
  console.log("\n== Kafka (SASL_SSL): starting a second local broker with a SASL_SSL listener")
  let started
  try {
    started = await broker.startSecureBroker({ log })
  } catch (e) {
    if (e instanceof broker.KafkaBrokerError && e.exitCode === 3) {
      console.log(`${e.message}\n→ no SASL_SSL broker: its suite (test/kafka-secure.int.test.ts) will be SKIPPED`)
      return { env: {}, stop: async () => {} }
    }
    throw e
  }
  console.log(`SASL_SSL broker ready at ${started.secure.bootstrap} (mTLS at ${started.secure.mtlsBootstrap})`)
  return {
    env: { JOBLEDGER_TEST_SECURE_KAFKA: started.infoFile },
    stop: async () => {
      console.log("\n== Kafka (SASL_SSL): stopping the secured broker and removing its directory")
      await broker.stopBroker({ dir: started.dir, log })
      fs.rmSync(started.dir, { recursive: true, force: true })
    }
  }
}

export async function withKafka(env, run, { secure = false } = {}) {
  if (env.JOBLEDGER_SKIP_KAFKA === "1" && !env.KAFKA_BROKERS) {
    console.log("\n== Kafka: JOBLEDGER_SKIP_KAFKA=1 — everything that needs Kafka is SKIPPED in this run")
    return run(env)
  }
  const wantSecure = secure && env.JOBLEDGER_SKIP_KAFKA !== "1"
  // both start at once: each spends most of its start waiting on a JVM
  const [plain, secured] = await Promise.allSettled([plainBroker(env), wantSecure ? secureBroker(env) : Promise.resolve(undefined)])
  if (plain.status === "rejected" || secured.status === "rejected") {
    if (plain.status === "fulfilled") await plain.value.stop().catch(() => {})
    if (secured.status === "fulfilled") await secured.value?.stop().catch(() => {})
    const e = plain.status === "rejected" ? plain.reason : secured.reason
    fail(e instanceof Error ? e.message : String(e))
  }
  try {
    return await run({ ...env, ...plain.value.env, ...(secured.value?.env ?? {}) })
  } finally {
    await Promise.all([plain.value.stop(), secured.value?.stop()])
  }
}
