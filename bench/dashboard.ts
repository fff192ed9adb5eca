/**
 * The dashboard on a queue with a long history: page weight, time to open, and the response
 * time of its main endpoints.
 *
 *   tsx bench/dashboard.ts [--jobs 100000] [--log sqlite:/path/jobs.db --queue name] [--reps 20]
 *
 * Without --log it builds (once, cached under $BENCH_CACHE_DIR or /tmp/jobledger-bench-cache)
 * a SQLite log of --jobs jobs run by an engine of this tree: every 100th one fails, the rest
 * complete. With --log it measures an existing log (read-only views, but a log written by an
 * older engine gets this engine's schema additions, so measure a copy). The dashboard runs in
 * this process on a loopback port; each endpoint is requested --reps times in a row (replays
 * fewer: they read the history), and the median and the slowest are printed as Markdown.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { createHash } from "node:crypto"
import { readFileSync, readdirSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { gzipSync } from "node:zlib"
import { ManagedRuntime } from "effect"
import { JobQueue, createDashboard } from "../src/index.ts"
import { EventLog, topicsOf } from "../src/log/event-log.ts"
import { layerFromUrl } from "../src/log/layers.ts"
import { run } from "../src/run.ts"

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100000" },
    log: { type: "string" },
    queue: { type: "string" },
    reps: { type: "string", default: "20" }
  }
})
const jobs = Number(values.jobs)
const reps = Number(values.reps)

/** A cache key of the engine's sources: a log built by another engine is rebuilt. */
const sourceHash = (): string => {
  const hash = createHash("sha256")
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".ts")) hash.update(path).update(readFileSync(path))
    }
  }
  for (const dir of ["src/engine", "src/log", "machines", "projections"]) walk(join(import.meta.dirname, "..", dir))
  return hash.digest("hex").slice(0, 12)
}

