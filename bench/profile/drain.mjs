#!/usr/bin/env node
/**
 * One drain, no profiler: N no-op jobs added by a producer-only queue, then drained by a second
 * queue with concurrency C on a SQLite log. Prints jobs/s, the process's CPU per job (all
 * threads) and the main thread's CPU per job (from /proc, 10 ms ticks: use N ≥ 20,000).
 *
 *   ENTRY=dist/esm/src/index.js N=20000 C=100 node bench/profile/drain.mjs
 *
 * ENTRY may be another build (e.g. an older commit compiled as bench/README.md says) to
 * compare two engines side by side on the same minute of this machine.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"

const { JobQueue } = await import(pathToFileURL(resolve(process.env.ENTRY ?? "dist/esm/src/index.js")).href)
const N = Number(process.env.N ?? 20_000)
const C = Number(process.env.C ?? 100)

export const fillAndOpen = async (JobQueue, n, concurrency) => {
  const dir = `/tmp/jobledger-drain-${process.pid}`
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  const log = `sqlite:${dir}/jobs.db`
  const producer = new JobQueue("drain", { log })
  for (let a = 0; a < n; a += 1000) {
    const jobs = []
    for (let i = a; i < Math.min(n, a + 1000); i++) jobs.push({ name: "noop", data: { i } })
    await producer.addBulk(jobs)
  }
  await producer.close()
  const queue = new JobQueue("drain", { concurrency, log })
  let done = 0
  const drained = new Promise((resolve) => queue.on("completed", () => ++done === n && resolve()))
  return { queue, drained, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** CPU µs of thread `tid` of this process so far (utime + stime of its /proc task, in 10 ms ticks). */
export const threadMicros = (tid) => {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ") // the name may hold ") "
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/** CPU µs of the main thread so far. */
const mainThreadMicros = () => threadMicros(process.pid)

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { queue, drained, cleanup } = await fillAndOpen(JobQueue, N, C)
  const cpu0 = process.cpuUsage()
  const main0 = mainThreadMicros()
  const t0 = performance.now()
  queue.process("noop", async () => undefined)
  await drained
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  console.log(JSON.stringify({ jobsPerSec: Math.round(N / seconds), cpuUsPerJob: +((cpu.user + cpu.system) / N).toFixed(1), mainUsPerJob: +((mainThreadMicros() - main0) / N).toFixed(1) }))
  await queue.close()
  cleanup()
}
