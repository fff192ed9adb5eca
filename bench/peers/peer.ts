/**
 * The one interface every benchmark peer implements, plus small helpers the
 * adapters share (open-loop pacing, percentiles, RSS sampling).
 *
 * An adapter module's default export is a `Peer`. Each method is called in a
 * fresh child process (bench/lib/child.ts) for exactly one workload
 * repetition; the child exits afterwards, so adapters may leave module-level
 * state behind but must close their connections so `cleanup` can run.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Parameters of one workload repetition (only the fields it needs are set). */
export interface WorkloadParams {
  /** number of jobs (drain, serial add, memory) */
  n?: number
  /** worker concurrency (drain, latency) */
  concurrency?: number
  /** jobs per second to offer (latency) */
  rate?: number
  /** seconds to offer jobs for (latency) */
  durationSec?: number
  /** leading seconds whose samples are discarded (latency) */
  warmupSec?: number
  /** log size in events (replay) */
  events?: number
  /** jobs per addBulk call when loading a queue */
  chunk?: number
  /** history workload: the sizes (completed jobs in the log) to measure at, ascending */
  sizes?: number[]
  /** history workload: per-peer largest size to build (peers not listed: no cap) */
  historyCaps?: Record<string, number>
  /** history workload: completed jobs in the log for this build / measurement */
  history?: number
  /** history workload: which fresh-process measurement this child takes */
  probe?: HistoryProbe
  /** history workload: where the built history is (returned by prepareHistory as `ref`): a cache dir, key prefix or queue name */
  historyRef?: string
  /** history workload, producer probe: the data.probe tag of the job it adds */
  probeId?: string
  /** history workload, producer probe run as the engine probe's job source: keep the added job, and use the copy already in tmpDir */
  asProbeSource?: boolean
}

/** The three fresh-process measurements of the history workload. */
export type HistoryProbe = "producer" | "reader" | "engine"
export const HISTORY_PROBES: readonly HistoryProbe[] = ["producer", "reader", "engine"]

export interface RunContext {
  /** unique per child, lowercase [a-z0-9], safe as a queue/schema/topic suffix */
  runId: string
  /** a private scratch directory for this run (created by the child, removed by cleanup) */
  tmpDir: string
  params: WorkloadParams
  quick: boolean
  /** milliseconds left before the harness kills this child (minus a margin for cleanup); bound every wait by it */
  msLeft(): number
  /** progress line to stderr (kept in the child's log file) */
  log(msg: string): void
  /** a progress line that is also printed on the harness's console (long preparations; at most every few seconds) */
  progress(msg: string): void
}

/** One figure. `value` is the headline number; `extra` is kept in results.json and shown in tables where relevant. */
export interface Measurement {
  value: number
  unit: string
  extra?: Record<string, number | string | boolean | null>
}

export interface PeerInfo {
  /** e.g. "bullmq 6.7.0 + ioredis 6.0.0" */
  version: string
  /** e.g. "Redis 7.0.15 at 127.0.0.1:6379" */
  backend: string
  /** durability in force for the figures, as observed at runtime where possible */
  durability: string
  /** configuration choices worth stating next to the figures */
  notes?: string[]
}

export interface Peer {
  name: string
  /** Checks the backend is reachable and reports versions/durability. Throws if the peer cannot run. */
  info(ctx: RunContext): Promise<PeerInfo>
  /** Workloads 1 and 2: load params.n jobs, then time a worker with params.concurrency until all completed. value = jobs/s. */
  drain(ctx: RunContext): Promise<Measurement>
  /** Workload 3: params.n single adds, each awaited before the next. value = adds/s. */
  addSerial(ctx: RunContext): Promise<Measurement>
  /** Workload 4: open-loop adds at params.rate for params.durationSec, latency add→handler start. value = p99 ms; extra p50/p95/p99. */
  latency(ctx: RunContext): Promise<Measurement>
  /** Workload 5 (optional): build (or reuse) a cached log of params.events events. Runs once per run, untimed, before the replay repetitions. */
  prepareReplay?(ctx: RunContext): Promise<Record<string, number | string>>
  /** Workload 5 (optional): rebuild projections from that log. value = events/s. */
  replay?(ctx: RunContext): Promise<Measurement>
  /**
   * Workload 7 (optional): build params.history completed no-op jobs with the peer's own engine,
   * untimed, once per size and run (or reuse a cached build). Returns `ref` (passed to the
   * measurements as params.historyRef) and `scope`: "cache" if the build outlives the run
   * (a file under BENCH_CACHE_DIR), "run" if the harness must remove it afterwards by running
   * `cleanup` with this child's runId.
   */
  prepareHistory?(ctx: RunContext): Promise<Record<string, number | string>>
  /**
   * Workload 7 (optional): one fresh-process measurement (params.probe) against that history.
   * value = ms to the first answer; extra.rssMiB = RSS right after it.
   */
  history?(ctx: RunContext): Promise<Measurement>
  /** Workload 6: hold params.n waiting jobs. value = peak RSS MiB of the engine/worker process; extra per-job bytes. */
  memory(ctx: RunContext): Promise<Measurement>
  /** Remove everything the run with ctx.runId created (queues, keys, schemas, files). Must be idempotent and work after a killed child. */
  cleanup(ctx: RunContext): Promise<void>
}

