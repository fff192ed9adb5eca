/**
 * BullMQ peer: Queue + Worker on the local Redis (127.0.0.1:6379 unless
 * BENCH_REDIS_URL / REDIS_HOST / REDIS_PORT say otherwise).
 *
 * Choices (stated in RESULTS.md):
 * - Job options are BullMQ's defaults: completed and failed jobs are KEPT
 *   (`removeOnComplete`/`removeOnFail` unset), attempts 1. That is what
 *   `queue.add(name, data)` does out of the box, and it retains history the
 *   way jobledger's log does.
 * - Worker options are defaults apart from `concurrency` (and `autorun:false`
 *   so the clock starts after the connection is ready).
 * - Every run uses its own key prefix `bench-<runId>`; cleanup UNLINKs
 *   `bench-<runId>:*`.
 * - BullMQ 6 does not depend on a Redis driver; we hand it ioredis through
 *   `RedisConnection.clientFactory`. ioredis is resolved from the project's
 *   node_modules first, then from bench/.deps (see bench/README.md).
 */
import { createRequire } from "node:module"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Queue, Worker, RedisConnection, createIORedisClient } from "bullmq"
import {
  type Measurement,
  type Peer,
  type RunContext,
  addJobInFreshProducer,
  chunks,
  counter,
  latencyRecorder,
  MiB,
  offerAndMeasure,
  peakRss,
  settledRss,
  awaitDrain,
  sleep,
  withTimeout,
} from "./peer.ts"

const here = fileURLToPath(new URL(".", import.meta.url))
const QUEUE = "bench"

type IORedisCtor = new (...args: unknown[]) => IORedisLike
interface IORedisLike {
  info(section: string): Promise<string>
  scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>
  unlink(...keys: string[]): Promise<number>
  config(op: "GET", key: string): Promise<string[]>
  quit(): Promise<unknown>
  disconnect(): void
}

let ioredisVersion = "?"
function loadIORedis(): IORedisCtor {
  const attempts = [
    createRequire(import.meta.url), // project node_modules (preferred: add ioredis to devDependencies)
    createRequire(here + "../.deps/package.json"), // bench-local fallback
  ]
  for (const req of attempts) {
    try {
      const mod = req("ioredis") as { default?: IORedisCtor } & IORedisCtor
      try {
        const pkgPath = req.resolve("ioredis/package.json")
        ioredisVersion = (JSON.parse(readFileSync(pkgPath, "utf8")) as { version: string }).version
      } catch {
        /* version unknown */
      }
      return mod.default ?? mod
    } catch {
      /* try next */
    }
  }
  throw new Error(
    "BullMQ needs a Redis driver and none is installed: `npm i -D ioredis` in the project, " +
      "or `npm --prefix bench/.deps i ioredis` for a bench-local copy.",
  )
}

const IORedis = loadIORedis()

function redisOpts(): { host: string; port: number } {
  const url = process.env.BENCH_REDIS_URL
  if (url) {
    const u = new URL(url)
    return { host: u.hostname, port: Number(u.port || 6379) }
  }
  return { host: process.env.REDIS_HOST ?? "127.0.0.1", port: Number(process.env.REDIS_PORT ?? 6379) }
}

RedisConnection.clientFactory = (opts) => createIORedisClient(new IORedis(opts) as never) as never

const connection = redisOpts()
const prefixOf = (ctx: RunContext) => `bench-${ctx.runId}`
const rawRedis = () => new IORedis({ ...connection, maxRetriesPerRequest: 3, lazyConnect: false })

function bullmqVersion(): string {
  const req = createRequire(import.meta.url)
  return (JSON.parse(readFileSync(req.resolve("bullmq/package.json"), "utf8")) as { version: string }).version
}

async function usedMemory(r: IORedisLike): Promise<number> {
  const info = await r.info("memory")
  const m = /used_memory:(\d+)/.exec(info)
  return m ? Number(m[1]) : NaN
}

async function fill(queue: Queue, n: number, chunk: number, log: (s: string) => void) {
  for (const [a, b] of chunks(n, chunk)) {
    const jobs = []
    for (let i = a; i < b; i++) jobs.push({ name: "noop", data: { i } })
    await queue.addBulk(jobs)
    if ((b / chunk) % 10 === 0) log(`added ${b}/${n}`)
  }
}

/** BullMQ keeps finished jobs unless told otherwise; the history workload says so explicitly. */
const KEEP = { removeOnComplete: false, removeOnFail: false } as const
/** jobs added but not yet completed while building a history */
const HISTORY_BUILD_BACKLOG = 20_000

/**
 * One history measurement in this (fresh) process against the jobs kept under `prefix`.
 * RSS is process.memoryUsage().rss right after the answer (no forced GC).
 */