const build = async (log: string, queue: string, n: number): Promise<void> => {
  const started = Date.now()
  const q = new JobQueue(queue, { log, concurrency: 100 })
  q.process("work", async (job) => {
    if ((job.data as { i: number }).i % 100 === 0) throw new Error(`synthetic failure of job ${(job.data as { i: number }).i}`)
    return { i: (job.data as { i: number }).i }
  })
  // no jobId of our own: an id given to add is looked up first (idempotent add), one lookup per job
  for (let i = 0; i < n; i += 1_000) await q.addBulk(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ name: "work", data: { i: i + k } })))
  for (;;) {
    const s = await q.stats()
    if (s.completed + s.failed === n) break
    await new Promise((r) => setTimeout(r, 500))
  }
  await q.close()
  console.error(`built ${n} jobs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0))

const main = async () => {
  let log = values.log
  let queue = values.queue ?? "bench-dashboard"
  if (log === undefined) {
    const dir = join(process.env.BENCH_CACHE_DIR ?? "/tmp/jobledger-bench-cache", `dashboard-${jobs}-${sourceHash()}`)
    log = `sqlite:${join(dir, "jobs.db")}`
    if (!existsSync(join(dir, "READY"))) {
      mkdirSync(dir, { recursive: true })
      await build(log, queue, jobs)
      writeFileSync(join(dir, "READY"), `${jobs}\n`)
    }
  }
  const rssBefore = process.memoryUsage().rss
  const opening = Date.now()
  const board = createDashboard({ log, queues: [queue] })
  await board.ready()
  const openMs = Date.now() - opening
  const server = createServer(board)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const timed = async (path: string): Promise<{ ms: number; bytes: number; body: string }> => {
    const t = performance.now()
    const res = await fetch(base + path)
    const body = await res.text()
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 200)}`)
    return { ms: performance.now() - t, bytes: Buffer.byteLength(body), body }
  }
  const rows: Array<[string, string, number, string, string, number, number]> = []
  const measure = async (label: string, path: string, n = reps) => {
    const times: Array<number> = []
    let bytes = 0
    for (let i = 0; i < n; i++) {
      const r = await timed(path)
      times.push(r.ms)
      bytes = r.bytes
    }
    rows.push([label, path, n, fmt(median(times)), fmt(Math.max(...times)), bytes, Math.round(process.memoryUsage().rss / 2 ** 20)])
  }

  // the oldest job of the log (its first event), long gone from memory
  const runtime = ManagedRuntime.make(layerFromUrl(log))
  const [first] = await run((await runtime.runPromise(EventLog)).read(topicsOf(queue).events, 0, 0, 1))
  await runtime.dispose()
  const oldest = (JSON.parse(first!.value) as { jobId: string }).jobId
  const page = await timed("/")
  const queueDetail = JSON.parse((await timed(`/api/queues/${queue}`)).body)
  const failedPage = JSON.parse((await timed(`/api/queues/${queue}/jobs?state=failed&limit=50`)).body)
  const completedPage = JSON.parse((await timed(`/api/queues/${queue}/jobs?state=completed&limit=50`)).body)
  const paged = failedPage.next !== undefined ? { state: "failed", page: failedPage } : { state: "completed", page: completedPage }
  const events = queueDetail.range.endOffsets.reduce((a: number, b: number) => a + b, 0)
  await measure("page (HTML + inline CSS + JS)", "/")
  await measure("overview", "/api/overview")
  await measure("queue detail", `/api/queues/${queue}`)
  await measure("completed jobs, first page of 50", `/api/queues/${queue}/jobs?state=completed&limit=50`)
  await measure("failed jobs, first page of 50", `/api/queues/${queue}/jobs?state=failed&limit=50`)
  await measure(`${paged.state} jobs, second page (cursor)`, `/api/queues/${queue}/jobs?state=${paged.state}&limit=50&cursor=${paged.page.next}`)
  await measure("search by id substring", `/api/queues/${queue}/jobs?search=${oldest.slice(0, 4)}`)
  await measure("job page, a job long gone from memory", `/api/queues/${queue}/jobs/${encodeURIComponent(oldest)}`)
  await measure("job page, a recent job", `/api/queues/${queue}/jobs/${paged.page.jobs[0].id}`)
  await measure("/metrics", "/metrics")
  await measure("time travel to the middle (replay --until)", `/api/queues/${queue}/replay?until=${Math.floor(events / 2)}`, 3)
  await measure("time travel of one job to the middle", `/api/queues/${queue}/replay?until=${Math.floor(events / 2)}&job=${encodeURIComponent(oldest)}`, 3)
  await measure("replay --verify of the whole log", `/api/queues/${queue}/replay?verify=1`, 2)

  const rss = process.memoryUsage().rss
  console.log(`\n### Dashboard on ${queueDetail.stats.completed + queueDetail.stats.failed} finished jobs (${events} events), ${log}\n`)
  console.log(`- page weight: ${page.bytes} bytes (HTML with its inline CSS and JS, one request), ${gzipSync(page.body).length} gzipped`)
  console.log(`- open (read model from the latest snapshot + tail, chart backfill): ${openMs} ms; RSS ${Math.round(rssBefore / 2 ** 20)} → ${Math.round(rss / 2 ** 20)} MiB; ${queueDetail.held} jobs held`)
  console.log(`- ${reps} requests in a row per endpoint (replays 3, verify 2), one client, loopback, this machine (2 shared cores)\n`)
  console.log("| endpoint | path | n | median ms | slowest ms | bytes | RSS after, MiB |")
  console.log("|---|---|---:|---:|---:|---:|---:|")
  for (const [label, path, n, med, max, bytes, rssAfter] of rows) console.log(`| ${label} | \`${path.length > 60 ? `${path.slice(0, 57)}…` : path}\` | ${n} | ${med} | ${max} | ${bytes} | ${rssAfter} |`)
  server.closeAllConnections()
  server.close()
  await board.close()
}

await main()
