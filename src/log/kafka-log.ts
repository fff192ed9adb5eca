/**
 * Placeholder for the Apache Kafka backend (kafkajs), which lands with its own issue.
 */
import { Effect, Layer } from "effect"
import { EventLog, LogError } from "./event-log.ts"

export const KafkaLog = {
  layer: (brokers: ReadonlyArray<string>): Layer.Layer<EventLog, LogError> =>
    Layer.effect(
      EventLog,
      Effect.fail(
        new LogError({
          message: `the kafka:// log backend (${brokers.join(",")}) is not available in this version yet; use 'sqlite:' or 'memory:'`,
          retryable: false
        })
      )
    )
}
