/**
 * `jobledger add` and `jobledger add-bulk`: producer commands. They append AddJob commands
 * (durable when the command returns) and leave running them to the queue's engine.
 *
 * Invariant: `add-bulk` checks every line before anything is appended, and appends all
 * jobs in one `addBulk` (one append): a bad line adds nothing.
 */
import { readFileSync } from "node:fs"
import type { Job, JobOptions } from "../../types.ts"
import type { CommandSpec } from "../args.ts"
import { UsageError, messageOf } from "../errors.ts"

// the engine's modules load only when a command runs, so --help and usage errors are quick
const library = async () => {
  const [{ InvalidOptionError, resolveJobInput }, { withQueue }] = await Promise.all([
    import("../../options.ts"),
    import("../connect.ts")
  ])
  const asUsage = (e: unknown): never => {
    throw e instanceof InvalidOptionError ? new UsageError(messageOf(e)) : e
  }
  return { resolveJobInput, withQueue, asUsage }
}

/** `--data` as JSON text, or `@path` to read the JSON from a file. */
const parseData = (raw: string | undefined): unknown => {
  if (raw === undefined) return null
  let text = raw
  let source = "--data"
  if (raw.startsWith("@")) {
    const path = raw.slice(1)
    source = `--data @${path}`
    try {
      text = readFileSync(path, "utf8")
    } catch (e) {
      throw new UsageError(`${source}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? messageOf(e)})`)
    }
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new UsageError(`${source} is not valid JSON: ${messageOf(e)}`)
  }
}

export const add: CommandSpec = {
  name: "add",
  summary: "add one job; prints its id",
  description: [
    "Appends an AddJob command to <queue>'s log and prints the new job's id (the job's",
    "details go to stderr). The engine running <queue> picks it up; nothing runs here.",
    "Adding with a --job-id that already exists returns the existing job (idempotent add)."
  ].join("\n"),
  positionals: [{ name: "queue" }, { name: "name" }],
  options: {
    data: { type: "string", value: "<json|@file>", description: "the job's data as JSON, or @path of a JSON file (default: null)" },
    priority: { type: "string", value: "<n>", description: "higher runs first (default: 0)" },
    delay: { type: "string", value: "<ms>", description: "wait this long before the job may run (default: 0)" },
    "job-id": { type: "string", value: "<id>", description: "your own job id (default: a random UUID)" }
  },
  json: true,
  examples: [
    `jobledger add email send-email --data '{"to":"ada@example.com"}'`,
    "jobledger add reports build --data @report.json --priority 10 --delay 60000",
    "JOB=$(jobledger add email send-email --job-id welcome-42)"
  ],
  run: async ({ args, log, json, out }) => {
    const [queueName, name] = args.positionals as [string, string]
    const data = parseData(args.string("data"))
    const opts: JobOptions = {}
    const priority = args.number("priority")
    const delay = args.number("delay", { min: 0 })
    const jobId = args.string("job-id")
    if (priority !== undefined) opts.priority = priority
    if (delay !== undefined) opts.delay = delay
    if (jobId !== undefined) opts.jobId = jobId
    const { resolveJobInput, withQueue, asUsage } = await library()
    try {
      resolveJobInput(name, data, opts)
    } catch (e) {
      asUsage(e)
    }
    return withQueue(queueName, log, async (queue) => {
      const job = await queue.add(name, data, opts).catch(asUsage)
      if (json) out.json(job)
      else {
        out.note(`added ${job.name} to queue '${queueName}' (${job.state})`)
        out.line(job.id)
      }
      return 0
    })
  }
}

const BULK_FIELDS = ["name", "data", "opts"]

/** The jobs of an NDJSON text; throws UsageError naming the first bad line. */
export const parseNdjson = (
  text: string,
  source: string,
  check: (name: unknown, data: unknown, opts: JobOptions | undefined) => unknown
): Array<{ name: string; data: unknown; opts?: JobOptions }> => {
  const jobs: Array<{ name: string; data: unknown; opts?: JobOptions }> = []
  const lines = text.split(/\r?\n/)
  lines.forEach((line, i) => {
    if (line.trim() === "") return
    const where = `${source} line ${i + 1}`
    let item: unknown
    try {
      item = JSON.parse(line)
    } catch (e) {
      throw new UsageError(`${where}: not valid JSON (${messageOf(e)})`)
    }
    if (typeof item !== "object" || item === null || Array.isArray(item))
      throw new UsageError(`${where}: expected an object {"name": …, "data": …, "opts"?: …}`)
    const record = item as Record<string, unknown>
    const unknown = Object.keys(record).find((k) => !BULK_FIELDS.includes(k))
    if (unknown !== undefined) throw new UsageError(`${where}: unknown field '${unknown}' (expected name, data, opts)`)
    try {
      check(record.name, record.data, record.opts as JobOptions | undefined)
    } catch (e) {
      throw new UsageError(`${where}: ${messageOf(e)}`)
    }
    const job = { name: record.name as string, data: record.data === undefined ? null : record.data }
    jobs.push(record.opts === undefined ? job : { ...job, opts: record.opts as JobOptions })
  })
  return jobs
}

export const addBulk: CommandSpec = {
  name: "add-bulk",
  summary: "add one job per NDJSON line, all or none",
  description: [
    "Reads one job per line, {\"name\": …, \"data\": …, \"opts\"?: {priority, delay, jobId, metadata}},",
    "from <file> ('-' for stdin), checks every line, then adds them all in one append.",
    "A bad line adds nothing: the command exits 2 naming the line. Prints the ids, one a line."
  ].join("\n"),
  positionals: [{ name: "queue" }, { name: "file" }],
  options: {},
  json: true,
  examples: [
    "jobledger add-bulk email signups.ndjson",
    `printf '{"name":"send-email","data":{"to":"a@example.com"}}\\n' | jobledger add-bulk email -`
  ],
  run: async ({ args, log, json, out }) => {
    const [queueName, file] = args.positionals as [string, string]
    let text: string
    try {
      text = readFileSync(file === "-" ? 0 : file, "utf8")
    } catch (e) {
      throw new UsageError(`cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? messageOf(e)})`)
    }
    const { resolveJobInput, withQueue, asUsage } = await library()
    const items = parseNdjson(text, file === "-" ? "stdin" : file, resolveJobInput)
    return withQueue(queueName, log, async (queue) => {
      const jobs: Array<Job> = items.length === 0 ? [] : await queue.addBulk(items).catch(asUsage)
      if (json) out.json(jobs)
      else {
        for (const job of jobs) out.line(job.id)
        out.note(`added ${jobs.length} job${jobs.length === 1 ? "" : "s"} to queue '${queueName}'`)
      }
      return 0
    })
  }
}
