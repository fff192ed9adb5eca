/**
 * jobledger peer (SQLite log); jobledger-kafka.ts reuses the factory with a
 * Kafka log.
 *
 * Written against the seed-style public API of src/index.ts:
 *   new JobQueue(name, { concurrency, log })      log = "sqlite:<file>" | "kafka://host:port"
 *   q.process(name, handler)                       registering a handler starts the engine
 *   q.addBulk([{ name, data }]) / q.add(name, data) resolve once durable
 *   q.on("completed" | "failed", ...)
 *   q.stats() → { waiting, active, completed, failed, delayed, paused }
 *   q.close()
 *   replayQueue(log, queue) → { events, stats }
 * The engine is imported lazily so that a missing or broken src/ makes
 * `info()` fail with a clear message (the peer is then reported as
 * unavailable) instead of crashing the harness. JOBLEDGER_ENTRY overrides the
 * module path.
 *
 * Drain: jobs are added by a producer-only JobQueue (never calls process),
 * which is closed; a second JobQueue on the same log then registers the
 * handler and the clock runs from `process()` until N "completed" events.
 */
import { createHash } from "node:crypto"
import { closeSync, cpSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  type Measurement,
  type Peer,
  type PeerInfo,
  type RunContext,
  addJobInFreshProducer,
  chunks,
  counter,
  latencyRecorder,
  MiB,
  offerAndMeasure,
  peakRss,
  settledRss,
  withTimeout,
  awaitDrain,
  sleep,
} from "./peer.ts"

// ── the slice of jobledger's public API the harness relies on ──
export interface JobLike {
  id: string | number
  name?: string
  data: unknown
  state?: string
}
export interface QueueStats {
  waiting: number
  active: number
  completed: number
  failed: number
  delayed: number
  paused: number
}
export interface JobQueueLike {
  process(name: string, handler: (job: JobLike, signal?: AbortSignal) => Promise<unknown>): unknown
  add(name: string, data: unknown): Promise<JobLike>
  addBulk(jobs: Array<{ name: string; data: unknown }>): Promise<unknown>
  on(event: "completed", cb: (job: JobLike, result: unknown) => void): unknown
  on(event: "failed", cb: (job: JobLike, err: unknown) => void): unknown
  on(event: "active", cb: (job: JobLike) => void): unknown
  stats(): Promise<QueueStats>
  close(): Promise<void>
}
export interface JobledgerModule {
  JobQueue: new (name: string, opts: { concurrency?: number; log: string }) => JobQueueLike
  replayQueue?: (log: string, queue: string) => Promise<{ events: number; stats: unknown }>
}

const root = fileURLToPath(new URL("../../", import.meta.url))
const entry = process.env.JOBLEDGER_ENTRY ?? join(root, "src/index.ts")

const loaded = new Map<string, JobledgerModule>()
async function loadEntry(path: string = entry): Promise<JobledgerModule> {
  const known = loaded.get(path)
  if (known) return known
  if (!existsSync(path)) throw new Error(`jobledger entry ${path} does not exist (core not landed yet?)`)
  const m = (await import(new URL(`file://${path}`).href)) as Partial<JobledgerModule>
  if (typeof m.JobQueue !== "function") throw new Error(`${path} does not export JobQueue`)
  loaded.set(path, m as JobledgerModule)
  return m as JobledgerModule
}

function jobledgerVersion(): string {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
  return pkg.version
}

function depVersion(name: string): string {
  try {
    const req = createRequire(join(root, "package.json"))
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}

/** Hash of the engine's sources, so a cached replay log is rebuilt when the engine changes. */
function srcHash(): string {
  const h = createHash("sha1")
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.(ts|js|mjs|sql)$/.test(e.name)) h.update(p).update(readFileSync(p))
    }
  }
  for (const d of ["src", "machines", "projections"]) if (existsSync(join(root, d))) walk(join(root, d))
  return h.digest("hex").slice(0, 12)
}

