/**
 * The SQLite writer thread (src/log/sqlite-writer.ts): an engine's transactions and, once it
 * runs, the process's appends go through a worker thread with its own connection. They must
 * be the very transactions the main thread would run — same offsets, same records handed to
 * followers (with their envelopes), same fencing, same errors — and a writer that cannot
 * start must leave the log writing on the main thread, losing nothing.
 */
import { Effect, Exit, Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { LogRecord, TransactUnit } from "../src/log/event-log.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import { openSqliteStore } from "../src/log/sqlite-store.ts"
import { packRecords, SqliteWriter, unpackRecords } from "../src/log/sqlite-writer.ts"
import { until } from "./support/backends.ts"

const EVENTS = "q.events"
const COMMANDS = "q.commands"
const DEAD = "q.dead"
const GROUP = "engine"

const dirs: Array<string> = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const freshPath = () => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-writer-"))
  dirs.push(dir)
  return join(dir, "log.db")
}

/** A local log on `path` with the given writer; the topics exist and `owner` holds the group's lease. */
const openLog = (path: string, writer: SqliteWriter | undefined) => {
  const store = openSqliteStore({ path, synchronous: "NORMAL" })
  store.ensureTopic(EVENTS, 1)
  store.ensureTopic(COMMANDS, 3)
  store.ensureTopic(DEAD, 1)
  const log = makeLocalLog("sqlite", `sqlite:${path}`, store, writer)
  return { store, log }
}

/** Joins the group so that the log's transactions carry its owner token. */
const joinGroup = async (log: ReturnType<typeof makeLocalLog>) => {
  const scope = await Effect.runPromise(Scope.make())
  let owned = false
  await Effect.runPromise(
    Scope.extend(
      log.service.join({
        group: GROUP,
        topic: COMMANDS,
        assign: async () => {
          owned = true
          return { onRecords: async () => undefined, onRevoked: async () => undefined }
        }
      }),
      scope
    )
  )
  await until(() => owned, "the group's partitions assigned")
  return () => Effect.runPromise(Scope.close(scope, Exit.void))
}

const unit = (i: number, extra: Partial<TransactUnit> = {}): TransactUnit => ({
  group: GROUP,
  partition: 0,
  eventsTopic: EVENTS,
  events: [0, 1, 2].map((k) => ({ key: `job-${i}`, value: JSON.stringify({ i, k }), parsed: { i, k } })),
  deadLetterTopic: DEAD,
  deadLetters: [],
  ...extra
})

/** Every record of a topic, as another connection reads it. */
const readAll = (path: string, topic: string, partitions: number) => {
  const reader = openSqliteStore({ path, synchronous: "NORMAL" })
  try {
    const out: Array<Omit<LogRecord, "timestamp" | "topic">> = []
    for (let p = 0; p < partitions; p++) for (const r of reader.read(topic, p, 0, 10_000)) out.push({ partition: r.partition, offset: r.offset, key: r.key, value: r.value })
    return out
  } finally {
    reader.close()
  }
}

describe("records packed for the writer thread", () => {
  it("round-trip exactly: keys (null too), empty and NUL-holding values, chosen partitions", () => {
    const records = [
      { key: "a", value: '{"x":1}' },
      { key: null, value: "" },
      { key: "b", value: "raw\u0000poison", partition: 2 },
      { key: "c", value: '{"y":"\\u0000"}' }
    ]
    expect(unpackRecords(packRecords(records))).toEqual(records)
    expect(unpackRecords(packRecords([]))).toEqual([])
  })
})