// ───────────────────────────── helpers ─────────────────────────────

/**
 * The history workload's engine probe needs one job that is not part of the history. It is
 * added by a separate, short-lived producer process (bench/lib/probe-source.ts runs the
 * peer's own producer probe with `asProbeSource`), the way jobs reach an engine in
 * production, so the engine process measured afterwards has warmed nothing up (no JIT, no
 * replay, no connection) by adding it itself. Untimed; resolves with that producer's
 * measurement (its `extra.jobId` is the job's id).
 */
export function addJobInFreshProducer(ctx: RunContext, peer: string, probeId: string): Promise<Measurement> {
  // compiled by `npm run bench` like the child (BENCH_PROBE), else the source through tsx
  const entry = process.env.BENCH_PROBE ?? fileURLToPath(new URL("../lib/probe-source.ts", import.meta.url))
  return new Promise((resolve, reject) => {
    const child = fork(entry, [], { execArgv: [...(entry.endsWith(".ts") ? ["--import", "tsx"] : []), "--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...process.env, NODE_OPTIONS: "" } })
    let reply: { ok: true; measurement: Measurement } | { ok: false; error: string } | undefined
    const timer = setTimeout(() => child.kill("SIGKILL"), Math.max(1_000, ctx.msLeft()))
    child.on("message", (m) => (reply = m as typeof reply))
    child.on("error", reject)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      if (reply?.ok) resolve(reply.measurement)
      else reject(new Error(`probe-source producer: ${reply ? reply.error : `exited (code ${code}, signal ${signal}) without a result`}`))
    })
    child.send({ peer, runId: ctx.runId, tmpDir: ctx.tmpDir, quick: ctx.quick, params: { ...ctx.params, probe: "producer", probeId, asProbeSource: true }, msLeft: ctx.msLeft() })
  })
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Wall-clock milliseconds with sub-ms resolution; comparable across processes on this machine. */
export const nowMs = () => performance.timeOrigin + performance.now()

export function chunks(n: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let s = 0; s < n; s += size) out.push([s, Math.min(n, s + size)])
  return out
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** RSS after a few forced GCs (the child runs with --expose-gc). */
export async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3; i++) {
    gc?.()
    await sleep(100)
  }
  return process.memoryUsage().rss
}

/** Peak RSS of this process so far, bytes. */
export const peakRss = () => process.resourceUsage().maxRSS * 1024

/** Resolves when `count()` reaches `target`, rejects after `timeoutMs`. */
export function waitForCount(count: () => number, target: number, timeoutMs: number, what = "jobs"): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const t = setInterval(() => {
      if (count() >= target) {
        clearInterval(t)
        resolve()
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(t)
        reject(new Error(`only ${count()}/${target} ${what} after ${timeoutMs} ms`))
      }
    }, 2)
  })
}

/** A counter whose `done` promise resolves when it reaches `target` (exact, event-driven, no polling delay). */
export function counter(target: number) {
  let n = 0
  let resolve!: () => void
  const done = new Promise<void>((r) => (resolve = r))
  if (target <= 0) resolve()
  return {
    done,
    get value() {
      return n
    },
    inc() {
      n++
      if (n === target) resolve()
    },
  }
}

/** Rejects after `ms` with `what()` (evaluated then, so it can report progress). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let t: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${typeof what === "function" ? what() : what}: timed out after ${Math.round(ms / 1000)} s`)), Math.max(0, ms))
    }),
  ])
}

/**
 * Waits for a drain counter to reach `n`, logging progress every 5 s and
 * failing with the partial rate when the child's time runs out.
 */
export async function awaitDrain(ctx: RunContext, c: { done: Promise<void>; value: number }, n: number, t0: number, what: string): Promise<void> {
  const progress = setInterval(() => ctx.log(`${c.value}/${n} completed after ${((performance.now() - t0) / 1000).toFixed(0)} s`), 5000)
  try {
    await withTimeout(c.done, ctx.msLeft(), () => {
      const s = (performance.now() - t0) / 1000
      return `${what}: only ${c.value}/${n} completed in ${s.toFixed(0)} s (${(c.value / s).toFixed(0)} jobs/s so far)`
    })
  } finally {
    clearInterval(progress)
  }
}

/**
 * Latency recorder for workload 4. Job data carries `t` (the *scheduled* send
 * time, wall-clock ms) and `i` (sequence number); the handler calls
 * `started(data)` first thing, and the producer's send function is wrapped
 * with `track` so jobs that never start are known too.
 *
 * Jobs offered but not started by the time `summary()` is called are
 * *censored*: they count with latency = (summary time − scheduled time), a
 * lower bound. With any censored job every reported percentile is therefore a
 * lower bound (flagged by `censored > 0`); without, they are exact.
 */
