/**
 * Brings up the Kafka broker a command needs, runs it, tears the broker down — shared by
 * `npm test` and `npm run bench`.
 *
 * - KAFKA_BROKERS set: that broker is used as is.
 * - JOBLEDGER_SKIP_KAFKA=1: no broker; the command runs without Kafka (and says so).
 * - Otherwise a local single-node KRaft broker is started from Maven-resolved Apache Kafka
 *   jars (scripts/kafka-broker.mjs) and stopped when the command ends (a broker that was
 *   already running is used and left running).
 */
import net from "node:net"

/** A port p such that p and p+1 (the broker's controller) are both free on 127.0.0.1. */
async function freePortPair() {
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
    if (port !== undefined && port < 65_000 && (await listen(port + 1)) !== undefined) return port
  }
}

export async function withKafka(env, run) {
  if (env.KAFKA_BROKERS) {
    console.log(`\n== Kafka: using KAFKA_BROKERS=${env.KAFKA_BROKERS}`)
    return run(env)
  }
  if (env.JOBLEDGER_SKIP_KAFKA === "1") {
    console.log("\n== Kafka: JOBLEDGER_SKIP_KAFKA=1 — everything that needs Kafka is SKIPPED in this run")
    return run(env)
  }
  console.log("\n== Kafka: starting a local broker (npm run kafka:start)")
  const broker = await import("./kafka-broker.mjs")
  let bootstrap, reused
  try {
    try {
      ;({ bootstrap, reused } = await broker.startBroker({}))
    } catch (e) {
      // The default port is held by something else (another checkout's broker, say): the
      // command only needs *a* broker, so it gets one on a free port pair.
      if (!(e instanceof broker.KafkaBrokerError) || e.exitCode !== 2) throw e
      const port = await freePortPair()
      console.log(`${e.message}\n→ starting this checkout's broker on port ${port} instead`)
      ;({ bootstrap, reused } = await broker.startBroker({ port }))
    }
  } catch (e) {
    console.error(`\n${e instanceof Error ? e.message : e}`)
    console.error("Set KAFKA_BROKERS=host:port to use another broker, or JOBLEDGER_SKIP_KAFKA=1 to run without Kafka.")
    process.exit(3)
  }
  console.log(`Kafka broker ready at ${bootstrap}${reused ? " (it was already running: it is left running)" : ""}`)
  try {
    return await run({ ...env, KAFKA_BROKERS: bootstrap })
  } finally {
    if (!reused) {
      console.log("\n== Kafka: stopping the local broker")
      await broker.stopBroker()
    }
  }
}
