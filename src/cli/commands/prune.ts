/**
 * `jobledger prune`: deletes the events of jobs that ended before a time from a SQLite log
 * (see src/maintenance/prune.ts for what may go). The default is to keep everything; this is
 * the operator's explicit choice, optionally archiving what goes.
 */
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError } from "../errors.ts"
import { isoTime } from "../output.ts"

const UNIT_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `--before`: an ISO 8601 time, or an age such as `30d`, `12h`, `90m` (that long before now). */
export const parseBefore = (raw: string, now = Date.now()): number => {
  const age = /^(\d+)([mhd])$/.exec(raw)
  if (age !== null) return now - Number(age[1]) * UNIT_MS[age[2]!]!
  const time = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN
  if (!Number.isFinite(time)) throw new UsageError(`--before must be an ISO time (e.g. 2025-06-01T00:00:00Z) or an age (e.g. 30d, 12h, 90m), got '${raw}'`)
  return time
}

export const prune: CommandSpec = {
  name: "prune",
  summary: "delete old ended jobs' events from a SQLite log",
  description: [
    "Deletes from a SQLite log every event of the jobs of <queue> that ended (completed,",
    "failed or removed) before --before, once the partition's snapshot covers them and does",
    "not hold them. Live jobs, queue and schedule events, and stats stay as they are; replay",
    "--verify still passes and says where the history starts. A pruned id is forgotten (it",
    "can be added again). --archive appends what goes to an NDJSON file first. Safe while",
    "engines run. On Kafka, set ?retainMs= on the log URL instead (the topic's retention.ms)."
  ].join("\n"),
  positionals: [{ name: "queue" }],
  options: {
    before: { type: "string", value: "<time|age>", description: "prune jobs that ended before this ISO time or this long ago (30d, 12h)" },
    archive: { type: "string", value: "<file.ndjson>", description: "append the pruned records to this file before deleting them" },
    "dry-run": { type: "boolean", description: "count what would go, delete nothing" }
  },
  json: true,
  examples: ["jobledger prune email --before 30d --archive email-history.ndjson", "jobledger prune email --before 2025-06-01T00:00:00Z --dry-run"],
  run: async ({ args, log, json, out }) => {
    const [queueName] = args.positionals as [string]
    const beforeRaw = args.string("before")
    if (beforeRaw === undefined) throw new UsageError("prune needs --before <time|age>: the history to keep is the operator's choice")
    const before = parseBefore(beforeRaw)
    const [{ checkLogUrl, requireExistingLog }, { pruneQueue }] = await Promise.all([import("../connect.ts"), import("../../maintenance/prune.ts")])
    const location = checkLogUrl(log.url)
    if (location.kind !== "sqlite" || location.path === ":memory:")
      throw new CliFailure(`prune works on a SQLite log file; on Kafka set ?retainMs= on the log URL (the events topic's retention.ms)`)
    requireExistingLog(log)
    let report
    try {
      const archive = args.string("archive")
      report = pruneQueue(location.path, queueName, {
        before,
        dryRun: args.flag("dry-run"),
        ...(archive === undefined ? {} : { archive })
      })
    } catch (e) {
      throw new CliFailure(e instanceof Error ? e.message : String(e))
    }
    if (json) out.json({ ...report, before: isoTime(report.before) })
    else {
      const verb = report.dryRun ? "would prune" : "pruned"
      const lines = [
        `${verb} ${report.jobs} of ${report.jobsSeen} jobs of queue '${queueName}' that ended before ${isoTime(before)}: ` +
          `${report.completed} completed, ${report.failed} failed, ${report.removed} removed (${report.events} events)`
      ]
      if (report.uncovered > 0) lines.push(`kept ${report.uncovered} ended jobs no snapshot covers yet (an engine writes one after 10,000 events or 30 s of work)`)
      if (report.archive !== undefined && !report.dryRun) lines.push(`archived to ${report.archive}`)
      out.line(lines.join("\n"))
    }
    return 0
  }
}