async function historyProbe(ctx: RunContext, prefix: string): Promise<Measurement> {
  const n = ctx.params.history!
  const rssBeforeMiB = (await settledRss()) / MiB
  const common = { history: n, rssBeforeMiB }
  if (ctx.params.probe === "producer") {
    const t0 = performance.now()
    const queue = new Queue(QUEUE, { connection, prefix })
    const job = await withTimeout(queue.add("noop", { probe: ctx.params.probeId ?? `producer-${ctx.runId}` }, KEEP), ctx.msLeft(), "first add")
    const ms = performance.now() - t0
    const rss = process.memoryUsage().rss / MiB
    // keep the shared history at n completed + 0 waiting, unless this job is the engine probe's
    if (!ctx.params.asProbeSource) await job.remove()
    await queue.close()
    return { value: ms, unit: "ms to first add", extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, jobId: String(job.id) } }
  }
  if (ctx.params.probe === "reader") {
    const t0 = performance.now()
    const queue = new Queue(QUEUE, { connection, prefix })
    const counts = await withTimeout(queue.getJobCounts(), ctx.msLeft(), "first getJobCounts()")
    const ms = performance.now() - t0
    const rss = process.memoryUsage().rss / MiB
    await queue.close()
    const completed = counts.completed ?? 0
    if (completed < n) throw new Error(`first getJobCounts() shows ${completed} completed, the history has ${n}: ${JSON.stringify(counts)}`)
    return { value: ms, unit: "ms to first getJobCounts()", extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, completed, stats: JSON.stringify(counts) } }
  }
  // engine: the job comes from a separate producer process, added before this process connects
  const probeId = `engine-${ctx.runId}`
  const source = await addJobInFreshProducer(ctx, "bullmq", probeId)
  let startedAt = NaN
  let started!: () => void
  const startedP = new Promise<void>((r) => (started = r))
  const t0 = performance.now()
  const worker = new Worker(
    QUEUE,
    async (job) => {
      if ((job.data as { probe?: string } | undefined)?.probe === probeId && Number.isNaN(startedAt)) {
        startedAt = performance.now()
        started()
      }
    },
    { connection, prefix, concurrency: ctx.params.concurrency ?? 100 },
  )
  await withTimeout(startedP, ctx.msLeft(), "worker: first new job started")
  const rss = process.memoryUsage().rss / MiB
  await worker.close()
  // the probe job is completed now: remove it so the next measurement sees exactly n again
  const queue = new Queue(QUEUE, { connection, prefix })
  await queue.remove(String(source.extra?.jobId))
  await queue.close()
  return { value: startedAt - t0, unit: "ms new Worker → first new job started", extra: { ...common, rssMiB: rss, peakRssMiB: peakRss() / MiB, sourceAddMs: source.value } }
}

