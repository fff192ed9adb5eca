import type { Measurement, PeerInfo, WorkloadParams } from "../peers/peer.ts"
import type { MachineInfo } from "./machine.ts"

export type RunStatus = "ok" | "timeout" | "error" | "skipped"

export interface RunRecord {
  peer: string
  /** which measurement of a workload with several (history: `historyCase(probe, size)`) */
  case?: string
  rep: number
  runId: string
  status: RunStatus
  /** wall time of the child, ms */
  wallMs: number
  measurement?: Measurement
  childPeakRssMiB?: number
  error?: string
  cleanupError?: string
  logFile: string
}

export interface PeerEntry {
  status: "ok" | "unavailable" | "skipped"
  reason?: string
  info?: PeerInfo
}

export interface WorkloadEntry {
  id: number
  key: string
  title: string
  description: string
  unit: string
  higherIsBetter: boolean
  params: WorkloadParams
  /** repetitions planned per peer */
  reps: Record<string, number>
  /** keyed by peer (history: `${peer}@${size}`) */
  prep: Record<string, { status: RunStatus; data?: Record<string, number | string>; error?: string; wallMs: number }>
  runs: RunRecord[]
}

export interface ResultsFile {
  meta: {
    date: string
    finished?: string
    command: string
    quick: boolean
    machine: MachineInfo
    versions: Record<string, string>
    childTimeoutMs: number
    budgetMin: number
    /** os.loadavg() when the run started / finished */
    loadStart: number[]
    loadEnd?: number[]
    notes: string[]
  }
  peers: Record<string, PeerEntry>
  workloads: WorkloadEntry[]
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const WORST_CASE = new Set(["censored", "missing", "duplicates", "addFailed", "failed"])

export interface Summary {
  n: number
  median: number
  min: number
  max: number
  /** medians of numeric extras across ok runs (maxima for failure counts) */
  extra: Record<string, number>
  statuses: RunStatus[]
}

/** The case key of one history measurement: which probe, at how many completed jobs. */
export const historyCase = (probe: string, size: number) => `${probe}@${size}`

/** Over the runs of `peer` (and of `kase` only, when given). */
export function summarise(w: WorkloadEntry, peer: string, kase?: string): Summary | undefined {
  const runs = w.runs.filter((r) => r.peer === peer && (kase === undefined || r.case === kase))
  if (!runs.length) return undefined
  const ok = runs.filter((r) => r.status === "ok" && r.measurement)
  const vals = ok.map((r) => r.measurement!.value)
  const extra: Record<string, number> = {}
  const keys = new Set(ok.flatMap((r) => Object.keys(r.measurement!.extra ?? {})))
  for (const k of keys) {
    const xs = ok.map((r) => r.measurement!.extra?.[k]).filter((x): x is number => typeof x === "number" && Number.isFinite(x))
    // counts of things that went wrong are reported as their worst case, everything else as the median
    if (xs.length) extra[k] = WORST_CASE.has(k) ? Math.max(...xs) : median(xs)
  }
  return {
    n: vals.length,
    median: median(vals),
    min: vals.length ? Math.min(...vals) : NaN,
    max: vals.length ? Math.max(...vals) : NaN,
    extra,
    statuses: runs.map((r) => r.status),
  }
}
