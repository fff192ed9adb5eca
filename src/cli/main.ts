/**
 * The `jobledger` command: dispatch, help, and the translation of every failure into one
 * line and an exit status (0 success, 1 failed check or operation, 2 bad usage).
 */
import { createRequire } from "node:module"
import { DEFAULT_LOG_URL, displayLogUrl, resolveLogUrl } from "../log/log-url.ts"
import { scrub } from "../log/secrets.ts"
import { type CommandSpec, commandHelp, parseCommand, synopsis } from "./args.ts"
import { add, addBulk } from "./commands/add.ts"
import { cancel, pause, remove, resume, retry } from "./commands/control.ts"
import { dashboard } from "./commands/dashboard.ts"
import { schedule } from "./commands/schedule.ts"
import { engine } from "./commands/engine.ts"
import { job, jobs, stats } from "./commands/inspect.ts"
import { prune } from "./commands/prune.ts"
import { replay } from "./commands/replay.ts"
import { CliFailure, EXIT, UsageError, messageOf } from "./errors.ts"
import { loadKafkaConfig } from "./kafka-config.ts"
import { type Output, processOutput } from "./output.ts"

/** The commands, in the groups `jobledger --help` lists them in. */
const GROUPS: ReadonlyArray<readonly [string, ReadonlyArray<CommandSpec>]> = [
  ["Run jobs", [engine]],
  ["Add jobs", [add, addBulk]],
  ["Read a queue (from its log, in any process)", [stats, jobs, job]],
  ["Control (appended to the log; the queue's engine applies them)", [retry, remove, cancel, pause, resume, schedule]],
  ["Audit and history", [replay, prune]],
  ["Watch (a web dashboard and Prometheus metrics)", [dashboard]]
]

export const COMMANDS: ReadonlyArray<CommandSpec> = GROUPS.flatMap(([, commands]) => commands)

/**
 * The package's own version. Resolved through the package name (a self-reference, allowed by
 * the "./package.json" export), not a path relative to this file: the same code runs from
 * src/cli/ under tsx and from dist/esm/src/cli/ once built.
 */
const version = (): string => {
  try {
    return (createRequire(import.meta.url)("jobledger/package.json") as { version: string }).version
  } catch {
    return "unknown"
  }
}

/** How the `--log` default reads in help: it depends on the environment (shown as a URL without secrets). */
const logDefault = (): string => {
  const env = process.env.JOBLEDGER_LOG
  return env ? `$JOBLEDGER_LOG, now ${displayLogUrl(env)}` : `$JOBLEDGER_LOG, else ${DEFAULT_LOG_URL}`
}

/** `jobledger --help`. */
export const mainHelp = (): string => {
  const width = Math.max(...COMMANDS.map((c) => synopsis(c).length)) + 2
  return [
    "jobledger — an event-sourced background job engine. Every job's life is a sequence of",
    "events in a log (a SQLite file or Apache Kafka); stats, job views and audits are",
    "rebuilt from it.",
    "",
    "Usage: jobledger <command> [arguments] [options]",
    ...GROUPS.flatMap(([title, commands]) => ["", `${title}:`, ...commands.map((c) => `  ${synopsis(c).padEnd(width)}${c.summary}`)]),
    "",
    "Options of every command:",
    "  --log <url>        sqlite:<path>, kafka://host:port[,host:port], or memory: (one",
    "                     process); kafkas://… for TLS, ?sasl=scram-sha-512 (or plain,",
    "                     scram-sha-256), ?ca=<file.pem>, ?cert=<file.pem>&key=<file.pem>",
    `                     default: ${logDefault()}`,
    "  --kafka-config <file.json>",
    "                     Kafka settings a URL cannot hold: sasl credentials, ssl, clientId",
    "  --json             print JSON instead of text (every command that prints data)",
    "  -h, --help         the command's own options and examples: jobledger <command> --help",
    "",
    "Examples:",
    "  jobledger engine --handlers ./handlers.ts     # Ctrl-C stops it gracefully",
    `  jobledger add email send-email --data '{"to":"ada@example.com"}'`,
    "  jobledger stats email --watch",
    "  jobledger replay email --verify --log kafka://localhost:9092",
    "",
    "Environment: JOBLEDGER_LOG (the default log), JOBLEDGER_KAFKA_USERNAME and",
    "JOBLEDGER_KAFKA_PASSWORD (SASL credentials when the URL says ?sasl=…; never printed),",
    "JOBLEDGER_CONNECT_TIMEOUT_MS (how long to wait for Kafka, default 10000),",
    "JOBLEDGER_DEBUG=1 (stack traces of unexpected errors).",
    "Exit status: 0 ok; 1 failed (not found, audit problems, log unreachable); 2 bad usage."
  ].join("\n")
}

