/**
 * What PostgresQueueStore costs in the drain: N no-op jobs at concurrency C drained by one
 * engine process, with the default in-memory store and with the Postgres store, on the
 * SQLite log and on Kafka — in one run, each repetition a fresh child process, the
 * configurations interleaved. Also: `stats()` from the counts table against an index-only
 * count(*) over a table of M rows.
 *
 *   npx tsx bench/postgres-store.ts                        # 20,000 jobs, c=100, 3 reps, SQLite (+ Kafka when KAFKA_BROKERS is set)
 *   npx tsx bench/postgres-store.ts --n 5000 --reps 1      # smaller
 *   BENCH_PG_URL=postgres://… KAFKA_BROKERS=host:port npx tsx bench/postgres-store.ts --out bench/POSTGRES-STORE.md
 *
 * Clocks, per child: a producer-only JobQueue adds the N jobs (addBulk, chunks of 1,000;
 * untimed) and closes; a second JobQueue (concurrency C, with or without the store) opens its
 * read model (and the store its follower) untimed, then is timed
 * from `process()` to N `completed` events (the engine's drain), and — with the store — on to
 * `store.stats().completed === N` (the table has them all). CPU is this process's
 * (`process.cpuUsage`); the PostgreSQL server's own CPU is not in it.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import pg from "pg"

const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const KAFKA = process.env.KAFKA_BROKERS
const SELF = fileURLToPath(import.meta.url)

type Config = { readonly log: "sqlite" | "kafka"; readonly store: "memory" | "postgres" }
interface Result {
  readonly config: Config
  readonly n: number
  /** process() → N completed events. */
  readonly drainSeconds: number
  /** process() → the table shows N completed (Postgres store only). */
  readonly tableSeconds?: number
  /** This process's CPU (user + system) over the drain, µs per job. */
  readonly cpuMicrosPerJob: number
  /** The CPU of the store's PostgreSQL backends over the drain, µs per job (Postgres store only). */
  readonly pgCpuMicrosPerJob?: number
  readonly batches?: number
  readonly recordsRead?: number
}

const label = (c: Config) => `${c.log} log, ${c.store === "memory" ? "default store (memory)" : "PostgresQueueStore"}`

// ---------------------------------------------------------------- child: one drain

async function child(config: Config, n: number, concurrency: number): Promise<Result> {
  const { JobQueue } = await import("../src/index.ts")
  const { PostgresQueueStore } = await import("../src/postgres.ts")
  const runId = `${process.pid}-${Date.now().toString(36)}`
  const name = `bench-pgstore-${runId}`
  const dir = mkdtempSync(join(tmpdir(), "jobledger-pgbench-"))
  const log = config.log === "sqlite" ? `sqlite:${join(dir, "jobs.db")}` : `kafka://${KAFKA}`
  const schema = `bench_pgstore_${runId.replace(/[^a-z0-9]/gi, "_")}`
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
  try {
    const producer = new JobQueue(name, { log })
    for (let i = 0; i < n; i += 1000) await producer.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: "noop", data: { i: i + k } })))
    await producer.close()

    const app = `jl-bench-${runId}`
    const store = config.store === "postgres" ? new PostgresQueueStore({ connectionString: PG_URL, schema, poolConfig: { application_name: app } }) : undefined
    const q = new JobQueue(name, { log, concurrency, ...(store === undefined ? {} : { store }) })
    let completed = 0
    let resolveDone!: () => void
    const done = new Promise<void>((r) => (resolveDone = r))
    q.on("completed", () => {
      if (++completed === n) resolveDone()
    })
    q.on("error", (e: Error) => console.error(`error: ${e.message}`))
    // not part of the drain, for both: the read model open (it reads the N pending adds) and, with the store, its follower started
    await q.stats()
    if (store !== undefined) await store.stats()
    const pg0 = store === undefined ? 0 : await backendCpuMicros(admin, app)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    q.process("noop", async () => undefined)
    await done
    const drainSeconds = (performance.now() - t0) / 1000
    let tableSeconds: number | undefined
    if (store !== undefined) {
      const stats = await store.stats() // waits until the table holds every event in the log now
      tableSeconds = (performance.now() - t0) / 1000
      if (stats.completed !== n) throw new Error(`the table shows ${stats.completed} completed, not ${n}`)
    }
    const cpu = process.cpuUsage(cpu0)
    const pgCpu = store === undefined ? undefined : (await backendCpuMicros(admin, app)) - pg0
    const progress = store?.progress
    await q.close()
    await store?.close()
    return {
      config,
      n,
      drainSeconds,
      ...(tableSeconds === undefined ? {} : { tableSeconds }),
      cpuMicrosPerJob: (cpu.user + cpu.system) / n,
      ...(pgCpu === undefined ? {} : { pgCpuMicrosPerJob: pgCpu / n }),
      ...(progress === undefined ? {} : { batches: progress.batches, recordsRead: progress.recordsRead })
    }
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined)
    await admin.end()
    rmSync(dir, { recursive: true, force: true })
    if (config.log === "kafka") await deleteTopics(name).catch(() => undefined)
  }
}

