/**
 * One job's timeline and view, rendered for people (the data comes from `read/job-timeline.ts`).
 */
import type { Job } from "../types.ts"
import type { JobReport, JobTimeline } from "../read/job-timeline.ts"
import { attempts, compact, isoTime, table } from "./output.ts"

/** A job report for people: the view's fields, then the timeline table. */
export const jobReportLines = (report: JobReport, partitions: number): Array<string> => [
  ...jobLines(report.job),
  "",
  "timeline:",
  ...timelineLines(report.timeline, partitions)
]

/** Where a record is: its offset, prefixed with its partition when the topic has several. */
export const positionHeader = (partitions: number): string => (partitions > 1 ? "PARTITION/OFFSET" : "OFFSET")
export const position = (partition: number | undefined, offset: number, partitions: number): string =>
  partitions > 1 && partition !== undefined ? `${partition}/${offset}` : String(offset)

const detailText = (detail: Record<string, unknown> | undefined): string => {
  if (detail === undefined) return ""
  return Object.entries(detail)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      if (k === "runAt" && typeof v === "number") return `runAt=${isoTime(v)}`
      if (k === "refused") return `REFUSED: ${String(v)}`
      return `${k}=${typeof v === "string" ? JSON.stringify(v.length > 80 ? `${v.slice(0, 79)}…` : v) : compact(v)}`
    })
    .join(" ")
}

/** The timeline as a table: offset, time, event, state, details. */
export const timelineLines = (timeline: JobTimeline, partitions: number): Array<string> =>
  table(
    [positionHeader(partitions), "TIME", "EVENT", "STATE", "DETAILS"],
    timeline.entries.map((e) => [
      position(timeline.partition, e.offset, partitions),
      isoTime(e.time),
      e.type,
      e.state,
      detailText(e.detail)
    ])
  )

/** The job view as aligned `field  value` lines. */
export const jobLines = (job: Job): Array<string> => {
  const rows: Array<[string, string]> = [
    ["id", job.id],
    ["name", job.name],
    ["state", job.state],
    ["attempts", `${attempts(job)} (retries made/allowed)`],
    ["priority", String(job.priority)],
    ["created", isoTime(job.createdAt)],
    ["run at", isoTime(job.runAt)],
    ["updated", isoTime(job.updatedAt)],
    ["data", compact(job.data, 200)]
  ]
  if (job.result !== undefined) rows.push(["result", compact(job.result, 200)])
  if (job.error !== undefined) rows.push(["error", `${job.error.name === undefined ? "" : `${job.error.name}: `}${job.error.message}`])
  if (job.metadata !== undefined) rows.push(["metadata", compact(job.metadata, 200)])
  if (job.progress !== undefined) rows.push(["progress", compact(job.progress, 200)])
  if (job.schedule !== undefined) rows.push(["schedule", `${job.schedule.id} (tick ${isoTime(job.schedule.tick)})`])
  const width = Math.max(...rows.map(([k]) => k.length)) + 2
  return rows.map(([k, v]) => `  ${k.padEnd(width)}${v}`)
}