export interface Backend {
  kind: "sqlite" | "kafka"
  /** log URL for a run */
  logFor(ctx: RunContext): string
  describe(ctx: RunContext, probe: { log: string; queue: JobQueueLike }): Promise<Pick<PeerInfo, "backend" | "durability">>
  cleanup(ctx: RunContext): Promise<void>
}

const queueName = (ctx: RunContext) => `bench-${ctx.runId}`
const REPLAY_QUEUE = "bench-replay"
/** the queue of every cached SQLite history (the file is copied, so the name can be fixed) */
const HISTORY_QUEUE = "bench-history"
/** jobs added but not yet completed while building a history: keeps the build's memory to its live jobs */
const HISTORY_BUILD_BACKLOG = 20_000

async function fill(q: JobQueueLike, n: number, chunk: number, log: (s: string) => void) {
  for (const [a, b] of chunks(n, chunk)) {
    const jobs = []
    for (let i = a; i < b; i++) jobs.push({ name: "noop", data: { i } })
    await q.addBulk(jobs)
    if ((b / chunk) % 10 === 0) log(`added ${b}/${n}`)
  }
}

/** Adds n jobs with a producer-only queue, then drains them with a fresh queue; returns drain seconds. */
async function addThenDrain(ctx: RunContext, m: JobledgerModule, log: string, name: string, n: number, concurrency: number, chunk: number) {
  const say = ctx.log
  const prod = new m.JobQueue(name, { concurrency, log })
  const ta = performance.now()
  await fill(prod, n, chunk, say)
  const addSeconds = (performance.now() - ta) / 1000
  await prod.close()
  const q = new m.JobQueue(name, { concurrency, log })
  const done = counter(n)
  let failed = 0
  q.on("completed", () => done.inc())
  q.on("failed", () => failed++)
  const t0 = performance.now()
  q.process("noop", async () => undefined)
  await awaitDrain(ctx, done, n, t0, "jobledger drain")
  const seconds = (performance.now() - t0) / 1000
  const stats = await q.stats()
  await q.close()
  return { seconds, addSeconds, failed, stats }
}

/**
 * Builds a history of n completed no-op jobs on `queue`: one JobQueue processes with
 * `concurrency` while the same queue adds in chunks (at most HISTORY_BUILD_BACKLOG ahead of
 * the completions), until n "completed" events and stats().completed === n.
 */
async function buildHistory(ctx: RunContext, m: JobledgerModule, log: string, queue: string, n: number, concurrency: number, chunk: number) {
  const q = new m.JobQueue(queue, { concurrency, log })
  const done = counter(n)
  let failed = 0
  q.on("completed", () => done.inc())
  q.on("failed", () => failed++)
  q.process("noop", async () => undefined)
  const t0 = performance.now()
  const progress = setInterval(() => ctx.progress(`history ${n.toLocaleString("en-US")}: ${done.value.toLocaleString("en-US")} completed after ${((performance.now() - t0) / 1000).toFixed(0)} s`), 15_000)
  try {
    for (const [a, b] of chunks(n, chunk)) {
      while (a - done.value > HISTORY_BUILD_BACKLOG) {
        if (ctx.msLeft() <= 0) throw new Error(`history build: only ${done.value}/${n} completed: timed out after ${Math.round((performance.now() - t0) / 1000)} s`)
        await sleep(20)
      }
      const jobs = []
      for (let i = a; i < b; i++) jobs.push({ name: "noop", data: { i } })
      await q.addBulk(jobs)
    }
    await awaitDrain(ctx, done, n, t0, "history build")
  } finally {
    clearInterval(progress)
  }
  const seconds = (performance.now() - t0) / 1000
  const stats = await q.stats()
  await q.close()
  if (failed || stats.completed !== n) throw new Error(`history build: failed=${failed}, stats=${JSON.stringify(stats)}`)
  return { seconds, jobsPerSec: n / seconds, peakRssMiB: peakRss() / MiB }
}