const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = row[j]!
      row[j] = next
    }
  }
  return row[b.length]!
}

const unknownCommand = (name: string): UsageError => {
  const close = COMMANDS.map((c) => c.name).find((c) => c.startsWith(name) || distance(c, name) <= 2)
  return new UsageError(`unknown command '${name}'${close === undefined ? "" : ` (did you mean '${close}'?)`}`)
}

/** Options allowed before the command name: moved after it. */
const splitLeading = (argv: ReadonlyArray<string>): { lead: Array<string>; rest: Array<string> } => {
  const lead: Array<string> = []
  let i = 0
  while (i < argv.length && argv[i]!.startsWith("-")) {
    const a = argv[i]!
    if (a === "--log" || a === "--kafka-config") {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`)
      lead.push(a, argv[i + 1]!)
      i += 2
    } else if (a.startsWith("--log=") || a.startsWith("--kafka-config=") || a === "--json" || a === "--help" || a === "-h") {
      lead.push(a)
      i++
    } else throw new UsageError(`unknown option '${a}'`)
  }
  return { lead, rest: argv.slice(i) }
}

/** Runs the command line `argv` (without node and the script); resolves to the exit status. */
export const main = async (argv: ReadonlyArray<string>, out: Output = processOutput()): Promise<number> => {
  let command: CommandSpec | undefined
  try {
    if (argv[0] === "--version" || argv[0] === "-V") {
      out.line(version())
      return EXIT.ok
    }
    const { lead, rest } = splitLeading(argv)
    const [name, ...tail] = rest
    if (name === undefined) {
      if (lead.includes("--help") || lead.includes("-h")) {
        out.line(mainHelp())
        return EXIT.ok
      }
      throw new UsageError("missing command")
    }
    if (name === "help") {
      const target = tail[0] === undefined ? undefined : COMMANDS.find((c) => c.name === tail[0])
      if (tail[0] !== undefined && target === undefined) throw unknownCommand(tail[0])
      out.line(target === undefined ? mainHelp() : commandHelp(target, logDefault()))
      return EXIT.ok
    }
    command = COMMANDS.find((c) => c.name === name)
    if (command === undefined) throw unknownCommand(name)
    const args = parseCommand(command, [...tail, ...lead])
    if (args.flag("help")) {
      out.line(commandHelp(command, logDefault()))
      return EXIT.ok
    }
    const log = { url: resolveLogUrl(args.string("log")), kafka: loadKafkaConfig(args.string("kafka-config")) }
    return await command.run({ args, log, json: args.flag("json"), out })
  } catch (e) {
    return report(e, command, out)
  }
}

/**
 * One line on stderr (two for usage errors) and the exit status; a stack only with
 * JOBLEDGER_DEBUG. Scrubbed of known secrets here too, whatever `out` does.
 */
const report = (e: unknown, command: CommandSpec | undefined, out: Output): number => {
  if (e instanceof UsageError) {
    out.note(scrub(`jobledger: ${messageOf(e)}`))
    out.note(`Try 'jobledger ${command === undefined ? "" : `${command.name} `}--help'.`)
    return EXIT.usage
  }
  out.note(scrub(`jobledger: ${messageOf(e)}`))
  if (process.env.JOBLEDGER_DEBUG && e instanceof Error && !(e instanceof CliFailure)) out.note(scrub(e.stack ?? ""))
  return EXIT.failed
}

/** How long a finished run may wait for stray handles before it exits anyway. */
const EXIT_WATCHDOG_MS = 1_000

/** The bin's entry: runs `main`, then exits with its status. */
export const runCli = async (argv: ReadonlyArray<string>): Promise<void> => {
  const out = processOutput()
  const fatal = (e: unknown) => {
    out.note(scrub(`jobledger: internal error: ${messageOf(e)}`))
    if (process.env.JOBLEDGER_DEBUG && e instanceof Error) out.note(scrub(e.stack ?? ""))
    process.exit(EXIT.failed)
  }
  process.on("uncaughtException", fatal)
  process.on("unhandledRejection", fatal)
  // the event loop emptied while the command still waits: a promise that can never settle
  // (a bug below the CLI); say so instead of exiting silently
  let settled = false
  const idle = () => {
    if (settled) return
    out.note(`jobledger: internal error: '${argv.map(displayLogUrl).join(" ")}' was still waiting when nothing was left to wait for (a bug in jobledger; please report it)`)
    process.exit(EXIT.failed)
  }
  process.on("beforeExit", idle)
  const code = await main(argv, out)
  settled = true
  process.off("beforeExit", idle)
  process.exitCode = code
  // every command closes what it opened, so the process normally ends by itself here; the
  // watchdog only guards against a stray handle in a driver (it does not keep us alive)
  setTimeout(() => process.exit(code), EXIT_WATCHDOG_MS).unref()
}