export function latencyRecorder(total: number, warmupCount: number) {
  const lat = new Float64Array(total)
  const sched = new Float64Array(total).fill(NaN)
  const seen = new Uint8Array(total)
  let startedCount = 0
  let duplicates = 0
  let firstAt = Infinity
  let lastAt = 0
  return {
    track<T>(send: (i: number, t: number) => Promise<T>) {
      return (i: number, t: number) => {
        if (i >= 0 && i < total) sched[i] = t
        return send(i, t)
      }
    },
    started(data: { i: number; t: number }) {
      const at = nowMs()
      const i = data.i
      if (!(i >= 0 && i < total)) return // warm-up probes and foreign jobs
      if (seen[i]) {
        duplicates++
        return
      }
      seen[i] = 1
      lat[i] = at - data.t
      startedCount++
      if (data.t < firstAt) firstAt = data.t
      lastAt = at
    },
    get startedCount() {
      return startedCount
    },
    summary() {
      const end = nowMs()
      const xs: number[] = []
      let censored = 0
      for (let i = warmupCount; i < total; i++) {
        if (seen[i]) xs.push(lat[i]!)
        else if (!Number.isNaN(sched[i]!)) {
          xs.push(end - sched[i]!)
          censored++
        }
      }
      xs.sort((a, b) => a - b)
      return {
        samples: xs.length - censored,
        /** jobs offered after warm-up that had not started when measuring ended (their latency counted as a lower bound) */
        censored,
        /** jobs started per second, from the first scheduled send to the last handler start */
        startedPerSec: startedCount > 1 ? startedCount / ((lastAt - firstAt) / 1000) : NaN,
        missing: total - startedCount,
        duplicates,
        p50: percentile(xs, 50),
        p95: percentile(xs, 95),
        p99: percentile(xs, 99),
        max: xs.length ? xs[xs.length - 1]! : NaN,
      }
    },
  }
}

/**
 * Open-loop producer: offers job i at scheduled time start + i/rate, never
 * waiting for earlier adds or for completion. `send` must not throw
 * synchronously; its promise is tracked only to count failures and to let the
 * caller wait for the last adds to settle.
 */
export async function openLoop(opts: {
  rate: number
  durationSec: number
  send: (i: number, scheduledAt: number) => Promise<unknown>
}): Promise<{ offered: number; failed: number; seconds: number; maxLagMs: number; firstError?: string }> {
  const total = Math.round(opts.rate * opts.durationSec)
  const intervalMs = 1000 / opts.rate
  let failed = 0
  let firstError: string | undefined
  let pending = 0
  let maxLagMs = 0
  let sent = 0
  const t0 = nowMs() + 5
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMs()
      const due = Math.min(total, Math.floor((now - t0) / intervalMs) + 1)
      while (sent < due) {
        const at = t0 + sent * intervalMs
        maxLagMs = Math.max(maxLagMs, now - at)
        pending++
        opts.send(sent, at).then(
          () => pending--,
          (e: unknown) => {
            pending--
            failed++
            firstError ??= String(e)
          },
        )
        sent++
      }
      if (sent >= total) resolve()
      else setTimeout(tick, Math.max(0, Math.min(1, t0 + sent * intervalMs - nowMs())))
    }
    setTimeout(tick, 5)
  })
  const seconds = (nowMs() - t0) / 1000
  const settleBy = Date.now() + 30_000
  while (pending > 0 && Date.now() < settleBy) await sleep(5)
  return { offered: total, failed, seconds, maxLagMs, ...(firstError ? { firstError } : {}) }
}

export const MiB = 1024 * 1024

/**
 * The latency workload once a peer's worker is running: offers jobs open-loop through
 * `send` (tracked by `rec`), waits up to 30 s (or the time left) for their handler starts,
 * calls `stop`, and reports the p99 with the whole summary.
 */
export async function offerAndMeasure(
  ctx: RunContext,
  rec: ReturnType<typeof latencyRecorder>,
  send: (i: number, t: number) => Promise<unknown>,
  stop: () => Promise<void>,
): Promise<Measurement> {
  const { rate, durationSec, concurrency } = ctx.params as Required<typeof ctx.params>
  const total = Math.round(rate * durationSec)
  const load = await openLoop({ rate, durationSec, send: rec.track(send) })
  const settleBy = Date.now() + Math.min(30_000, ctx.msLeft())
  while (rec.startedCount < total - load.failed && Date.now() < settleBy) await sleep(5)
  await stop()
  const s = rec.summary()
  return {
    value: s.p99,
    unit: "ms p99",
    extra: { ...s, offered: load.offered, addFailed: load.failed, offerSeconds: load.seconds, maxSchedulingLagMs: load.maxLagMs, concurrency, rate },
  }
}