const peer: Peer = {
  name: "bullmq",

  async info() {
    const r = rawRedis()
    try {
      const info = await r.info("server")
      const ver = /redis_version:(\S+)/.exec(info)?.[1] ?? "?"
      const save = (await r.config("GET", "save"))[1] ?? "?"
      const aof = (await r.config("GET", "appendonly"))[1] ?? "?"
      return {
        version: `bullmq ${bullmqVersion()} (ioredis ${ioredisVersion})`,
        backend: `Redis ${ver} at ${connection.host}:${connection.port}`,
        durability: `Redis persistence ${save === "" && aof === "no" ? "OFF" : "ON"} (save="${save}", appendonly=${aof}): acknowledged jobs are in memory only`,
        notes: [
          "default job options: completed/failed jobs kept (removeOnComplete/removeOnFail unset), attempts=1",
          "default Worker options apart from concurrency; processor is an async no-op",
          "jobs loaded with Queue.addBulk in chunks of 1,000",
        ],
      }
    } finally {
      r.disconnect()
    }
  },

  async drain(ctx) {
    const n = ctx.params.n!
    const concurrency = ctx.params.concurrency!
    const prefix = prefixOf(ctx)
    const queue = new Queue(QUEUE, { connection, prefix })
    const ta = performance.now()
    await fill(queue, n, ctx.params.chunk ?? 1000, ctx.log)
    const addSeconds = (performance.now() - ta) / 1000
    const done = counter(n)
    let failed = 0
    const worker = new Worker(QUEUE, async () => undefined, { connection, prefix, concurrency, autorun: false })
    worker.on("completed", () => done.inc())
    worker.on("failed", () => failed++)
    await worker.waitUntilReady()
    const t0 = performance.now()
    void worker.run()
    await awaitDrain(ctx, done, n, t0, "bullmq drain")
    const seconds = (performance.now() - t0) / 1000
    await worker.close()
    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active")
    await queue.close()
    if (counts.completed !== n) throw new Error(`expected ${n} completed, Redis says ${JSON.stringify(counts)}`)
    return {
      value: n / seconds,
      unit: "jobs/s",
      extra: { seconds, n, concurrency, failed, addBulkJobsPerSec: n / addSeconds, peakRssMiB: peakRss() / MiB },
    }
  },

  async addSerial(ctx) {
    const n = ctx.params.n!
    const queue = new Queue(QUEUE, { connection, prefix: prefixOf(ctx) })
    await queue.waitUntilReady()
    await queue.add("noop", { i: -1 }) // warm the connection and load the Lua scripts
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await queue.add("noop", { i })
    const seconds = (performance.now() - t0) / 1000
    await queue.close()
    return { value: n / seconds, unit: "adds/s", extra: { seconds, n } }
  },

  async latency(ctx) {
    const { rate, durationSec, warmupSec, concurrency } = ctx.params as Required<typeof ctx.params>
    const total = Math.round(rate * durationSec)
    const prefix = prefixOf(ctx)
    const queue = new Queue(QUEUE, { connection, prefix })
    const rec = latencyRecorder(total, Math.round(rate * warmupSec))
    const worker = new Worker(
      QUEUE,
      async (job) => {
        rec.started(job.data as { i: number; t: number })
      },
      { connection, prefix, concurrency },
    )
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()])
    return offerAndMeasure(
      ctx,
      rec,
      (i, t) => queue.add("noop", { i, t }),
      async () => {
        await worker.close()
        await queue.close()
      },
    )
  },

  async memory(ctx) {
    const n = ctx.params.n!
    const prefix = prefixOf(ctx)
    const r = rawRedis()
    const queue = new Queue(QUEUE, { connection, prefix })
    // A worker process that is connected but not fetching: the jobs are in Redis, not in this process.
    const worker = new Worker(QUEUE, async () => undefined, { connection, prefix, concurrency: 1, autorun: false })
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()])
    await queue.add("noop", { i: -1 }, { removeOnComplete: true }) // load scripts before the baseline
    await queue.drain()
    const rssBase = await settledRss()
    const redisBase = await usedMemory(r)
    await fill(queue, n, ctx.params.chunk ?? 1000, ctx.log)
    const waiting = await queue.getWaitingCount()
    if (waiting !== n) throw new Error(`expected ${n} waiting, got ${waiting}`)
    const rssWith = await settledRss()
    const redisWith = await usedMemory(r)
    const peak = peakRss()
    await worker.close()
    await queue.close()
    r.disconnect()
    const processPerJob = (rssWith - rssBase) / n
    const serverPerJob = (redisWith - redisBase) / n
    return {
      value: peak / MiB,
      unit: "MiB peak RSS",
      extra: {
        n,
        rssBaselineMiB: rssBase / MiB,
        rssWithMiB: rssWith / MiB,
        peakRssMiB: peak / MiB,
        processBytesPerJob: processPerJob,
        serverBytesDelta: redisWith - redisBase,
        serverBytesPerJob: serverPerJob,
        serverMetric: "Redis INFO used_memory delta",
        totalBytesPerJob: processPerJob + serverPerJob,
      },
    }
  },

  async prepareHistory(ctx) {
    // One key prefix per size and run (this child's), removed by the harness's cleanup with this runId.
    const n = ctx.params.history!
    const prefix = prefixOf(ctx)
    const queue = new Queue(QUEUE, { connection, prefix })
    const done = counter(n)
    let failed = 0
    const worker = new Worker(QUEUE, async () => undefined, { connection, prefix, concurrency: ctx.params.concurrency ?? 100 })
    worker.on("completed", () => done.inc())
    worker.on("failed", () => failed++)
    const t0 = performance.now()
    const progress = setInterval(() => ctx.progress(`history ${n.toLocaleString("en-US")}: ${done.value.toLocaleString("en-US")} completed after ${((performance.now() - t0) / 1000).toFixed(0)} s`), 15_000)
    try {
      const chunk = ctx.params.chunk ?? 5_000
      for (const [a, b] of chunks(n, chunk)) {
        while (a - done.value > HISTORY_BUILD_BACKLOG) {
          if (ctx.msLeft() <= 0) throw new Error(`history build: only ${done.value}/${n} completed: timed out after ${Math.round((performance.now() - t0) / 1000)} s`)
          await sleep(20)
        }
        const jobs = []
        for (let i = a; i < b; i++) jobs.push({ name: "noop", data: { i }, opts: KEEP })
        await queue.addBulk(jobs)
      }
      await awaitDrain(ctx, done, n, t0, "bullmq history build")
    } finally {
      clearInterval(progress)
    }
    const seconds = (performance.now() - t0) / 1000
    await worker.close()
    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active")
    await queue.close()
    if (failed || counts.completed !== n) throw new Error(`history build: failed=${failed}, Redis says ${JSON.stringify(counts)}`)
    const r = rawRedis()
    const redisMiB = (await usedMemory(r)) / MiB
    r.disconnect()
    return { cached: "no", scope: "run", ref: prefix, jobs: n, buildSeconds: seconds, drainJobsPerSec: n / seconds, redisUsedMemoryMiB: redisMiB }
  },

  async history(ctx) {
    const { history, probe, historyRef } = ctx.params
    if (!history || !probe || !historyRef) throw new Error("history(): params.history, probe and historyRef are required")
    return historyProbe(ctx, historyRef)
  },

  async cleanup(ctx) {
    const r = rawRedis()
    try {
      let cursor = "0"
      let removed = 0
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", `${prefixOf(ctx)}:*`, "COUNT", 1000)
        cursor = next
        if (keys.length) removed += await r.unlink(...keys)
      } while (cursor !== "0")
      ctx.log(`cleanup: unlinked ${removed} keys`)
    } finally {
      r.disconnect()
    }
  },
}

export default peer
