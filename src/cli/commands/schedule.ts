/**
 * `jobledger schedule set|list|rm <queue> …`: a queue's schedules. `set` and `rm` append a
 * command (the engine owning the schedule applies it); `list` reads them from the log.
 */
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError, messageOf } from "../errors.ts"
import { isoTime, table } from "../output.ts"

// the engine's modules load only when a command runs, so --help and usage errors are quick
const connect = () => import("../connect.ts")

const ACTIONS = ["set", "list", "rm"] as const

/** An ISO time or ms since the epoch, for --start-at / --end-at. */
const parseTime = (flag: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined
  const time = /^\d+$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN
  if (!Number.isFinite(time)) throw new UsageError(`--${flag} must be an ISO time (e.g. 2026-12-24T08:00:00Z) or ms since the epoch, got '${raw}'`)
  return time
}

export const schedule: CommandSpec = {
  name: "schedule",
  summary: "set, list or remove schedules (cron, every)",
  description: [
    "set <queue> <id>: defines the schedule <id>, or replaces it in place, with --every <ms> or",
    "--cron '<expr>' [--tz <zone>]; at each tick the engine adds the job --name with --data",
    "(its id is <id>:<tick time>), exactly once per tick whatever the engines do.",
    "list <queue>: the schedules, with the jobs each added and its next tick.",
    "rm <queue> <id>: deletes the schedule (the jobs it added stay)."
  ].join("\n"),
  positionals: [{ name: "action" }, { name: "queue" }, { name: "id", optional: true }],
  options: {
    every: { type: "string", value: "<ms>", description: "tick every <ms> (the first job at once)" },
    cron: { type: "string", value: "<expr>", description: "tick at the times a cron expression names (5 or 6 fields)" },
    tz: { type: "string", value: "<zone>", description: "the cron's IANA time zone (default UTC)" },
    name: { type: "string", value: "<job name>", description: "the job each tick adds (set)" },
    data: { type: "string", value: "<json>", description: "its data as JSON (default: null)" },
    priority: { type: "string", value: "<n>", description: "its priority (default: 0)" },
    "start-at": { type: "string", value: "<time>", description: "no tick before (ISO time or ms)" },
    "end-at": { type: "string", value: "<time>", description: "no tick after (ISO time or ms)" },
    limit: { type: "string", value: "<n>", description: "add at most n jobs in all" }
  },
  json: true,
  examples: [
    "jobledger schedule set reports daily --cron '0 8 * * *' --tz Asia/Jakarta --name send-daily-report --data '{\"all\":true}'",
    "jobledger schedule set heartbeat ping --every 60000 --name ping",
    "jobledger schedule list reports",
    "jobledger schedule rm reports daily"
  ],
  run: async ({ args, log, json, out }) => {
    const [action, queueName, id] = args.positionals as [string, string, string | undefined]
    if (!(ACTIONS as ReadonlyArray<string>).includes(action)) throw new UsageError(`schedule: unknown action '${action}' (set, list or rm)`)
    if (action !== "list" && id === undefined) throw new UsageError(`schedule ${action} needs the schedule id: jobledger schedule ${action} <queue> <id>`)
    const [{ withQueue }, { InvalidOptionError }] = await Promise.all([connect(), import("../../options.ts")])
    const asFailure = (e: unknown): never => {
      throw e instanceof InvalidOptionError ? (action === "set" ? new UsageError(messageOf(e)) : new CliFailure(messageOf(e))) : e
    }
    if (action === "set") {
      const name = args.string("name")
      if (name === undefined) throw new UsageError("schedule set needs --name <job name>")
      const every = args.number("every", { min: 1, integer: true })
      const cron = args.string("cron")
      const tz = args.string("tz")
      let data: unknown = null
      const rawData = args.string("data")
      if (rawData !== undefined)
        try {
          data = JSON.parse(rawData)
        } catch (e) {
          throw new UsageError(`--data is not valid JSON: ${messageOf(e)}`)
        }
      const priority = args.number("priority")
      const limit = args.number("limit", { min: 1, integer: true })
      const startAt = parseTime("start-at", args.string("start-at"))
      const endAt = parseTime("end-at", args.string("end-at"))
      const repeat = {
        ...(every === undefined ? {} : { every }),
        ...(cron === undefined ? {} : { cron }),
        ...(tz === undefined ? {} : { tz }),
        ...(startAt === undefined ? {} : { startAt }),
        ...(endAt === undefined ? {} : { endAt }),
        ...(limit === undefined ? {} : { limit })
      }
      return withQueue(queueName, log, async (queue) => {
        await queue.upsertSchedule(id!, repeat as never, { name, data, ...(priority === undefined ? {} : { opts: { priority } }) }).catch(asFailure)
        if (json) out.json({ queue: queueName, schedule: id, set: true })
        else out.line(`schedule '${id}' of queue '${queueName}' set (the engine applies it)`)
        return 0
      })
    }
    return withQueue(
      queueName,
      log,
      async (queue) => {
        if (action === "rm") {
          await queue.removeSchedule(id!).catch(asFailure)
          if (json) out.json({ queue: queueName, schedule: id, removed: true })
          else out.line(`schedule '${id}' of queue '${queueName}' removed (the engine applies it)`)
          return 0
        }
        const schedules = await queue.schedules()
        if (json) out.json(schedules)
        else if (schedules.length === 0) out.note(`no schedules in queue '${queueName}'`)
        else {
          const when = (r: (typeof schedules)[number]["repeat"]) => ("every" in r ? `every ${r.every} ms` : `cron '${r.cron}'${r.tz === undefined ? "" : ` ${r.tz}`}`)
          const rows = schedules.map((s) => [s.id, when(s.repeat), s.template.name, String(s.count), s.lastTick === undefined ? "-" : isoTime(s.lastTick), s.nextTick === undefined ? "-" : isoTime(s.nextTick)])
          out.line(table(["ID", "REPEAT", "JOB", "JOBS", "LAST TICK", "NEXT TICK"], rows).join("\n"))
        }
        return 0
      },
      { readOnly: action === "list" }
    )
  }
}