/** Flushes a file to disk, so no write-back of it runs during a later measurement. */
function flushFile(path: string) {
  const fd = openSync(path, "r+")
  fsyncSync(fd)
  closeSync(fd)
}

/** Copies a cached log (a history, the replay log) into dir and flushes the copy (untimed). */
function copyCachedLog(src: string, dir: string) {
  mkdirSync(dir, { recursive: true })
  for (const f of readdirSync(src)) {
    if (f === "READY") continue
    cpSync(join(src, f), join(dir, f))
    flushFile(join(dir, f))
  }
}

/**
 * A jobledger peer. `moduleEntry`: the engine to measure (default: this checkout's, or
 * JOBLEDGER_ENTRY); the baseline peer passes another build of jobledger, to compare two
 * versions in one run.
 */
export function makeJobledgerPeer(name: string, backend: Backend, moduleEntry?: string): Peer {
  const load = () => {
    if (moduleEntry === "") throw new Error(`${name}: no engine entry given`)
    return loadEntry(moduleEntry)
  }
  return {
    name,

    async info(ctx) {
      const m = await load()
      mkdirSync(ctx.tmpDir, { recursive: true })
      const log = backend.logFor(ctx)
      // A tiny end-to-end probe: proves the engine works here and lets the backend inspect what it wrote.
      const q = new m.JobQueue(queueName(ctx), { concurrency: 1, log })
      const done = counter(1)
      q.on("completed", () => done.inc())
      q.process("noop", async () => undefined)
      await q.add("noop", { i: 0 })
      await withTimeout(done.done, 30_000, "jobledger probe job")
      const d = await backend.describe(ctx, { log, queue: q })
      await q.close()
      const deps = backend.kind === "sqlite" ? `better-sqlite3 ${depVersion("better-sqlite3")}` : `kafkajs ${depVersion("kafkajs")}`
      return {
        version: moduleEntry === undefined ? `jobledger ${jobledgerVersion()} (src ${srcHash()}, ${deps})` : `jobledger at ${moduleEntry} (${deps})`,
        ...d,
        notes: [
          "drain: producer-only JobQueue adds (addBulk, chunks of 1,000) and closes; a second JobQueue on the same log times process() → N 'completed' events",
          `replayQueue ${typeof m.replayQueue === "function" ? "exported" : "NOT exported"}`,
        ],
      }
    },

    async drain(ctx) {
      const m = await load()
      mkdirSync(ctx.tmpDir, { recursive: true })
      const n = ctx.params.n!
      const concurrency = ctx.params.concurrency!
      const r = await addThenDrain(ctx, m, backend.logFor(ctx), queueName(ctx), n, concurrency, ctx.params.chunk ?? 1000)
      if (r.failed || r.stats.completed !== n) throw new Error(`failed=${r.failed}, stats=${JSON.stringify(r.stats)}`)
      return {
        value: n / r.seconds,
        unit: "jobs/s",
        extra: { seconds: r.seconds, n, concurrency, failed: r.failed, addBulkJobsPerSec: n / r.addSeconds, peakRssMiB: peakRss() / MiB },
      }
    },

    async addSerial(ctx) {
      const m = await load()
      mkdirSync(ctx.tmpDir, { recursive: true })
      const n = ctx.params.n!
      // Producer-only: no engine runs, so nothing competes with the adds (as for the peers, whose
      // worker is not running either). stats() stays 0 here – jobs only appear once an engine turns
      // the commands into events – so the check is on what add() returned.
      const q = new m.JobQueue(queueName(ctx), { concurrency: 1, log: backend.logFor(ctx) })
      await q.add("noop", { i: -1 })
      const ids = new Set<string | number>()
      const t0 = performance.now()
      for (let i = 0; i < n; i++) ids.add((await q.add("noop", { i })).id)
      const seconds = (performance.now() - t0) / 1000
      await q.close()
      if (ids.size !== n) throw new Error(`add() returned ${ids.size} distinct job ids for ${n} adds`)
      return { value: n / seconds, unit: "adds/s", extra: { seconds, n } }
    },

    async latency(ctx) {
      const m = await load()
      mkdirSync(ctx.tmpDir, { recursive: true })
      const { rate, durationSec, warmupSec, concurrency } = ctx.params as Required<typeof ctx.params>
      const total = Math.round(rate * durationSec)
      const rec = latencyRecorder(total, Math.round(rate * warmupSec))
      const q = new m.JobQueue(queueName(ctx), { concurrency, log: backend.logFor(ctx) })
      q.process("noop", async (job) => {
        rec.started(job.data as { i: number; t: number })
      })
      await q.add("noop", { i: -1, t: 0 }).catch(() => undefined) // let the engine start; its sample is ignored (i < 0)
      return offerAndMeasure(ctx, rec, (i, t) => q.add("noop", { i, t }), () => q.close())
    },

    async memory(ctx) {
      const m = await load()
      mkdirSync(ctx.tmpDir, { recursive: true })
      const n = ctx.params.n!
      // The engine must run for jobs to exist in its projection (a producer-only queue only appends
      // commands). Its handler never finishes and concurrency is 1, so after the adds one job is
      // active and n−1 are waiting, all held by this process; close() aborts the held one.
      const q = new m.JobQueue(queueName(ctx), { concurrency: 1, log: backend.logFor(ctx) })
      q.process(
        "noop",
        (_job: JobLike, signal?: AbortSignal) =>
          new Promise((_, reject) => signal?.addEventListener("abort", () => reject(new Error("aborted by close()")))),
      )
      await q.stats() // engine and read model open, projection empty
      const rssBase = await settledRss()
      await fill(q, n, ctx.params.chunk ?? 1000, ctx.log)
      let stats = await q.stats()
      while (stats.waiting + stats.active + stats.paused < n && ctx.msLeft() > 0) {
        await new Promise((r) => setTimeout(r, 200))
        stats = await q.stats()
      }
      if (stats.waiting + stats.active + stats.paused !== n || stats.completed + stats.failed !== 0)
        throw new Error(`expected ${n} jobs waiting/active, stats=${JSON.stringify(stats)}`)
      const rssWith = await settledRss()
      const peak = peakRss()
      const logBytes = backend.kind === "sqlite" ? dirBytes(ctx.tmpDir) : null
      await (q.close as (o?: { graceMs?: number }) => Promise<void>)({ graceMs: 100 })
      const processPerJob = (rssWith - rssBase) / n
      return {
        value: peak / MiB,
        unit: "MiB peak RSS",
        extra: {
          n,
          rssBaselineMiB: rssBase / MiB,
          rssWithMiB: rssWith / MiB,
          peakRssMiB: peak / MiB,
          processBytesPerJob: processPerJob,
          serverBytesDelta: null,
          serverBytesPerJob: null,
          serverMetric: backend.kind === "sqlite" ? "none (in-process); log file size reported as logBytesPerJob" : "Kafka broker not measured",
          logBytesPerJob: logBytes === null ? null : logBytes / n,
          totalBytesPerJob: processPerJob,
          statsWithJobs: JSON.stringify(stats),
        },
      }
    },

    ...(backend.kind === "sqlite"
      ? {
          async prepareReplay(ctx: RunContext) {
            const m = await load()
            if (typeof m.replayQueue !== "function") throw new Error("src/index.ts does not export replayQueue")
            const events = ctx.params.events!
            const dir = replayCacheDir(events)
            if (existsSync(join(dir, "READY"))) {
              ctx.log(`replay log cached at ${dir}`)
              return { cached: "yes", dir, ...(JSON.parse(readFileSync(join(dir, "READY"), "utf8")) as Record<string, number>) }
            }
            // Drop logs cached for older engine sources; they are large and will not be used again.
            const parent = join(dir, "..")
            if (existsSync(parent))
              for (const d of readdirSync(parent)) if (d.startsWith(`replay-${events}-`)) rmSync(join(parent, d), { recursive: true, force: true })
            mkdirSync(dir, { recursive: true })
            // 1 event per add + 2 per processed job (active, completed) → 3 events per job.
            const jobs = Math.ceil(events / 3)
            const log = sqliteUrl(join(dir, "jobs.db"))
            const t0 = performance.now()
            const r = await addThenDrain(ctx, m, log, REPLAY_QUEUE, jobs, 100, 5000)
            const probe = await m.replayQueue(log, REPLAY_QUEUE)
            for (const f of readdirSync(dir)) flushFile(join(dir, f)) // its write-back done before the first repetition
            const meta = { jobs, events: probe.events, buildSeconds: (performance.now() - t0) / 1000, drainSeconds: r.seconds, bytes: dirBytes(dir) }
            writeFileSync(join(dir, "READY"), JSON.stringify(meta))
            ctx.log(`built replay log: ${JSON.stringify(meta)}`)
            return { cached: "no", dir, ...meta }
          },

          async replay(ctx: RunContext) {
            const m = await load()
            const replayQueue = m.replayQueue
            if (typeof replayQueue !== "function") throw new Error("src/index.ts does not export replayQueue")
            const events = ctx.params.events!
            const src = replayCacheDir(events)
            if (!existsSync(join(src, "READY"))) throw new Error(`replay log not built at ${src}`)
            // Work on a private copy (untimed, flushed) so nothing the replay writes can speed up the
            // next repetition, and the copy's write-back does not run during this one.
            copyCachedLog(src, ctx.tmpDir)
            const t0 = performance.now()
            const r = await replayQueue(sqliteUrl(join(ctx.tmpDir, "jobs.db")), REPLAY_QUEUE)
            const seconds = (performance.now() - t0) / 1000
            if (r.events < events * 0.9) throw new Error(`replay saw ${r.events} events, expected ≈${events}`)
            return {
              value: r.events / seconds,
              unit: "events/s",
              extra: { events: r.events, seconds, peakRssMiB: peakRss() / MiB, stats: JSON.stringify(r.stats) },
            }
          },
        }
      : {}),

    async prepareHistory(ctx): Promise<Record<string, number | string>> {
      const m = await load()
      const n = ctx.params.history!
      const concurrency = ctx.params.concurrency ?? 100
      const chunk = ctx.params.chunk ?? 5_000
      if (backend.kind === "kafka") {
        // Topics live on the broker, named after the queue: this child's queue, removed by the
        // harness (cleanup with this runId) once the size is measured.
        const queue = queueName(ctx)
        const t0 = performance.now()
        const b = await buildHistory(ctx, m, backend.logFor(ctx), queue, n, concurrency, chunk)
        return { cached: "no", scope: "run", ref: queue, jobs: n, buildSeconds: (performance.now() - t0) / 1000, drainJobsPerSec: b.jobsPerSec, buildPeakRssMiB: b.peakRssMiB }
      }
      const dir = historyCacheDir(n)
      if (existsSync(join(dir, "READY"))) {
        ctx.log(`history cached at ${dir}`)
        return { cached: "yes", scope: "cache", ref: dir, ...(JSON.parse(readFileSync(join(dir, "READY"), "utf8")) as Record<string, number>) }
      }
      // Drop histories cached for older engine sources; they are large and will not be used again.
      const parent = join(dir, "..")
      if (existsSync(parent)) for (const d of readdirSync(parent)) if (d.startsWith(`history-${n}-`)) rmSync(join(parent, d), { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      const t0 = performance.now()
      const b = await buildHistory(ctx, m, sqliteUrl(join(dir, "jobs.db")), HISTORY_QUEUE, n, concurrency, chunk)
      const meta = { jobs: n, buildSeconds: (performance.now() - t0) / 1000, drainJobsPerSec: b.jobsPerSec, buildPeakRssMiB: b.peakRssMiB, bytes: dirBytes(dir) }
      writeFileSync(join(dir, "READY"), JSON.stringify(meta))
      ctx.log(`built history: ${JSON.stringify(meta)}`)
      return { cached: "no", scope: "cache", ref: dir, ...meta }
    },

    async history(ctx) {
      const m = await load()
      const { history: n, probe, historyRef } = ctx.params
      if (!n || !probe || !historyRef) throw new Error("history(): params.history, probe and historyRef are required")
      let log: string
      let queue: string
      if (backend.kind === "sqlite") {
        if (!existsSync(join(historyRef, "READY"))) throw new Error(`history not built at ${historyRef}`)
        // Every measurement starts from the same file: a private copy (untimed), unless this is the
        // engine probe's producer, which adds its job to the copy the engine child made.
        if (!ctx.params.asProbeSource) copyCachedLog(historyRef, ctx.tmpDir)
        log = sqliteUrl(join(ctx.tmpDir, "jobs.db"))
        queue = HISTORY_QUEUE
      } else {
        log = backend.logFor(ctx)
        queue = historyRef
      }
      return historyProbe(ctx, m, name, log, queue)
    },

    async cleanup(ctx) {
      await backend.cleanup(ctx)
      rmSync(ctx.tmpDir, { recursive: true, force: true })
    },
  }
}

/**
 * One history measurement in this (fresh) process; the engine module is already imported,
 * so module loading is outside every clock. RSS is process.memoryUsage().rss right after the
 * answer (no forced GC: what the process holds at that moment), peak RSS from getrusage.
 */
async function historyProbe(ctx: RunContext, m: JobledgerModule, peerName: string, log: string, queue: string): Promise<Measurement> {
  const n = ctx.params.history!
  const rssBeforeMiB = (await settledRss()) / MiB
  const common = { history: n, rssBeforeMiB }
  if (ctx.params.probe === "producer") {
    const t0 = performance.now()
    const q = new m.JobQueue(queue, { log })
    const job = await withTimeout(q.add("noop", { probe: ctx.params.probeId ?? `producer-${ctx.runId}` }), ctx.msLeft(), "first add")
    const ms = performance.now() - t0
    const rss = process.memoryUsage().rss / MiB
    await q.close()
    return { value: ms, unit: "ms to first add", extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, jobId: String(job.id) } }
  }
  if (ctx.params.probe === "reader") {
    const t0 = performance.now()
    const q = new m.JobQueue(queue, { log })
    const stats = await withTimeout(q.stats(), ctx.msLeft(), "first stats()")
    const ms = performance.now() - t0
    const rss = process.memoryUsage().rss / MiB
    await q.close()
    // Kafka histories are shared by the measurements and grow by their probe jobs (≥ n); SQLite copies stay at n.
    if (stats.completed < n) throw new Error(`first stats() shows ${stats.completed} completed, the history has ${n}: ${JSON.stringify(stats)}`)
    return { value: ms, unit: "ms to first stats()", extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, completed: stats.completed, stats: JSON.stringify(stats) } }
  }
  // engine: the job comes from a separate producer process, added before this process opens the queue
  const probeId = `engine-${ctx.runId}`
  const source = await addJobInFreshProducer(ctx, peerName, probeId)
  let startedAt = NaN
  let started!: () => void
  const startedP = new Promise<void>((r) => (started = r))
  const t0 = performance.now()
  const q = new m.JobQueue(queue, { concurrency: ctx.params.concurrency ?? 100, log })
  const tp = performance.now()
  q.process("noop", async (job) => {
    if ((job.data as { probe?: string } | undefined)?.probe === probeId && Number.isNaN(startedAt)) {
      startedAt = performance.now()
      started()
    }
  })
  await withTimeout(startedP, ctx.msLeft(), "engine: first new job started")
  const rss = process.memoryUsage().rss / MiB
  await q.close()
  return {
    value: startedAt - tp,
    unit: "ms process() → first new job started",
    extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, msFromConstructor: startedAt - t0, sourceAddMs: source.value },
  }
}

