/**
 * What `jobledger` prints: data on stdout (tables, or JSON with `--json`), progress and
 * notes on stderr, so `jobledger … --json | jq` and `$(jobledger add …)` get only data.
 */
import { scrub } from "../log/secrets.ts"
import type { Job, QueueStats } from "../types.ts"

export interface Output {
  /** One line of data on stdout. */
  readonly line: (text?: string) => void
  /** One note on stderr (readiness, progress, confirmations). */
  readonly note: (text: string) => void
  /** A value as one JSON document on stdout. */
  readonly json: (value: unknown) => void
  readonly stdout: NodeJS.WriteStream
  readonly stderr: NodeJS.WriteStream
}

/**
 * The process's stdout and stderr. Every line passes through `scrub`: a secret that reached a
 * message despite everything (a driver echoing configuration) is printed as `***`.
 */
export const processOutput = (): Output => ({
  line: (text = "") => void process.stdout.write(scrub(`${text}\n`)),
  note: (text) => void process.stderr.write(scrub(`${text}\n`)),
  json: (value) => void process.stdout.write(scrub(`${JSON.stringify(value, null, 2)}\n`)),
  stdout: process.stdout,
  stderr: process.stderr
})

/** The six counts, in the order people read them. */
export const STATS_KEYS: ReadonlyArray<keyof QueueStats> = ["waiting", "active", "completed", "failed", "delayed", "paused"]

/** Exactly the six counts (no other field), in a stable order. */
export const statsObject = (stats: QueueStats): QueueStats => {
  const out = {} as QueueStats
  for (const k of STATS_KEYS) out[k] = stats[k]
  return out
}

/** `waiting 3  active 1  …` on one line. */
export const statsInline = (stats: QueueStats): string => STATS_KEYS.map((k) => `${k} ${stats[k]}`).join("  ")

/** The counts, one per line, aligned. */
export const statsLines = (stats: QueueStats, indent = "  "): Array<string> => {
  const width = Math.max(...STATS_KEYS.map((k) => k.length)) + 2
  const numbers = STATS_KEYS.map((k) => String(stats[k]))
  const numWidth = Math.max(...numbers.map((n) => n.length))
  return STATS_KEYS.map((k, i) => `${indent}${k.padEnd(width)}${numbers[i]!.padStart(numWidth)}`)
}

/** A time as ISO 8601 UTC with milliseconds. */
export const isoTime = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms))

/** A time as `YYYY-MM-DD HH:MM:SS` UTC, for tables. */
export const shortTime = (ms: number): string => isoTime(ms).replace("T", " ").slice(0, 19)

/** A value as compact JSON, cut to `max` characters. */
export const compact = (value: unknown, max = 60): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** A left-aligned table with a header row; cells never contain newlines. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const format = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [format(header), ...rows.map(format)]
}

/** `completed 0/3`: retries made of retries allowed. */
export const attempts = (job: Pick<Job, "attemptsMade" | "maxAttempts">): string => `${job.attemptsMade}/${job.maxAttempts}`