/**
 * CPU (user + system, µs) used so far by the PostgreSQL backends serving connections named
 * `app` (the store's pool): from /proc, so only for a server on this machine (else 0).
 */
async function backendCpuMicros(admin: pg.Pool, app: string): Promise<number> {
  const pids = (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [app])).rows.map((r) => r.pid)
  let ticks = 0
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of stat)
    } catch {
      // not on this machine, or gone
    }
  }
  return (ticks / CLOCK_TICKS) * 1e6
}
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

async function deleteTopics(queue: string) {
  const { default: kafkajs } = await import("kafkajs")
  const kafka = new kafkajs.Kafka({ clientId: "bench-pgstore", brokers: KAFKA!.split(","), logLevel: kafkajs.logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    const topics = (await admin.listTopics()).filter((t) => t.includes(queue))
    if (topics.length > 0) await admin.deleteTopics({ topics })
  } finally {
    await admin.disconnect()
  }
}

// ---------------------------------------------------------------- counts: table vs count(*)

async function countsBench(rows: number) {
  const { PostgresQueueStore } = await import("../src/postgres.ts")
  const schema = `bench_counts_${process.pid}`
  const queue = "bench-counts"
  const pool = new pg.Pool({ connectionString: PG_URL, max: 3 })
  try {
    const store = new PostgresQueueStore({ pool, schema, queue, follow: false })
    await store.stats() // creates the tables
    await pool.query(
      `INSERT INTO "${schema}".jobs (queue, id, partition, pos, life, seq, name, state, data, attempts_made, max_attempts, stalled_count, queue_paused, run_at, priority, created_at, updated_at)
       SELECT $1, 'job-' || g, 0, g, 0, 2, 'noop', CASE WHEN g % 100 = 0 THEN 'failed' WHEN g % 50 = 0 THEN 'waiting' ELSE 'completed' END,
              '{"i":1}', 0, 0, 0, false, g, 0, g, g FROM generate_series(1, $2::int) AS g`,
      [queue, rows]
    )
    await pool.query(
      `INSERT INTO "${schema}".job_counts (queue, partition, state, n) SELECT $1, 0, state, count(*) FROM "${schema}".jobs WHERE queue = $1 GROUP BY state`,
      [queue]
    )
    await pool.query(`VACUUM ANALYZE "${schema}".jobs`)
    const time = async (f: () => Promise<unknown>) => {
      const runs: Array<number> = []
      for (let i = 0; i < 7; i++) {
        const t = performance.now()
        await f()
        runs.push(performance.now() - t)
      }
      return runs.sort((a, b) => a - b)[3]!
    }
    const table = await time(() => store.stats())
    const countSql = `SELECT state, count(*) FROM "${schema}".jobs WHERE queue = $1 GROUP BY state`
    const countAll = await time(() => pool.query(countSql, [queue]))
    // the plan's nodes, top down
    const planOf = async (c: pg.PoolClient) =>
      (await c.query(`EXPLAIN ${countSql}`, [queue])).rows
        .map((r) => String(r["QUERY PLAN"]).trim())
        .filter((line, i) => i === 0 || line.startsWith("->"))
        .map((line) => line.replace(/^->\s*/, "").split("  (")[0])
        .join(" ← ")
    const planClient = await pool.connect()
    const plan = await planOf(planClient).finally(() => planClient.release())
    // the same count forced onto the (queue, state, updated_at, id) index: an index-only scan
    const client = await pool.connect()
    let indexOnly: number
    let indexPlan: string
    try {
      await client.query("BEGIN")
      await client.query("SET LOCAL enable_seqscan = off")
      await client.query("SET LOCAL enable_bitmapscan = off")
      await client.query("SET LOCAL max_parallel_workers_per_gather = 0")
      indexPlan = await planOf(client)
      indexOnly = await time(() => client.query(countSql, [queue]))
      await client.query("COMMIT")
    } finally {
      client.release()
    }
    const size = (await pool.query(`SELECT pg_size_pretty(pg_total_relation_size('"${schema}".jobs')) AS s`)).rows[0].s
    return { rows, tableMs: table, countMs: countAll, plan, indexOnlyMs: indexOnly, indexPlan, size }
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined)
    await pool.end()
  }
}

