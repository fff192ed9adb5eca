/**
 * graphile-worker peer on the local PostgreSQL (BENCH_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test).
 *
 * Choices (stated in RESULTS.md):
 * - a fresh schema `gw_bench_<runId>` per run (option `schema`), dropped by cleanup;
 * - `run({ concurrency, pollInterval: 50, noHandleSignals: true, taskList })`;
 *   new jobs are also announced through LISTEN/NOTIFY, pollInterval only bounds
 *   the fallback poll;
 * - `maxPoolSize = min(concurrency + 2, 50)` – graphile-worker's own advice is
 *   "10 or concurrentJobs + 2, whichever is larger", capped below the server's
 *   max_connections (100 here);
 * - the opt-in batching features (localQueue, completeJobBatchDelay) are left
 *   at their defaults (off), as a user who has not tuned them would have them;
 * - logging is silenced below "warning" (graphile-worker logs every job at
 *   info level, which would otherwise dominate the measurement).
 * - graphile-worker deletes a job when it completes (its design; there is no
 *   "keep completed" option).
 */
import { EventEmitter } from "node:events"
import { createRequire } from "node:module"
import { readFileSync } from "node:fs"
import pg from "pg"
import { Logger, makeWorkerUtils, run, type WorkerUtils } from "graphile-worker"
import {
  type Peer,
  type RunContext,
  chunks,
  counter,
  latencyRecorder,
  MiB,
  offerAndMeasure,
  peakRss,
  settledRss,
  awaitDrain,
} from "./peer.ts"

const connectionString = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const POLL_INTERVAL = 50
const schemaOf = (ctx: RunContext) => `gw_bench_${ctx.runId}`
const poolSize = (concurrency: number) =>
  process.env.BENCH_GW_MAX_POOL ? Number(process.env.BENCH_GW_MAX_POOL) : Math.min(Math.max(10, concurrency + 2), 50)

const logger = new Logger(() => (level: string, message: string) => {
  if (level === "error" || level === "warning") process.stderr.write(`[graphile-worker ${level}] ${message}\n`)
})

const noop = async () => undefined

function version(pkg: string): string {
  const req = createRequire(import.meta.url)
  return (JSON.parse(readFileSync(req.resolve(`${pkg}/package.json`), "utf8")) as { version: string }).version
}

async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString })
  await c.connect()
  try {
    return (await c.query<T>(text)).rows
  } finally {
    await c.end()
  }
}

async function utils(ctx: RunContext): Promise<WorkerUtils> {
  const u = await makeWorkerUtils({ connectionString, schema: schemaOf(ctx), logger })
  await u.migrate()
  return u
}

async function fill(u: WorkerUtils, n: number, chunk: number, log: (s: string) => void) {
  for (const [a, b] of chunks(n, chunk)) {
    const specs = []
    for (let i = a; i < b; i++) specs.push({ identifier: "noop", payload: { i } })
    await u.addJobs(specs)
    if ((b / chunk) % 10 === 0) log(`added ${b}/${n}`)
  }
}

async function jobsTableBytes(ctx: RunContext): Promise<number> {
  const rows = await sql<{ b: string }>(`select pg_total_relation_size('"${schemaOf(ctx)}"._private_jobs')::text as b`)
  return Number(rows[0]!.b)
}

