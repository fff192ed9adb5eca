/**
 * Following a partition of a local (SQLite) log: every record once, in offset order,
 * whether it was appended by this process (handed over from memory) or by another
 * connection to the same file (found by polling) — and no store read for our own appends.
 */
import { Effect, Exit, Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { LogRecord } from "../src/log/event-log.ts"
import { makeLocalLog } from "../src/log/local-log.ts"
import type { LocalStore } from "../src/log/local-store.ts"
import { openSqliteStore } from "../src/log/sqlite-store.ts"
import { until } from "./support/backends.ts"

const TOPIC = "t"
const dirs: Array<string> = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A store that counts its reads. */
const counted = (store: LocalStore) => {
  const counter = { reads: 0 }
  return { counter, store: { ...store, read: (...a: Parameters<LocalStore["read"]>) => (counter.reads++, store.read(...a)) } }
}

const openPair = () => {
  const dir = mkdtempSync(join(tmpdir(), "jobledger-local-log-"))
  dirs.push(dir)
  const path = join(dir, "log.db")
  const open = () => {
    const { counter, store } = counted(openSqliteStore({ path, synchronous: "NORMAL" }))
    store.ensureTopic(TOPIC, 1)
    return { counter, log: makeLocalLog("sqlite", `sqlite:${path}`, store) }
  }
  return [open(), open()] as const
}

const append = (log: ReturnType<typeof makeLocalLog>, values: ReadonlyArray<string>) =>
  Effect.runPromise(log.service.append(TOPIC, values.map((value) => ({ key: null, value }))))

describe("local log followers", () => {
  it("deliver own and other connections' appends once each, in order; own appends need no store read", async () => {
    const [a, b] = openPair()
    const seen: Array<LogRecord> = []
    const scope = await Effect.runPromise(Scope.make())
    await Effect.runPromise(
      Scope.extend(
        a.log.service.follow(TOPIC, 0, 0, async (records) => void seen.push(...records)),
        scope
      )
    )
    try {
      await append(a.log, ["a0", "a1"])
      await until(() => seen.length === 2, "own appends delivered")
      const readsAfterOwn = a.counter.reads

      for (let round = 0; round < 20; round++) await append(a.log, [`a-${round}`])
      await until(() => seen.length === 22, "own appends delivered")
      // every one of those 20 wakes was served from memory
      expect(a.counter.reads).toBe(readsAfterOwn)

      await append(b.log, ["b0", "b1", "b2"]) // another connection: found by polling the file
      await until(() => seen.length === 25, "the other connection's appends delivered")
      await append(a.log, ["a-last"]) // continues after b's records, which came from the store
      await until(() => seen.length === 26, "the append after a gap delivered")

      expect(seen.map((r) => r.offset)).toEqual(Array.from({ length: 26 }, (_, i) => i))
      expect(seen.slice(22, 26).map((r) => r.value)).toEqual(["b0", "b1", "b2", "a-last"])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      a.log.close()
      b.log.close()
    }
  })

  it("a follower started behind the end reads the backlog from the store, then continues from memory", async () => {
    const [a, b] = openPair()
    await append(b.log, Array.from({ length: 12_000 }, (_, i) => `old-${i}`)) // more than one store read batch
    const seen: Array<string> = []
    const scope = await Effect.runPromise(Scope.make())
    await Effect.runPromise(Scope.extend(a.log.service.follow(TOPIC, 0, 0, async (records) => void seen.push(...records.map((r) => r.value))), scope))
    try {
      await until(() => seen.length === 12_000, "the backlog delivered")
      await append(a.log, ["new"])
      await until(() => seen.length === 12_001, "the new record delivered")
      expect(seen[11_999]).toBe("old-11999")
      expect(seen[12_000]).toBe("new")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      a.log.close()
      b.log.close()
    }
  })
})
