/**
 * `jobledger stats`, `jobs` and `job`: the read plane. Answers come from projections
 * rebuilt from the log (a JobQueue's read model, or a replay for a job's timeline), never
 * from an engine's memory, so they are the same from any process on any machine.
 */
import type { JobState } from "../../types.ts"
import type { CommandSpec } from "../args.ts"
import { CliFailure, UsageError } from "../errors.ts"
import { attempts, shortTime, statsInline, statsLines, statsObject, table } from "../output.ts"

// the engine's modules load only when a command runs, so --help and usage errors are quick
const connect = () => import("../connect.ts")

const STATES: ReadonlyArray<JobState> = ["waiting", "active", "completed", "failed", "delayed", "paused"]

export const stats: CommandSpec = {
  name: "stats",
  summary: "count jobs by state (--watch to follow)",
  description: [
    "Prints how many jobs of <queue> are waiting, active, completed, failed, delayed and",
    "paused, from the projection of its log. --watch prints them again every second until",
    "Ctrl-C (with --json: one JSON object a line)."
  ].join("\n"),
  positionals: [{ name: "queue" }],
  options: {
    watch: { type: "boolean", short: "w", description: "print again every --interval until SIGINT" },
    interval: { type: "string", value: "<ms>", description: "time between prints with --watch (default: 1000)" }
  },
  json: true,
  examples: ["jobledger stats email", "jobledger stats email --watch", "jobledger stats email --json | jq .failed"],
  run: async ({ args, log, json, out }) => {
    const [queueName] = args.positionals as [string]
    const interval = args.number("interval", { min: 50 }) ?? 1_000
    const { nextSignal, withQueue } = await connect()
    return withQueue(queueName, log, async (queue) => {
      if (!args.flag("watch")) {
        const counts = statsObject(await queue.stats())
        if (json) out.json(counts)
        else out.line([`queue '${queueName}' on ${queue.log}`, ...statsLines(counts)].join("\n"))
        return 0
      }
      const stop = nextSignal()
      let stopped = false
      void stop.signal.then(() => (stopped = true))
      if (!json) out.note(`watching queue '${queueName}' on ${queue.log} every ${interval} ms (Ctrl-C to stop)`)
      try {
        while (!stopped) {
          const counts = statsObject(await queue.stats())
          if (stopped) break
          if (json) out.line(JSON.stringify(counts))
          else out.line(`${shortTime(Date.now()).slice(11)}  ${statsInline(counts)}`)
          await Promise.race([stop.signal, new Promise((r) => setTimeout(r, interval))])
        }
      } finally {
        stop.dispose()
      }
      return 0
    }, { readOnly: true })
  }
}

export const jobs: CommandSpec = {
  name: "jobs",
  summary: "list jobs, most recently updated first",
  description: "Lists the jobs of <queue> (or only those in --state) as a table: id, name, state, attempts, updated.",
  positionals: [{ name: "queue" }],
  options: {
    state: { type: "string", short: "s", value: "<state>", description: `only jobs in this state: ${STATES.join(", ")}` },
    limit: { type: "string", short: "n", value: "<n>", description: "at most n jobs, 0 for all (default: 50)" }
  },
  json: true,
  examples: ["jobledger jobs email --state failed", "jobledger jobs email --limit 0 --json"],
  run: async ({ args, log, json, out }) => {
    const [queueName] = args.positionals as [string]
    const state = args.string("state")
    if (state !== undefined && !STATES.includes(state as JobState))
      throw new UsageError(`--state must be one of ${STATES.join(", ")} (got '${state}')`)
    const limit = args.number("limit", { min: 0, integer: true }) ?? 50
    const { withQueue } = await connect()
    return withQueue(queueName, log, async (queue) => {
      const all = [...(await queue.store.list(state as JobState | undefined))].sort((a, b) => b.updatedAt - a.updatedAt)
      const shown = limit === 0 ? all : all.slice(0, limit)
      if (json) out.json(shown)
      else if (all.length === 0) out.note(`no ${state === undefined ? "" : `${state} `}jobs in queue '${queueName}'`)
      else {
        const rows = shown.map((j) => [j.id, j.name, j.state, attempts(j), shortTime(j.updatedAt)])
        out.line(table(["ID", "NAME", "STATE", "ATTEMPTS", "UPDATED (UTC)"], rows).join("\n"))
        if (shown.length < all.length) out.note(`… ${all.length - shown.length} more (--limit 0 shows all)`)
      }
      return 0
    }, { readOnly: true })
  }
}

export const job: CommandSpec = {
  name: "job",
  summary: "one job and its full timeline",
  description: [
    "Prints the job <id> of <queue> and every event of its life from the log: offset, time,",
    "event, the state the job machine gives it, and details. On SQLite the job's events are",
    "found by an index (any history size); on Kafka the log is replayed. Exits 1 if there is",
    "no such job."
  ].join("\n"),
  positionals: [{ name: "queue" }, { name: "id" }],
  options: {},
  json: true,
  examples: ["jobledger job email 0b6c6f9e-2f0a-4c43-9f6e-2d1f5b3b1a77", "jobledger job email welcome-42 --json"],
  run: async ({ args, log, json, out }) => {
    const [queueName, id] = args.positionals as [string, string]
    const [{ openLog, requireExistingLog, requireQueue, withQueue }, { replayFromLog }, { jobReport, jobReportByLookup }, { jobLines, jobReportLines }, { run }, { topicsOf }] =
      await Promise.all([
        connect(),
        import("../../read/replay.ts"),
        import("../../read/job-timeline.ts"),
        import("../timeline.ts"),
        import("../../run.ts"),
        import("../../log/event-log.ts")
      ])
    requireExistingLog(log)
    await requireQueue(queueName, log)
    const opened = await openLog(log)
    try {
      const indexed = opened.log.recordsByKey !== undefined
      const report = indexed
        ? await jobReportByLookup(opened.log, queueName, id)
        : await replayFromLog(opened.log, queueName, { jobId: id }).then((replay) => jobReport(opened.log, queueName, id, replay))
      if (report !== undefined) {
        const partitions = (await run(opened.log.partitionCount(topicsOf(queueName).events))) ?? 1
        if (json) out.json({ job: report.job, partition: report.timeline.partition, timeline: report.timeline.entries })
        else out.line([`job in queue '${queueName}'`, ...jobReportLines(report, partitions)].join("\n"))
        return 0
      }
    } finally {
      await opened.close()
    }
    // no event names the job: it may be added (its AddJob command is in the log) but not yet
    // accepted by an engine, which the queue's store shows
    return withQueue(queueName, log, async (queue) => {
      const pending = await queue.store.get(id)
      if (pending === undefined) throw new CliFailure(`job '${id}' not found in queue '${queueName}'`)
      if (json) out.json({ job: pending, partition: null, timeline: [] })
      else out.line([`job in queue '${queueName}'`, ...jobLines(pending), "", "timeline: no events yet (added; no engine has accepted it yet)"].join("\n"))
      return 0
    })
  }
}