/** A cached SQLite history of n completed jobs, keyed like the replay log by the engine's sources. */
export function historyCacheDir(n: number): string {
  return join(process.env.BENCH_CACHE_DIR ?? "/tmp/jobledger-bench-cache", `history-${n}-${srcHash()}`)
}

export function replayCacheDir(events: number): string {
  return join(process.env.BENCH_CACHE_DIR ?? "/tmp/jobledger-bench-cache", `replay-${events}-${srcHash()}`)
}

function dirBytes(dir: string): number {
  let total = 0
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f))
    if (st.isFile()) total += st.size
  }
  return total
}

// ── SQLite backend ──

async function sqlitePragmas(file: string): Promise<{ journal: string; synchronous: string }> {
  const req = createRequire(join(root, "package.json"))
  const Database = req("better-sqlite3") as new (f: string, o: { readonly: boolean; fileMustExist: boolean }) => {
    pragma(s: string, o: { simple: true }): unknown
    close(): void
  }
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return { journal: String(db.pragma("journal_mode", { simple: true })), synchronous: "" }
  } finally {
    db.close()
  }
}

/** BENCH_SQLITE_SYNC=full runs jobledger with `sqlite:<file>?sync=full`; unset = the engine's default (NORMAL). */
const SQLITE_SYNC = process.env.BENCH_SQLITE_SYNC?.toLowerCase()
const sqliteUrl = (file: string) => `sqlite:${file}${SQLITE_SYNC ? `?sync=${SQLITE_SYNC}` : ""}`

