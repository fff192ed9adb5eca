#!/usr/bin/env node
/**
 * Where the RSS of workload 6 (N waiting jobs held by an engine) goes, apart from the run:
 * one engine (concurrency 1, a handler that never ends) on a SQLite log, N jobs added in
 * chunks of 1,000, then, after forced GCs, the process's RSS, V8's heap used, each heap
 * space's physical size, and the RSS by mapping (/proc/self/smaps). Peak RSS is sampled
 * every 5 ms during the adds.
 *
 *   ENTRY=dist/esm/src/index.js N=100000 node --expose-gc bench/profile/memory.mjs
 *
 * What it showed on 2026-12-04 (100,000 jobs): RSS 86 → 225 MiB (peak ~280) while the heap's
 * used bytes grew only 55 MiB (~580 B per job); the rest of the growth is the new space at
 * its full 32 MiB, ~26 MiB free in the old space and the other threads' heaps and caches.
 * SNAP=file also writes a heap snapshot, to read by constructor in DevTools.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import v8 from "node:v8"

if (typeof globalThis.gc !== "function") throw new Error("run with node --expose-gc")
const { JobQueue } = await import(pathToFileURL(resolve(process.env.ENTRY ?? "dist/esm/src/index.js")).href)
const N = Number(process.env.N ?? 100_000)
const MiB = 1024 * 1024
const mib = (bytes) => +(bytes / MiB).toFixed(1)

/** memoryUsage after three forced GCs, each followed by a turn of the event loop. */
const settled = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc()
    await new Promise((r) => setTimeout(r, 50))
  }
  return process.memoryUsage()
}

/** The RSS of each mapping (anonymous ones together), largest first. */
const rssByMapping = () => {
  const by = new Map()
  let mapping = ""
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (header !== null) mapping = header[1] || "[anonymous]"
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null) by.set(mapping, (by.get(mapping) ?? 0) + Number(rss[1]) * 1024)
  }
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, bytes]) => [name, mib(bytes)])
}

const dir = `/tmp/jobledger-memory-${process.pid}`
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir)
const queue = new JobQueue("memory", { concurrency: 1, log: `sqlite:${dir}/jobs.db` })
queue.process("noop", (_job, signal) => new Promise((_, reject) => signal?.addEventListener("abort", () => reject(new Error("aborted by close()")))))
await queue.stats() // engine and read model open, projection empty
const before = await settled()
let peak = 0
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5)
for (let a = 0; a < N; a += 1000) {
  const jobs = []
  for (let i = a; i < Math.min(N, a + 1000); i++) jobs.push({ name: "noop", data: { i } })
  await queue.addBulk(jobs)
}
for (let s = await queue.stats(); s.waiting + s.active < N; s = await queue.stats()) await new Promise((r) => setTimeout(r, 100))
clearInterval(sampler)
const after = await settled()
console.log(
  JSON.stringify({
    jobs: N,
    rssMiB: { before: mib(before.rss), after: mib(after.rss), peak: mib(Math.max(peak, after.rss)) },
    heapUsedMiB: { before: mib(before.heapUsed), after: mib(after.heapUsed) },
    heapBytesPerJob: Math.round((after.heapUsed - before.heapUsed) / N),
    spacesMiB: Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.physical_space_size > 0).map((s) => [s.space_name, { physical: mib(s.physical_space_size), used: mib(s.space_used_size) }])),
    rssByMappingMiB: rssByMapping()
  })
)
if (process.env.SNAP) v8.writeHeapSnapshot(process.env.SNAP)
await queue.close({ graceMs: 100 })
rmSync(dir, { recursive: true, force: true })
