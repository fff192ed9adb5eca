#!/usr/bin/env node
/**
 * `npm test`: typecheck, bring up what the tests need, run every suite, tear down.
 *
 * - Kafka: when KAFKA_BROKERS is not set, a local single-node KRaft broker is started from
 *   Maven-resolved Apache Kafka jars (scripts/kafka-broker.mjs) and stopped at the end.
 *   JOBLEDGER_SKIP_KAFKA=1 runs without it (the Kafka suites then skip, loudly).
 * - Extra arguments go to vitest (e.g. `npm test -- test/queue`).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = (name) => join(root, "node_modules", ".bin", name)
const step = (title) => console.log(`\n== ${title}`)

step("typecheck (tsc --noEmit)")
const tsc = spawnSync(bin("tsc"), ["--noEmit", "-p", root], { stdio: "inherit" })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

const env = { ...process.env }
let stopBroker
if (env.KAFKA_BROKERS) {
  step(`Kafka: using KAFKA_BROKERS=${env.KAFKA_BROKERS}`)
} else if (env.JOBLEDGER_SKIP_KAFKA === "1") {
  step("Kafka: JOBLEDGER_SKIP_KAFKA=1 — the Kafka suites are SKIPPED in this run")
} else {
  step("Kafka: starting a local broker (npm run kafka:start)")
  const broker = await import("./kafka-broker.mjs")
  try {
    const { bootstrap } = await broker.startBroker({})
    env.KAFKA_BROKERS = bootstrap
    stopBroker = broker.stopBroker
    console.log(`Kafka broker ready at ${bootstrap}`)
  } catch (e) {
    console.error(`\n${e instanceof Error ? e.message : e}`)
    console.error("Set KAFKA_BROKERS=host:port to use another broker, or JOBLEDGER_SKIP_KAFKA=1 to skip the Kafka suites.")
    process.exit(3)
  }
}

step("tests (vitest run)")
const vitest = spawnSync(bin("vitest"), ["run", ...process.argv.slice(2)], { stdio: "inherit", env, cwd: root })
if (stopBroker !== undefined) {
  step("Kafka: stopping the local broker")
  await stopBroker()
}
process.exit(vitest.status ?? 1)