const SYNC_NAMES: Record<string, string> = { "0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA" }

export const sqliteBackend: Backend = {
  kind: "sqlite",
  logFor: (ctx) => sqliteUrl(join(ctx.tmpDir, "jobs.db")),
  async describe(ctx, { queue }) {
    const file = join(ctx.tmpDir, "jobs.db")
    let journal = "unknown (no file at the log path)"
    if (existsSync(file)) journal = (await sqlitePragmas(file)).journal
    // `synchronous` is per-connection, so it cannot be read from the file. Ask the engine if it says
    // (a `durability` property / `durability()` method on JobQueue), else derive it from the log URL.
    const q = queue as unknown as { durability?: unknown }
    let sync: string | undefined
    try {
      const d = typeof q.durability === "function" ? await (q.durability as () => unknown)() : q.durability
      if (d && typeof d === "object" && "synchronous" in d) sync = String((d as { synchronous: unknown }).synchronous)
      else if (typeof d === "string") sync = d
    } catch {
      /* not reported */
    }
    const syncText = sync
      ? `synchronous=${SYNC_NAMES[sync] ?? sync}`
      : SQLITE_SYNC
        ? `synchronous=${SQLITE_SYNC.toUpperCase()} (log URL ?sync=${SQLITE_SYNC})`
        : "synchronous=NORMAL (the engine's default for a log URL without ?sync=)"
    return {
      backend: `SQLite file on ${fsType(ctx.tmpDir)} (${ctx.tmpDir.replace(/[^/]+$/, "…")})`,
      durability: `SQLite journal_mode=${journal.toUpperCase()}, ${syncText}; adds resolve once committed`,
    }
  },
  async cleanup() {
    /* the run's tmpDir is removed by the peer */
  },
}

function fsType(dir: string): string {
  try {
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f.length > 2 && dir.startsWith(f[1]!))
      .sort((a, b) => b[1]!.length - a[1]!.length)
    return mounts[0] ? `${mounts[0][2]} ${mounts[0][1]}` : "?"
  } catch {
    return "?"
  }
}

export default makeJobledgerPeer("jobledger", sqliteBackend)
