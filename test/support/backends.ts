/**
 * The log backends a test suite runs on: `memory:` and a fresh SQLite file always, and
 * `kafka://…` when the test command started a broker (it sets KAFKA_BROKERS).
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomUUID } from "node:crypto"

export interface Backend {
  readonly name: "memory" | "sqlite" | "kafka"
  /** A log URL no other test uses. */
  readonly freshLog: () => string
}

export const memoryBackend: Backend = { name: "memory", freshLog: () => `memory:${randomUUID()}` }
export const sqliteBackend: Backend = {
  name: "sqlite",
  freshLog: () => `sqlite:${join(mkdtempSync(join(tmpdir(), "jobledger-test-")), "jobs.db")}`
}
export const kafkaBrokers = process.env.KAFKA_BROKERS
export const kafkaBackend: Backend | undefined =
  kafkaBrokers === undefined ? undefined : { name: "kafka", freshLog: () => `kafka://${kafkaBrokers}` }

export const backends: ReadonlyArray<Backend> = [memoryBackend, sqliteBackend, ...(kafkaBackend ? [kafkaBackend] : [])]

/** A queue name no other test uses (Kafka topics are shared by the whole broker). */
export const uniqueQueue = (prefix = "q") => `${prefix}-${randomUUID().slice(0, 8)}`

/** Resolves when `predicate` holds, polling; rejects with `what` after `timeoutMs`. */
export const until = async (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await predicate()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
