import type { HistoryProbe, WorkloadParams } from "../peers/peer.ts"
import type { Method } from "./child.ts"

export interface WorkloadDef {
  id: number
  key: string
  title(p: WorkloadParams): string
  /** what the workload does, for RESULTS.md / README.md */
  description: string
  method: Method
  unit: string
  higherIsBetter: boolean
  params(quick: boolean): WorkloadParams
  /** peers that run it (undefined = all) */
  only?: string[]
  /** per-child timeout, ms */
  timeoutMs?: number
  /** timeout of a preparation child, ms (default: the larger of --timeout and 20 min) */
  prepTimeoutMs?: number
  /** extra node flags of a preparation child only (measurements always run with Node's defaults) */
  prepExecArgv?: string[]
}

const n = (x: number | undefined) => (x ?? 0).toLocaleString("en-US")

export const PEERS = ["jobledger", "jobledger-baseline", "jobledger-kafka", "bullmq", "graphile-worker"] as const
export const BASELINE = "bullmq"

export const WORKLOADS: WorkloadDef[] = [
  {
    id: 1,
    key: "drain-c100",
    title: (p) => `Drain ${n(p.n)} no-op jobs, concurrency ${p.concurrency}`,
    description:
      "Load N no-op jobs in bulk (chunks of 1,000, untimed), then start a worker with concurrency 100 and time until all N have completed.",
    method: "drain",
    unit: "jobs/s",
    higherIsBetter: true,
    params: (q) => ({ n: q ? 2_000 : 50_000, concurrency: 100, chunk: 1_000 }),
  },
  {
    id: 2,
    key: "drain-c1",
    title: (p) => `Drain ${n(p.n)} no-op jobs, concurrency ${p.concurrency}`,
    description: "As workload 1 with concurrency 1: the per-job overhead of the engine's fetch/complete cycle.",
    method: "drain",
    unit: "jobs/s",
    higherIsBetter: true,
    params: (q) => ({ n: q ? 1_000 : 50_000, concurrency: 1, chunk: 1_000 }),
  },
  {
    id: 3,
    key: "add-serial",
    title: (p) => `Serial awaited add, ${n(p.n)} jobs`,
    description: "N single `add` calls, each awaited before the next (no worker running): the durable round trip of one add.",
    method: "addSerial",
    unit: "adds/s",
    higherIsBetter: true,
    params: (q) => ({ n: q ? 300 : 5_000 }),
  },
  {
    id: 4,
    key: "latency",
    title: (p) => `Latency add → handler start at ${n(p.rate)} jobs/s for ${p.durationSec} s`,
    description:
      "Producer and worker (concurrency 100) in one process. Jobs are offered open-loop at a steady rate (job i is sent at t0 + i/rate, never waiting for earlier adds or completions); each job carries its scheduled send time and the handler records now − scheduled on entry. The first second is warm-up and discarded.",
    method: "latency",
    unit: "ms",
    higherIsBetter: false,
    params: (q) => ({ rate: 1_000, durationSec: q ? 3 : 20, warmupSec: q ? 0.5 : 1, concurrency: 100 }),
  },
  {
    id: 5,
    key: "replay",
    title: (p) => `Replay: rebuild projections from a ${n(p.events)}-event log`,
    description:
      "jobledger only: `replayQueue(log, queue)` over a SQLite log built once per engine version (≈333,334 jobs added and processed = 3 events each) and cached under /tmp; each repetition replays a private copy.",
    method: "replay",
    unit: "events/s",
    higherIsBetter: true,
    params: (q) => ({ events: q ? 30_000 : 1_000_000 }),
    only: ["jobledger"],
  },
  {
    id: 6,
    key: "memory",
    title: (p) => `Memory with ${n(p.n)} waiting jobs`,
    description:
      "Baseline RSS of an idle engine/worker process, then N jobs added and left waiting; RSS after GC, peak RSS, and bytes per job. For BullMQ and graphile-worker the jobs live in the server, so the server-side growth (Redis used_memory, Postgres relation size) is reported too.",
    method: "memory",
    unit: "MiB",
    higherIsBetter: false,
    params: (q) => ({ n: q ? 5_000 : 100_000, chunk: 1_000 }),
  },
  {
    id: 7,
    key: "history",
    title: (p) => `History: a fresh process against ${(p.sizes ?? []).map(n).join(" / ")} completed jobs`,
    description:
      "Does a queue's cost follow its live jobs or its history? Per peer and size, N completed no-op jobs are built once with the peer's own engine (untimed; jobledger SQLite: cached per size and engine sources, each measurement on a private copy; BullMQ: one key prefix per size, completed jobs kept; jobledger Kafka: one queue per size). Then each measurement is a fresh child process, timed from the constructor: **producer** `new JobQueue` → first `add` resolved (BullMQ `new Queue` → `add`); **reader** `new JobQueue` → first `stats()` resolved (BullMQ `getJobCounts()`); **engine** a job added beforehand by a separate producer process, then `new JobQueue` + `process()` → that job's handler entered, ms after `process()` (BullMQ `new Worker` → processor entered). RSS is read right after each answer.",
    method: "history",
    unit: "ms",
    higherIsBetter: false,
    params: (q) => historyParams(q),
    only: ["jobledger", "jobledger-kafka", "bullmq"],
    // a 1,000,000-job build of today's engine takes minutes; every wait inside is bounded by ctx.msLeft()
    prepTimeoutMs: 90 * 60_000,
    // The untimed build holds every job of the history in today's engine (engine state and read
    // model); Node's default heap limit (~4 GiB here) must not decide whether a 1M history exists.
    prepExecArgv: ["--max-old-space-size=12288"],
  },
]

