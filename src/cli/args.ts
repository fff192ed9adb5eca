/**
 * Command specs and their parsing with `node:util` parseArgs.
 *
 * Invariants:
 * - Every command accepts `--log <url>`, `--kafka-config <file.json>` and `-h, --help`; commands that print data also
 *   accept `--json`. The help text is generated from the same spec that parses, so an
 *   option cannot be documented without existing or exist without being documented.
 * - Parsing never throws anything but UsageError: parseArgs' own errors are turned into
 *   one-line messages.
 */
import { parseArgs } from "node:util"
import type { KafkaOptions } from "../log/kafka-options.ts"
import { UsageError } from "./errors.ts"
import type { Output } from "./output.ts"

/** One option of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean"
  readonly short?: string
  readonly multiple?: boolean
  /** The command cannot run without it: shown in the usage line, checked by parseCommand. */
  readonly required?: boolean
  /** The placeholder shown in help, e.g. `<ms>`. */
  readonly value?: string
  readonly description: string
}

/** One positional argument; `optional` ones come last. */
export interface PositionalSpec {
  readonly name: string
  readonly optional?: boolean
}

/** The log a command works on, and how to connect to it. */
export interface LogTarget {
  /** The log URL: `--log`, else `JOBLEDGER_LOG`, else the embedded SQLite file. Never carries a secret. */
  readonly url: string
  /** `--kafka-config <file.json>`, decoded and checked (credentials may be in it: never print it). */
  readonly kafka?: KafkaOptions | undefined
}

export interface CommandContext {
  readonly args: Args
  readonly log: LogTarget
  readonly json: boolean
  readonly out: Output
}

export interface CommandSpec {
  readonly name: string
  /** One line for the command list. */
  readonly summary: string
  /** Paragraphs under the usage line of `<command> --help`. */
  readonly description: string
  readonly positionals: ReadonlyArray<PositionalSpec>
  readonly options: Readonly<Record<string, OptionSpec>>
  /** Whether the command prints data and so takes `--json`. */
  readonly json: boolean
  readonly examples: ReadonlyArray<string>
  /** Runs the command; resolves to its exit status. */
  readonly run: (ctx: CommandContext) => Promise<number>
}

const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  log: { type: "string", value: "<url>", description: "the log: sqlite:<path>, kafka[s]://host:port[,host:port][?sasl=…&ca=…] or memory:" },
  "kafka-config": {
    type: "string",
    value: "<file.json>",
    description: "Kafka settings a URL cannot hold: { sasl: { username, password }, ssl, clientId, … }"
  },
  help: { type: "boolean", short: "h", description: "show this help" }
}
const JSON_OPTION: OptionSpec = { type: "boolean", description: "print machine-readable JSON" }

/** All options of a command, global ones included. */
export const optionsOf = (spec: CommandSpec): Record<string, OptionSpec> => ({
  ...spec.options,
  ...(spec.json ? { json: JSON_OPTION } : {}),
  ...GLOBAL_OPTIONS
})

type Values = Record<string, string | boolean | Array<string | boolean> | undefined>

/** Parsed options and positionals of one command, with typed accessors that throw UsageError. */
export class Args {
  constructor(
    readonly command: string,
    private readonly values: Values,
    readonly positionals: ReadonlyArray<string>
  ) {}

  has(name: string): boolean {
    return this.values[name] !== undefined
  }

  string(name: string): string | undefined {
    const v = this.values[name]
    return typeof v === "string" ? v : undefined
  }

  flag(name: string): boolean {
    return this.values[name] === true
  }

  strings(name: string): Array<string> {
    const v = this.values[name]
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : []
  }

  /** A finite number option (`undefined` when absent). */
  number(name: string, bounds: { min?: number; integer?: boolean } = {}): number | undefined {
    const raw = this.string(name)
    if (raw === undefined) return undefined
    const n = raw.trim() === "" ? Number.NaN : Number(raw)
    const what = bounds.integer === true ? "a whole number" : "a number"
    const floor = bounds.min === undefined ? "" : ` ≥ ${bounds.min}`
    if (!Number.isFinite(n) || (bounds.integer === true && !Number.isInteger(n)) || (bounds.min !== undefined && n < bounds.min))
      throw new UsageError(`--${name} must be ${what}${floor} (got '${raw}')`)
    return n
  }

