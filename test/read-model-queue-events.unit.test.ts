/**
 * The read model announces a queue-wide `paused`/`resumed` once each, in order, when the
 * queue as a whole changes: `paused` once every partition is paused (a listener may rely on
 * nothing starting anywhere), `resumed` as soon as one partition runs again (before any job
 * it releases starts).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { ENVELOPE_VERSION, type EventEnvelope, type QueueEventBody } from "../machines/schema.ts"
import { encode } from "../src/codec.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import { openMemoryStore } from "../src/log/memory-store.ts"
import { until } from "./support/backends.ts"
import { COMMANDS, EVENTS, openTestReadModel } from "./support/read-model.ts"

const PARTITIONS = 3

/** A queue's log and its read model; `before` runs on the log before the model opens. */
const openQueue = async (before: (decide: Decide) => Promise<void> = async () => {}) => {
  const store = openMemoryStore()
  store.ensureTopic(EVENTS, PARTITIONS)
  store.ensureTopic(COMMANDS, PARTITIONS)
  const log = makeLocalLog("memory", "memory:", store).service
  /** What an owner of `partition` appends when it decides a queue event. */
  const append = async (partition: number, seq: number, body: QueueEventBody) => {
    const envelope: EventEnvelope = { v: ENVELOPE_VERSION, queue: "q", jobId: null, time: Date.now(), seq, body }
    await Effect.runPromise(log.append(EVENTS, [{ key: null, value: encode(envelope), partition }]))
  }
  await before(append)
  const announced: Array<string> = []
  const model = await openTestReadModel(log, { partitions: PARTITIONS, announce: (change) => void announced.push(change.envelope.body._tag) })
  const decide: Decide = async (partition, seq, body) => {
    await append(partition, seq, body)
    await model.caughtUp()
  }
  return { model, announced, decide }
}
type Decide = (partition: number, seq: number, body: QueueEventBody) => Promise<void>

describe("read model: queue events", () => {
  it("announces paused only once every partition is paused, resumed as soon as one partition runs again", async () => {
    const { model, announced, decide } = await openQueue()
    await decide(0, 0, { _tag: "QueuePaused" })
    await decide(2, 0, { _tag: "QueuePaused" })
    expect(model.queuePaused).toBe(true)
    expect(announced).toEqual([])

    await decide(1, 0, { _tag: "QueuePaused" })
    await until(() => announced.length === 1, "paused announced")
    expect(announced).toEqual(["QueuePaused"])

    await decide(1, 1, { _tag: "QueueResumed" })
    await until(() => announced.length === 2, "resumed announced")
    await decide(0, 1, { _tag: "QueueResumed" })
    await decide(2, 1, { _tag: "QueueResumed" })
    expect(announced).toEqual(["QueuePaused", "QueueResumed"])

    // the next pause again waits for every partition
    await decide(2, 2, { _tag: "QueuePaused" })
    await decide(0, 2, { _tag: "QueuePaused" })
    expect(announced).toEqual(["QueuePaused", "QueueResumed"])
    await decide(1, 2, { _tag: "QueuePaused" })
    await until(() => announced.length === 3, "second pause announced")
    expect(announced).toEqual(["QueuePaused", "QueueResumed", "QueuePaused"])
  })

  it("a pause that a resume overtakes is announced just before that resume, each once", async () => {
    const { announced, decide } = await openQueue()
    await decide(0, 0, { _tag: "QueuePaused" })
    expect(announced).toEqual([])
    await decide(0, 1, { _tag: "QueueResumed" })
    await until(() => announced.length === 2, "both announced")
    for (const p of [1, 2]) {
      await decide(p, 0, { _tag: "QueuePaused" })
      await decide(p, 1, { _tag: "QueueResumed" })
    }
    expect(announced).toEqual(["QueuePaused", "QueueResumed"])
  })

  it("a pause some partitions applied before the model opened is announced when the last one applies it; one all had is not", async () => {
    const { announced, decide } = await openQueue(async (append) => {
      for (const p of [0, 1, 2]) await append(p, 0, { _tag: "QueuePaused" })
      for (const p of [0, 1, 2]) await append(p, 1, { _tag: "QueueResumed" })
      for (const p of [0, 1]) await append(p, 2, { _tag: "QueuePaused" })
    })
    expect(announced).toEqual([])
    await decide(2, 2, { _tag: "QueuePaused" })
    await until(() => announced.length === 1, "the pause announced")
    expect(announced).toEqual(["QueuePaused"])
  })
})
