/**
 * `jobledger replay`: rebuilds a queue's projections from its log, as of now or as of an
 * offset or a time, and with --verify audits every event against the job machine.
 *
 * Replay only reads: it is safe against a live queue (it sees each partition as of the
 * moment it reads it).
 */
import type { VerifyIssue } from "../../../projections/verify.ts"
import type { ReplayOptions } from "../../read/replay.ts"
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError } from "../errors.ts"
import { isoTime, statsLines, statsObject, table } from "../output.ts"
import { progressBar } from "../progress.ts"

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** `--until`: a whole number is an offset (inclusive), anything else an ISO 8601 time (inclusive). */
export const parseUntil = (raw: string): { untilOffset: number } | { untilTime: number } => {
  if (/^\d+$/.test(raw)) return { untilOffset: Number(raw) }
  const time = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN
  if (!Number.isFinite(time)) throw new UsageError(`--until must be an offset (e.g. 1200) or an ISO time (e.g. 2025-06-01T12:00:00Z), got '${raw}'`)
  return { untilTime: time }
}

export const replay: CommandSpec = {
  name: "replay",
  summary: "state as of any point; --verify audits the log",
  description: [
    "Replays <queue>'s events and prints the stats they lead to (or, with --job, that job's",
    "view and timeline), as of now or as of --until. --verify re-runs every job's events",
    "through the job machine and reports each illegal or out-of-order transition, duplicate",
    "or gap with its offset; it exits 1 if there is any. Shows a progress bar on a terminal",
    "when the log is long."
  ].join("\n"),
  positionals: [{ name: "queue" }],
  options: {
    job: { type: "string", value: "<id>", description: "show this job's view and timeline instead of the stats" },
    until: { type: "string", value: "<offset|time>", description: "stop after this offset (per partition) or this ISO 8601 time" },
    verify: { type: "boolean", description: "audit every event; exit 1 on any problem" }
  },
  json: true,
  examples: ["jobledger replay email --verify", "jobledger replay email --until 2025-06-01T12:00:00Z", "jobledger replay email --job welcome-42 --until 120"],
  run: async ({ args, log, json, out }) => {
    const [queueName] = args.positionals as [string]
    const untilRaw = args.string("until")
    const until = untilRaw === undefined ? undefined : parseUntil(untilRaw)
    const jobId = args.string("job")
    const verify = args.flag("verify")
    // the engine's modules load only when a command runs, so --help and usage errors are quick
    const [{ openLog, requireExistingLog }, { HistoryGoneError, replayFromLog }, { jobReport }, { jobReportLines, position, positionHeader }] = await Promise.all([
      import("../connect.ts"),
      import("../../read/replay.ts"),
      import("../../read/job-timeline.ts"),
      import("../timeline.ts")
    ])
    requireExistingLog(log)
    const opened = await openLog(log)
    const progress = progressBar(out.stderr, `replaying ${queueName}`)
    try {
      const options: ReplayOptions & { verify?: boolean } = {
        ...(until ?? {}),
        ...(jobId === undefined ? {} : { jobId }),
        verify,
        onProgress: progress.update
      }
      const result = await replayFromLog(opened.log, queueName, options)
        .catch((e) => {
          throw e instanceof HistoryGoneError ? new CliFailure(e.message) : e
        })
        .finally(progress.done)
      const report = jobId === undefined ? undefined : await jobReport(opened.log, queueName, jobId, result, until)
      if (jobId !== undefined && report === undefined)
        throw new CliFailure(`job '${jobId}' not found in queue '${queueName}'${untilRaw === undefined ? "" : " at that point of the log"}`)
      const issues: ReadonlyArray<VerifyIssue> = result.verify?.issues ?? []
      const failed = verify && (issues.length > 0 || result.undecodable.length > 0)

      if (json) {
        out.json({
          queue: queueName,
          log: opened.log.url,
          ...(until === undefined ? {} : { until: "untilOffset" in until ? { offset: until.untilOffset } : { time: isoTime(until.untilTime) } }),
          events: result.events,
          partitions: result.partitions,
          stats: statsObject(result.stats),
          ...(report === undefined ? {} : { job: report.job, partition: report.timeline.partition, timeline: report.timeline.entries }),
          undecodable: result.undecodable,
          ...(result.verify === undefined ? {} : { verify: result.verify }),
          ...(result.pruned.length === 0 ? {} : { pruned: result.pruned.map((h) => ({ ...h, before: isoTime(h.before) })) }),
          ...(result.truncated.length === 0 ? {} : { truncated: result.truncated })
        })
      } else {
        const asOf = until === undefined ? "" : "untilOffset" in until ? ` up to offset ${until.untilOffset}` : ` up to ${isoTime(until.untilTime)}`
        const lines = [`replayed ${plural(result.events, "event")} of queue '${queueName}'${asOf} (${plural(result.partitions, "partition")}, ${opened.log.url})`]
        if (report === undefined) lines.push(...statsLines(statsObject(result.stats)))
        else lines.push(...jobReportLines(report, result.partitions))
        for (const h of result.pruned)
          lines.push(
            `history of partition ${h.partition} pruned: ${plural(h.jobs, "job")} that ended before ${isoTime(h.before)} (${plural(h.events, "event")}) are gone from the log` +
              (until === undefined ? ", counted in the stats above" : ", not counted in stats bounded by --until")
          )
        for (const t of result.truncated)
          lines.push(`history of partition ${t.partition} starts at offset ${t.startOffset} (retention): replayed from its snapshot at offset ${t.from}`)
        for (const u of result.undecodable) lines.push(`undecodable record at partition ${u.partition} offset ${u.offset}: ${u.reason.split("\n")[0]}`)
        if (result.verify !== undefined) {
          const v = result.verify
          const of = `${plural(v.events, "event")} of ${plural(v.jobs, "job")}`
          const since = result.truncated.length > 0 ? " (after the snapshots)" : result.pruned.length > 0 ? " (the history left after pruning)" : ""
          if (issues.length === 0) lines.push(`verify: OK — ${of}${since}, every transition legal, no duplicate, no gap`)
          else {
            lines.push(`verify: ${plural(issues.length, "problem")} in ${of}`)
            const rows = issues.map((i) => [position(i.partition, i.offset, result.partitions), i.jobId ?? "(queue)", i.kind, i.message])
            lines.push(...table([positionHeader(result.partitions), "JOB", "PROBLEM", "DETAILS"], rows).map((l) => `  ${l}`))
          }
        }
        out.line(lines.join("\n"))
      }
      if (failed) {
        const first = issues[0] ?? result.undecodable[0]
        const where = first?.partition === undefined || result.partitions === 1 ? `offset ${first?.offset}` : `partition ${first.partition} offset ${first.offset}`
        out.note(`jobledger: replay --verify found ${plural(issues.length + result.undecodable.length, "problem")} in queue '${queueName}' (first at ${where})`)
        return 1
      }
      return 0
    } finally {
      await opened.close()
    }
  }
}