describe("the SQLite writer thread", () => {
  it("writes the transactions the main thread would: same records, offsets, commits and snapshots; followers get the envelopes", async () => {
    const results: Array<{ events: unknown; commands: unknown; dead: unknown; committed: number; snapshot: unknown; delivered: Array<unknown> }> = []
    for (const threaded of [false, true]) {
      const path = freshPath()
      const writer = threaded ? new SqliteWriter({ path, synchronous: "NORMAL" }) : undefined
      const { store, log } = openLog(path, writer)
      const leave = await joinGroup(log)
      const delivered: Array<LogRecord> = []
      const scope = await Effect.runPromise(Scope.make())
      await Effect.runPromise(Scope.extend(log.service.follow(EVENTS, 0, 0, async (rs) => void delivered.push(...rs)), scope))
      try {
        for (let i = 0; i < 20; i++) {
          const extra: Partial<TransactUnit> =
            i % 5 === 0
              ? {
                  deadLetters: [{ key: `bad-${i}`, value: `{"reason":"r${i}"}` }],
                  commandsTopic: COMMANDS,
                  commands: [{ key: `tick-${i}`, value: `{"add":${i}}`, parsed: { add: i } }],
                  commit: { topic: COMMANDS, offset: i },
                  snapshot: `{"at":${i}}`
                }
              : {}
          await Effect.runPromise(log.service.transact(unit(i, extra)))
        }
        // a producer's append after the writer started goes through it too, a NUL value included
        await Effect.runPromise(log.service.append(COMMANDS, [{ key: "p", value: "raw\u0000value" }]))
        await until(() => delivered.length === 60, "60 events delivered")
        if (writer !== undefined) expect(writer.started).toBe(true)
        results.push({
          events: readAll(path, EVENTS, 1),
          commands: readAll(path, COMMANDS, 3),
          dead: readAll(path, DEAD, 1),
          committed: store.committed(GROUP, COMMANDS, 0),
          snapshot: store.loadSnapshot(EVENTS, 0),
          delivered: delivered.map((r) => [r.offset, r.key, r.parsed])
        })
      } finally {
        await Effect.runPromise(Scope.close(scope, Exit.void))
        await leave()
        log.close()
      }
    }
    const [inThread, threaded] = results
    expect(threaded).toEqual(inThread)
    // the snapshot covers the events partition's end after the transaction that carried it
    expect(threaded!.snapshot).toEqual({ offset: 48, data: '{"at":15}' })
    // handed over from memory: every delivered event has its envelope
    expect(threaded!.delivered.every((d) => (d as Array<unknown>)[2] !== undefined)).toBe(true)
  })

  it("fences a transaction of an owner that does not hold the lease", async () => {
    const path = freshPath()
    const { log } = openLog(path, new SqliteWriter({ path, synchronous: "NORMAL" }))
    try {
      // no group joined: the owner token is empty, the lease is nobody's
      const exit = await Effect.runPromiseExit(log.service.transact(unit(1)))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toMatch(/FencedError/)
      expect(readAll(path, EVENTS, 1)).toEqual([])
    } finally {
      log.close()
    }
  })

  it("carries a store error back as the log error the main thread would give", async () => {
    const path = freshPath()
    const { log } = openLog(path, new SqliteWriter({ path, synchronous: "NORMAL" }))
    const leave = await joinGroup(log)
    try {
      const exit = await Effect.runPromiseExit(log.service.transact({ ...unit(1), eventsTopic: "missing.events" }))
      expect(Exit.isFailure(exit)).toBe(true)
      const text = JSON.stringify(exit)
      expect(text).toMatch(/topic missing\.events does not exist/)
      expect(text).toMatch(/"retryable":false/)
    } finally {
      await leave()
      log.close()
    }
  })

  it("that cannot start leaves the log writing on the main thread: nothing fails, nothing is lost", async () => {
    const path = freshPath()
    const writer = new SqliteWriter({ path, synchronous: "NORMAL" }, () => ({ entry: join(path, "..", "no-such-worker.js") }))
    const { log } = openLog(path, writer)
    const leave = await joinGroup(log)
    try {
      for (let i = 0; i < 3; i++) await Effect.runPromise(log.service.transact(unit(i)))
      expect(writer.available).toBe(false)
      await Effect.runPromise(log.service.append(COMMANDS, [{ key: "p", value: "{}" }]))
      expect(readAll(path, EVENTS, 1).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
      expect(readAll(path, COMMANDS, 3)).toHaveLength(1)
    } finally {
      await leave()
      log.close()
    }
  })
})