// ---------------------------------------------------------------- parent

const runChild = (config: Config, n: number, concurrency: number): Promise<Result> =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", SELF, "--child", `${config.log}:${config.store}`, "--n", String(n), "--c", String(concurrency)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, JOBLEDGER_LOG: "" }
    })
    let out = ""
    p.stdout.on("data", (d: Buffer) => (out += d.toString()))
    p.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "))
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice(7)) as Result)
      else reject(new Error(`child ${label(config)} exited ${code}: ${out.slice(-500)}`))
    })
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (x: number, digits = 0) => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

async function parent() {
  const { values } = parseArgs({ options: { n: { type: "string" }, c: { type: "string" }, reps: { type: "string" }, out: { type: "string" }, "count-rows": { type: "string" } } })
  const n = Number(values.n ?? 20_000)
  const concurrency = Number(values.c ?? 100)
  const reps = Number(values.reps ?? 3)
  const countRows = Number(values["count-rows"] ?? 1_000_000)
  const configs: Array<Config> = []
  const logs: Array<Config["log"]> = KAFKA ? ["sqlite", "kafka"] : ["sqlite"]
  for (const log of logs) for (const store of ["memory", "postgres"] as const) configs.push({ log, store })
  const loadStart = loadavg()
  const started = new Date()
  const results: Array<Result> = []
  for (let rep = 1; rep <= reps; rep++)
    for (const config of configs) {
      const r = await runChild(config, n, concurrency)
      results.push(r)
      console.error(
        `rep ${rep} ${label(config)}: ${fmt(n / r.drainSeconds)} jobs/s${r.tableSeconds === undefined ? "" : `, table complete at ${r.tableSeconds.toFixed(2)} s (${fmt(n / r.tableSeconds)} jobs/s, ${r.batches} batches, PostgreSQL ${fmt(r.pgCpuMicrosPerJob ?? 0)} µs CPU/job)`}, ${fmt(r.cpuMicrosPerJob)} µs CPU/job`
      )
    }
  const counts = await countsBench(countRows)
  const loadEnd = loadavg()

  const lines: Array<string> = []
  lines.push(`# PostgresQueueStore in the drain`, "")
  lines.push(`Run ${started.toISOString()} by \`npx tsx bench/postgres-store.ts --n ${n} --c ${concurrency} --reps ${reps}\` on ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}, ${pgVersion()}.`)
  lines.push(`Load average at start ${loadStart.map((x) => x.toFixed(1)).join(" / ")}, at end ${loadEnd.map((x) => x.toFixed(1)).join(" / ")} (other agents shared the machine: compare rows of this run only).`, "")
  lines.push(`${fmt(n)} no-op jobs, concurrency ${concurrency}, one engine process; medians of ${reps} (min–max). "Engine drain": \`process()\` → ${fmt(n)} \`completed\` events. "Table complete": → \`store.stats().completed === ${fmt(n)}\`.`, "")
  lines.push(`| log | store | engine drain, jobs/s | table complete, jobs/s | ÷ default store, same repetition | CPU of the process, µs/job | CPU of the store's PostgreSQL backends, µs/job | cost per job vs default store |`)
  lines.push(`|---|---|---:|---:|---:|---:|---:|---:|`)
  for (const log of ["sqlite", "kafka"] as const) {
    const base = results.filter((r) => r.config.log === log && r.config.store === "memory")
    for (const store of ["memory", "postgres"] as const) {
      const rs = results.filter((r) => r.config.log === log && r.config.store === store)
      if (rs.length === 0) continue
      const rate = rs.map((r) => n / r.drainSeconds)
      const table = rs.filter((r) => r.tableSeconds !== undefined).map((r) => n / r.tableSeconds!)
      const cpu = rs.map((r) => r.cpuMicrosPerJob)
      const pgCpu = rs.filter((r) => r.pgCpuMicrosPerJob !== undefined).map((r) => r.pgCpuMicrosPerJob!)
      // each repetition's table-complete rate over the default store's rate of the same repetition (run just before it)
      const ratios = store === "postgres" ? rs.map((r, k) => (base[k] === undefined ? NaN : base[k]!.drainSeconds / (r.tableSeconds ?? r.drainSeconds))).filter((x) => !Number.isNaN(x)) : []
      const perJob =
        store === "postgres" && base.length > 0
          ? `${fmt((median(rs.map((r) => r.tableSeconds ?? r.drainSeconds)) / n - median(base.map((r) => r.drainSeconds)) / n) * 1e6)} µs wall, ${fmt(median(cpu) - median(base.map((r) => r.cpuMicrosPerJob)))} µs CPU`
          : "–"
      lines.push(
        `| ${log} | ${store === "memory" ? "default (memory)" : "PostgresQueueStore"} | ${fmt(median(rate))} (${fmt(Math.min(...rate))}–${fmt(Math.max(...rate))}) | ${table.length === 0 ? "–" : `${fmt(median(table))} (${fmt(Math.min(...table))}–${fmt(Math.max(...table))})`} | ${ratios.length === 0 ? "–" : `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`} | ${fmt(median(cpu))} | ${pgCpu.length === 0 ? "–" : fmt(median(pgCpu))} | ${perJob} |`
      )
    }
  }
  lines.push("", `Batches per drain with the store (one SQL transaction each): ${results.filter((r) => r.batches !== undefined).map((r) => `${r.config.log} ${r.batches}`).join(", ")}.`)
  lines.push("", `## stats(): counts table against count(*)`, "")
  lines.push(`A jobs table of ${fmt(counts.rows)} rows (${counts.size} with its indexes, vacuumed), median of 7 calls:`, "")
  lines.push(`| query | ms |`, `|---|---:|`)
  lines.push(`| \`store.stats()\`: the counts table (≤ 6 rows per partition) | ${counts.tableMs.toFixed(2)} |`)
  lines.push(`| \`SELECT state, count(*) … GROUP BY state\`, planner's choice (${counts.plan}) | ${counts.countMs.toFixed(1)} |`)
  lines.push(`| the same, forced index-only (${counts.indexPlan}) | ${counts.indexOnlyMs.toFixed(1)} |`)
  const text = lines.join("\n") + "\n"
  console.log(text)
  if (values.out !== undefined) {
    writeFileSync(values.out, text)
    writeFileSync(values.out.replace(/\.md$/, "") + ".json", JSON.stringify({ started, n, concurrency, reps, loadStart, loadEnd, results, counts }, null, 2) + "\n")
  }
}

const pgVersion = () => {
  try {
    return `PostgreSQL ${execFileSync("psql", [PG_URL, "-Atc", "SHOW server_version"], { encoding: "utf8" }).trim()}`
  } catch {
    return "PostgreSQL (version unknown)"
  }
}

const argv = process.argv.slice(2)
const childAt = argv.indexOf("--child")
if (childAt >= 0) {
  const [log, store] = argv[childAt + 1]!.split(":") as [Config["log"], Config["store"]]
  const num = (flag: string) => Number(argv[argv.indexOf(flag) + 1])
  child({ log, store }, num("--n"), num("--c")).then(
    (r) => {
      console.log(`RESULT ${JSON.stringify(r)}`)
      process.exit(0)
    },
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
} else {
  mkdirSync(join(tmpdir(), "jobledger-pgbench"), { recursive: true })
  await parent()
}
