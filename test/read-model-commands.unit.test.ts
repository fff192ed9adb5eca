/**
 * The read model reads commands (pending adds) only from the first query on: an engine's own
 * process that never asks does not read and decode its backlog a second time; the first
 * query still sees every add in the log at the time of the call.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { type CommandEnvelope, ENVELOPE_VERSION } from "../machines/schema.ts"
import { encode } from "../src/codec.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import type { LocalStore } from "../src/log/local-store.ts"
import { openMemoryStore } from "../src/log/memory-store.ts"
import { COMMANDS, EVENTS, openTestReadModel } from "./support/read-model.ts"


/** A memory store that counts its reads of the commands topic. */
const countingCommandReads = () => {
  const store = openMemoryStore()
  const counter = { reads: 0 }
  const counted: LocalStore = {
    ...store,
    read: (topic, ...rest) => {
      if (topic === COMMANDS) counter.reads++
      return store.read(topic, ...rest)
    }
  }
  return { store: counted, counter }
}

const addCommand = (jobId: string, delay = 0): string => {
  const command: CommandEnvelope = {
    v: ENVELOPE_VERSION,
    queue: "q",
    jobId,
    time: Date.now(),
    body: { _tag: "AddJob", name: "work", data: { jobId }, priority: 0, delay }
  }
  return encode(command)
}

describe("read model: pending adds", () => {
  it("reads no command until the first query, which sees every add in the log; later adds follow", async () => {
    const { store, counter } = countingCommandReads()
    store.ensureTopic(EVENTS, 1)
    store.ensureTopic(COMMANDS, 1)
    const log = makeLocalLog("memory", "memory:", store).service
    const append = (values: ReadonlyArray<string>) => Effect.runPromise(log.append(COMMANDS, values.map((value) => ({ key: null, value, partition: 0 }))))
    await append([addCommand("a"), addCommand("b", 60_000)])

    const model = await openTestReadModel(log, { partitions: 1, pendingMaxAttempts: 3 })
    await append([addCommand("c")])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(counter.reads).toBe(0)

    await model.caughtUp()
    expect(counter.reads).toBeGreaterThan(0)
    expect(model.stats()).toMatchObject({ waiting: 2, delayed: 1 })
    expect(model.get("b")).toMatchObject({ state: "delayed", maxAttempts: 3 })

    await append([addCommand("d")])
    await model.caughtUp()
    expect(model.stats()).toMatchObject({ waiting: 3, delayed: 1 })
  })
})
