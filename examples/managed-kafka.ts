/**
 * A queue on a managed Kafka cluster (MSK, Confluent Cloud, Aiven, Redpanda …): TLS and
 * SASL/SCRAM, with the credentials in the environment, never in the code or the URL.
 *
 *   export JOBLEDGER_LOG='kafkas://broker-1.example.com:9096,broker-2.example.com:9096?sasl=scram-sha-512'
 *   export JOBLEDGER_KAFKA_USERNAME=billing JOBLEDGER_KAFKA_PASSWORD='…'
 *   npx tsx examples/managed-kafka.ts
 *
 * Add `&ca=/path/to/ca.pem` when the cluster's certificate is not signed by a CA of the
 * system's store (self-managed clusters, Aiven's project CA). test/kafka-secure.int.test.ts
 * runs this file against the local SASL_SSL test broker.
 */
import { JobQueue } from "../src/index.ts"

const log = process.env.JOBLEDGER_LOG
if (log === undefined || !/^kafkas?:\/\//.test(log)) throw new Error("set JOBLEDGER_LOG to your cluster: kafkas://host:port,…?sasl=scram-sha-512")

const queue = new JobQueue<{ to: string }>("email", {
  log,
  // what the URL cannot say; username and password come from JOBLEDGER_KAFKA_USERNAME / _PASSWORD
  kafka: { clientId: "billing-workers", connectionTimeout: 10_000 },
  retry: { attempts: 3, backoff: "exponential", delay: 1000 }
})

queue.process("send-email", async (job) => ({ sent: job.data.to }))

queue.on("completed", async (done, result) => {
  if (done.data.to !== "ada@example.com") return
  console.log(`completed ${done.id}: ${JSON.stringify(result)}`)
  console.log(await queue.stats())
  await queue.close()
})

const job = await queue.add("send-email", { to: "ada@example.com" })
console.log(`added ${job.id} on ${queue.log}`)
