#!/usr/bin/env node
// Local single-node Kafka broker (KRaft) for jobledger's tests, without Docker.
//
//   node scripts/kafka.mjs start [--keep-data]   starts (or reuses) the broker; the LAST stdout line is the bootstrap address
//   node scripts/kafka.mjs stop                  stops it (exit 0 if nothing was running)
//   node scripts/kafka.mjs restart               stop + start with the same version, port and data
//   node scripts/kafka.mjs status                running/stopped + address (exit 0 running, 1 stopped)
//
// Environment: KAFKA_VERSION (default 3.9.1), KAFKA_PORT (default 19092; the controller uses +1),
// KAFKA_START_TIMEOUT_MS (default 120000). Files: .kafka/<version>/ (pom, classpath), .kafka/run/
// (server.properties, server.log, kafka.out, kafka.pid), .kafka/data/ (the log dirs).
// Exit codes: 0 ok, 1 failure, 2 port taken by something else, 3 java or mvn missing.

import { KafkaBrokerError, brokerStatus, restartBroker, startBroker, stopBroker } from "./kafka-broker.mjs"

const [command, ...args] = process.argv.slice(2)

async function main() {
  switch (command) {
    case "start": {
      const { bootstrap } = await startBroker({ fresh: !args.includes("--keep-data") })
      process.stdout.write(`${bootstrap}\n`)
      return 0
    }
    case "restart": {
      const { bootstrap } = await restartBroker()
      process.stdout.write(`${bootstrap}\n`)
      return 0
    }
    case "stop": {
      const r = await stopBroker()
      if (!r.stopped) process.stdout.write("kafka: not running\n")
      return 0
    }
    case "status": {
      const s = await brokerStatus()
      if (!s.running) {
        process.stdout.write(`stopped ${s.bootstrap}\n`)
        return 1
      }
      const rss = s.rssBytes ? `, rss ${Math.round(s.rssBytes / 1024 / 1024)} MiB` : ""
      process.stdout.write(
        `running ${s.bootstrap} (kafka ${s.version}, pid ${s.pid}${rss}${s.healthy ? "" : ", NOT answering"})\n`
      )
      return s.healthy ? 0 : 1
    }
    default:
      process.stderr.write("usage: node scripts/kafka.mjs start [--keep-data] | stop | restart | status\n")
      return 1
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof KafkaBrokerError) {
      process.stderr.write(`kafka: ${err.message}\n`)
      process.exit(err.exitCode)
    }
    process.stderr.write(`kafka: ${err?.stack ?? err}\n`)
    process.exit(1)
  }
)
