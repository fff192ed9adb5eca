/**
 * Producers on a shared SQLite file: every promise of the public API settles, also in a
 * process that has nothing else to do, and also while other processes write the same file.
 *
 * A follower of a local log learns about another connection's appends from an unref'd poller;
 * a `stats()`/`add` waiting for those appends used to hang (or, in the CLI, exit with "still
 * waiting when nothing was left to wait for") when that poller was all that could wake it.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { replayQueue } from "../src/index.ts"
import { type Child, killHard, spawnScript } from "./support/children.ts"
import { uniqueQueue, until } from "./support/backends.ts"

const children: Array<Child> = []
afterEach(async () => {
  await Promise.all(children.splice(0).map(killHard))
})

const start = (name: string, script: string, args: ReadonlyArray<string>) => {
  const child = spawnScript(name, join("test", "fixtures", script), args)
  children.push(child)
  return child
}

const freshFile = () => join(mkdtempSync(join(tmpdir(), "jobledger-producers-")), "jobs.db")

describe("producers on a shared SQLite file", () => {
  it("a query settles in a process with no other handle after another connection wrote the file", async () => {
    const child = start("settle", "settle-after-other-write.ts", [freshFile()])
    const { code } = await child.exited
    // 13 is Node's exit code for a top-level await that never settled
    expect(code, child.out.join("\n")).toBe(0)
    expect(child.out).toContain("settled 0 1")
  })

  it("six producer processes adding at once: every add settles and every job runs once", async () => {
    const path = freshFile()
    const queue = uniqueQueue("producers")
    const engine = start("engine", "kill-engine.ts", [path, queue, "8"])
    await until(() => engine.out.some((l) => l.startsWith("ready ")), "the engine to be ready", 60_000)

    const PRODUCERS = 6
    const PER_PRODUCER = 4 // 4 single adds (2 with ids of their own) and one addBulk of 4
    const producers = Array.from({ length: PRODUCERS }, (_, i) => start(`p${i}`, "producer.ts", [path, queue, `p${i}`, String(PER_PRODUCER)]))
    const exits = await Promise.all(
      producers.map((p) =>
        Promise.race([p.exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 90_000))]).then((exit) => ({ p, exit }))
      )
    )
    for (const { p, exit } of exits) {
      expect(exit, `${p.name}: ${p.out.join(" | ")}`).toEqual({ code: 0, signal: null })
      expect(p.out.at(-1)).toBe("done")
    }
    const added = new Set(producers.flatMap((p) => p.out.filter((l) => l.startsWith("added ")).map((l) => l.slice("added ".length))))
    expect(added.size).toBe(PRODUCERS * PER_PRODUCER * 2)

    await until(
      async () => (await replayQueue(`sqlite:${path}`, queue)).stats.completed === added.size,
      "every added job to complete",
      60_000
    )
    const { projection } = await replayQueue(`sqlite:${path}`, queue)
    for (const id of added) expect(projection.get(id)?.state, id).toBe("completed")
    expect(projection.size).toBe(added.size)
  }, 240_000)
})