/**
 * Sizes of the history workload. BENCH_HISTORY_SIZES (comma-separated) overrides them;
 * BENCH_HISTORY_KAFKA_MAX caps the Kafka column (default 100,000 in a full run: a
 * 1,000,000-job history is 3M+ records on the shared broker and minutes of replay per
 * measurement for today's engine; set it to 1000000 to try).
 */
function historyParams(quick: boolean): WorkloadParams {
  const env = process.env.BENCH_HISTORY_SIZES
  const sizes = env ? env.split(",").map((x) => Number(x.trim())).filter((x) => Number.isInteger(x) && x > 0) : quick ? [2_000, 20_000] : [10_000, 100_000, 1_000_000]
  sizes.sort((a, b) => a - b)
  const kafkaMax = Number(process.env.BENCH_HISTORY_KAFKA_MAX ?? (quick ? Infinity : 100_000))
  return {
    sizes,
    ...(Number.isFinite(kafkaMax) ? { historyCaps: { "jobledger-kafka": kafkaMax } } : {}),
    concurrency: 100,
    chunk: 5_000,
  }
}

/** Targets shown next to the ratios (not assertions). */
export interface Target {
  workload: number
  peer: string
  text: string
  check(peerMedian: number, baselineMedian: number | undefined): boolean | undefined
}

export const TARGETS: Target[] = [
  { workload: 1, peer: "jobledger", text: "≥ 2× BullMQ", check: (v, b) => (b ? v / b >= 2 : undefined) },
  { workload: 1, peer: "jobledger-kafka", text: "≥ 1× BullMQ", check: (v, b) => (b ? v / b >= 1 : undefined) },
  { workload: 2, peer: "jobledger", text: "≥ 2× BullMQ", check: (v, b) => (b ? v / b >= 2 : undefined) },
  { workload: 4, peer: "jobledger", text: "p99 ≤ BullMQ's", check: (v, b) => (b ? v <= b : undefined) },
  { workload: 5, peer: "jobledger", text: "≥ 300,000 events/s", check: (v) => v >= 300_000 },
]

/**
 * Issue 12's targets for the history workload (SQLite unless the peer says otherwise): an
 * absolute bound at 1,000,000 completed jobs, and each jobledger-SQLite figure flat: the
 * largest size's median within FLAT_RATIO of the smallest's.
 */
export interface HistoryTarget {
  peer: string
  probe: HistoryProbe
  metric: "ms" | "rssMiB"
  max: number
  text: string
}
export const HISTORY_TARGET_SIZE = 1_000_000
export const HISTORY_TARGETS: HistoryTarget[] = [
  { peer: "jobledger", probe: "producer", metric: "ms", max: 50, text: "≤ 50 ms" },
  { peer: "jobledger", probe: "producer", metric: "rssMiB", max: 120, text: "≤ 120 MiB" },
  { peer: "jobledger", probe: "reader", metric: "ms", max: 250, text: "≤ 250 ms" },
  { peer: "jobledger", probe: "engine", metric: "ms", max: 1_000, text: "≤ 1 s" },
  { peer: "jobledger-kafka", probe: "producer", metric: "ms", max: 1_000, text: "≤ 1 s" },
  { peer: "jobledger-kafka", probe: "engine", metric: "ms", max: 5_000, text: "≤ 5 s" },
]
/** peers whose every history figure should be flat across sizes */
export const HISTORY_FLAT = { peers: ["jobledger"], ratio: 1.5 }