const peer: Peer = {
  name: "graphile-worker",

  async info() {
    const [v] = await sql<{ version: string }>("select version()")
    const [s] = await sql<{ fsync: string; sc: string; mc: string }>(
      "select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc, current_setting('max_connections') as mc",
    )
    const pgVer = /PostgreSQL [\d.]+/.exec(v!.version)?.[0] ?? v!.version
    return {
      version: `graphile-worker ${version("graphile-worker")} (pg ${version("pg")})`,
      backend: `${pgVer} at ${new URL(connectionString).host} (max_connections=${s!.mc})`,
      durability: `PostgreSQL fsync=${s!.fsync}, synchronous_commit=${s!.sc}: every add and every completion is a durable commit`,
      notes: [
        `run() with pollInterval=${POLL_INTERVAL} ms, noHandleSignals, maxPoolSize=min(max(10, concurrency+2), 50)`,
        "localQueue and completeJobBatchDelay left at defaults (off); logging below 'warning' silenced",
        "completed jobs are deleted (graphile-worker's design)",
        "jobs loaded with WorkerUtils.addJobs (graphile_worker.add_jobs) in chunks of 1,000; serial adds use addJob",
      ],
    }
  },

  async drain(ctx) {
    const n = ctx.params.n!
    const concurrency = ctx.params.concurrency!
    const u = await utils(ctx)
    const ta = performance.now()
    await fill(u, n, ctx.params.chunk ?? 1000, ctx.log)
    const addSeconds = (performance.now() - ta) / 1000
    await u.release()
    const done = counter(n)
    let failed = 0
    const events = new EventEmitter()
    events.on("job:complete", ({ error }: { error: unknown }) => {
      if (error) failed++
      done.inc()
    })
    const t0 = performance.now()
    const runner = await run({
      connectionString,
      schema: schemaOf(ctx),
      concurrency,
      maxPoolSize: poolSize(concurrency),
      pollInterval: POLL_INTERVAL,
      noHandleSignals: true,
      taskList: { noop },
      logger,
      events,
    })
    await awaitDrain(ctx, done, n, t0, "graphile-worker drain")
    const seconds = (performance.now() - t0) / 1000
    await runner.stop()
    const [left] = await sql<{ c: string }>(`select count(*)::text as c from "${schemaOf(ctx)}"._private_jobs`)
    if (failed || Number(left!.c) !== 0) throw new Error(`failed=${failed}, ${left!.c} jobs left in the table`)
    return {
      value: n / seconds,
      unit: "jobs/s",
      extra: { seconds, n, concurrency, failed, addBulkJobsPerSec: n / addSeconds, peakRssMiB: peakRss() / MiB },
    }
  },

  async addSerial(ctx) {
    const n = ctx.params.n!
    const u = await utils(ctx)
    await u.addJob("noop", { i: -1 }) // warm the pool and prepared statements
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await u.addJob("noop", { i })
    const seconds = (performance.now() - t0) / 1000
    await u.release()
    return { value: n / seconds, unit: "adds/s", extra: { seconds, n } }
  },

  async latency(ctx) {
    const { rate, durationSec, warmupSec, concurrency } = ctx.params as Required<typeof ctx.params>
    const total = Math.round(rate * durationSec)
    const u = await utils(ctx)
    const rec = latencyRecorder(total, Math.round(rate * warmupSec))
    const runner = await run({
      connectionString,
      schema: schemaOf(ctx),
      concurrency,
      maxPoolSize: poolSize(concurrency),
      pollInterval: POLL_INTERVAL,
      noHandleSignals: true,
      taskList: {
        noop: async (payload) => {
          rec.started(payload as { i: number; t: number })
        },
      },
      logger,
    })
    return offerAndMeasure(
      ctx,
      rec,
      (i, t) => u.addJob("noop", { i, t }),
      async () => {
        await runner.stop()
        await u.release()
      },
    )
  },

  async memory(ctx) {
    const n = ctx.params.n!
    const u = await utils(ctx)
    // A live worker pool (LISTEN + polling) that has no task for "noop", so the jobs stay waiting in Postgres.
    const runner = await run({
      connectionString,
      schema: schemaOf(ctx),
      concurrency: 1,
      pollInterval: 1000,
      noHandleSignals: true,
      taskList: { other: noop },
      logger,
    })
    await u.addJob("other", { i: -1 })
    const rssBase = await settledRss()
    const tableBase = await jobsTableBytes(ctx)
    await fill(u, n, ctx.params.chunk ?? 1000, ctx.log)
    const [w] = await sql<{ c: string }>(
      `select count(*)::text as c from "${schemaOf(ctx)}"._private_jobs j join "${schemaOf(ctx)}"._private_tasks t on t.id = j.task_id where t.identifier = 'noop' and j.locked_at is null`,
    )
    if (Number(w!.c) !== n) throw new Error(`expected ${n} waiting, got ${w!.c}`)
    const rssWith = await settledRss()
    const tableWith = await jobsTableBytes(ctx)
    const peak = peakRss()
    await runner.stop()
    await u.release()
    const processPerJob = (rssWith - rssBase) / n
    const serverPerJob = (tableWith - tableBase) / n
    return {
      value: peak / MiB,
      unit: "MiB peak RSS",
      extra: {
        n,
        rssBaselineMiB: rssBase / MiB,
        rssWithMiB: rssWith / MiB,
        peakRssMiB: peak / MiB,
        processBytesPerJob: processPerJob,
        serverBytesDelta: tableWith - tableBase,
        serverBytesPerJob: serverPerJob,
        serverMetric: "pg_total_relation_size(_private_jobs) delta (table+indexes+toast, on disk/shared buffers)",
        totalBytesPerJob: processPerJob + serverPerJob,
      },
    }
  },

  async cleanup(ctx) {
    await sql(`drop schema if exists "${schemaOf(ctx)}" cascade`)
    ctx.log(`cleanup: dropped schema ${schemaOf(ctx)}`)
  },
}

export default peer