  /** The positional at `index` (required ones are checked by `parseCommand`). */
  positional(index: number): string | undefined {
    return this.positionals[index]
  }
}

/** `--name <value>`, as usage lines and messages write an option. */
const optionUsage = (name: string, o: OptionSpec): string => `--${name}${o.value === undefined ? "" : ` ${o.value}`}`

/** Parses the arguments after the command name. */
export const parseCommand = (spec: CommandSpec, argv: ReadonlyArray<string>): Args => {
  const options = optionsOf(spec)
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {}
  for (const [name, o] of Object.entries(options))
    config[name] = { type: o.type, ...(o.short === undefined ? {} : { short: o.short }), ...(o.multiple === true ? { multiple: true } : {}) }
  let parsed: { values: Values; positionals: Array<string> }
  try {
    parsed = parseArgs({ args: [...argv], options: config, allowPositionals: true, strict: true }) as typeof parsed
  } catch (e) {
    throw new UsageError(parseArgsMessage(e, spec))
  }
  const args = new Args(spec.name, parsed.values, parsed.positionals)
  if (args.flag("help")) return args
  const required = spec.positionals.filter((p) => p.optional !== true)
  if (parsed.positionals.length < required.length) {
    const missing = required.slice(parsed.positionals.length).map((p) => `<${p.name}>`)
    throw new UsageError(`${spec.name}: missing ${missing.join(" and ")}`)
  }
  if (parsed.positionals.length > spec.positionals.length)
    throw new UsageError(`${spec.name}: unexpected argument '${parsed.positionals[spec.positionals.length]}'`)
  for (const [name, o] of Object.entries(options))
    if (o.required === true && !args.has(name)) throw new UsageError(`${spec.name}: missing ${optionUsage(name, o)}`)
  for (const [name, o] of Object.entries(options))
    if (o.type === "string" && o.multiple !== true && args.string(name) === "")
      throw new UsageError(`--${name} must not be empty`)
  return args
}

/** parseArgs errors, rewritten as one short line. */
const parseArgsMessage = (e: unknown, spec: CommandSpec): string => {
  const code = (e as { code?: string }).code
  const message = e instanceof Error ? e.message : String(e)
  const quoted = /'([^']+)'/.exec(message)?.[1]
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `${spec.name}: unknown option '${quoted ?? message}'`
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = (quoted ?? "").split(" ")[0] ?? ""
      if (/ambiguous/.test(message)) return `${flag} needs a value (for a value that starts with '-', write ${flag}=<value>)`
      if (/argument missing/.test(message)) return `${flag} needs a value`
      return `${flag} takes no value`
    }
    default:
      return message.split("\n")[0] ?? message
  }
}

// ---------------------------------------------------------------- help

const pad = (s: string, width: number) => (s.length >= width ? `${s}  ` : s + " ".repeat(width - s.length))

const optionLabel = (name: string, o: OptionSpec): string =>
  `${o.short === undefined ? "    " : `-${o.short}, `}${optionUsage(name, o)}`

/** The command with what it cannot run without: `add <queue> <name>`, `engine --handlers <module>`. */
export const synopsis = (spec: CommandSpec): string =>
  [
    spec.name,
    ...spec.positionals.map((p) => (p.optional === true ? `[${p.name}]` : `<${p.name}>`)),
    ...Object.entries(spec.options)
      .filter(([, o]) => o.required === true)
      .map(([name, o]) => optionUsage(name, o))
  ].join(" ")

/** The usage line of a command. */
export const usageLine = (spec: CommandSpec): string => `jobledger ${synopsis(spec)} [options]`

/** `jobledger <command> --help`. */
export const commandHelp = (spec: CommandSpec, logDefault: string): string => {
  const options = optionsOf(spec)
  const labels = Object.entries(options).map(([name, o]) => [optionLabel(name, o), o] as const)
  const width = Math.max(...labels.map(([l]) => l.length)) + 2
  const lines = [`Usage: ${usageLine(spec)}`, "", spec.description, "", "Options:"]
  for (const [label, o] of labels) {
    lines.push(`  ${pad(label, width)}${o.description}`)
    if (o === GLOBAL_OPTIONS.log) lines.push(`  ${" ".repeat(width)}(default: ${logDefault})`)
  }
  if (spec.examples.length > 0) lines.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`))
  return lines.join("\n")
}
