/**
 * The pure parts of the `jobledger` command: what cli.int.test.ts cannot see from a child
 * process (the progress bar needs a terminal) and parsing rules checked without spawning.
 */
import { describe, expect, it } from "vitest"
import { parseCommand } from "../src/cli/args.ts"
import { parseNdjson } from "../src/cli/commands/add.ts"
import { engine } from "../src/cli/commands/engine.ts"
import { parseUntil } from "../src/cli/commands/replay.ts"
import { UsageError } from "../src/cli/errors.ts"
import { COMMANDS, mainHelp } from "../src/cli/main.ts"
import { PROGRESS_MIN_EVENTS, progressBar } from "../src/cli/progress.ts"

/** A stand-in for process.stderr that records what is written. */
const stream = (isTTY: boolean) => {
  const writes: Array<string> = []
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) > 0 } as unknown as NodeJS.WriteStream }
}

describe("replay progress bar", () => {
  it("draws on a terminal for a long replay, then erases itself", () => {
    const { writes, stream: s } = stream(true)
    const bar = progressBar(s, "replaying q")
    const total = PROGRESS_MIN_EVENTS + 1
    bar.update(total, total)
    bar.done()
    expect(writes).toEqual([`\rreplaying q [${"#".repeat(30)}] 100% ${total}/${total} events`, "\r\x1b[K"])
  })

  it("is quiet for a short replay, and when stderr is no terminal", () => {
    const short = stream(true)
    const shortBar = progressBar(short.stream, "q")
    shortBar.update(10, PROGRESS_MIN_EVENTS)
    shortBar.done()
    expect(short.writes).toEqual([])
    const piped = stream(false)
    const pipedBar = progressBar(piped.stream, "q")
    pipedBar.update(1, PROGRESS_MIN_EVENTS * 10)
    pipedBar.done()
    expect(piped.writes).toEqual([])
  })
})

describe("argument parsing", () => {
  it("--until: a whole number is an offset, an ISO date a time, anything else a usage error", () => {
    expect(parseUntil("120")).toEqual({ untilOffset: 120 })
    expect(parseUntil("2025-06-01T12:00:00Z")).toEqual({ untilTime: Date.parse("2025-06-01T12:00:00Z") })
    for (const bad of ["-1", "yesterday", "1e3", "2025-13-45"]) expect(() => parseUntil(bad)).toThrow(UsageError)
  })

  it("add-bulk lines: blank lines skipped, the first bad line named", () => {
    const check = (name: unknown) => {
      if (typeof name !== "string" || name === "") throw new Error("name must be a non-empty string")
    }
    expect(parseNdjson('{"name":"a"}\n\n{"name":"b","data":2,"opts":{"priority":1}}\n', "f", check)).toEqual([
      { name: "a", data: null },
      { name: "b", data: 2, opts: { priority: 1 } }
    ])
    expect(() => parseNdjson('{"name":"a"}\n[1]', "f", check)).toThrow(/^f line 2: expected an object/)
    expect(() => parseNdjson('{"name":""}', "f", check)).toThrow(/^f line 1: name must be a non-empty string$/)
  })

  it("a required option is checked from the spec, unless --help is asked for", () => {
    expect(() => parseCommand(engine, [])).toThrow(new UsageError("engine: missing --handlers <module>"))
    expect(parseCommand(engine, ["--help"]).flag("help")).toBe(true)
    expect(parseCommand(engine, ["--handlers", "h.ts", "-q", "a", "-q", "b"]).strings("queue")).toEqual(["a", "b"])
  })
})

describe("jobledger --help", () => {
  it("lists every command once, with its arguments, in 88 columns", () => {
    const help = mainHelp()
    for (const c of COMMANDS) expect(help.match(new RegExp(`^  ${c.name} `, "gm"))).toHaveLength(1)
    expect(help).toMatch(/^ {2}engine --handlers <module> +run /m)
    expect(help).toMatch(/^ {2}job <queue> <id> +\S/m)
    for (const line of help.split("\n")) expect(line.length, line).toBeLessThanOrEqual(88)
  })
})
