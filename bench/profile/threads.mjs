#!/usr/bin/env node
/**
 * Where a drain's CPU goes, per thread of the process (Linux /proc): the drain of drain.mjs,
 * with each thread's user+system time over the drain only, per job.
 *
 *   ENTRY=dist/esm/src/index.js N=50000 C=100 node bench/profile/threads.mjs
 *
 * Threads are told apart by when they appeared: the main thread; the threads Node started
 * before the queue opened (V8's platform workers, which run the parallel and concurrent
 * parts of every isolate's GC, and libuv's); and the threads the queue started (the SQLite
 * log's worker threads: its writer, and the writer's WAL checkpointer; a libuv pool thread
 * started late would count there too, for the little it does in a drain). On 2 cores the
 * drain is bounded by their sum, not by the main thread alone.
 */
import { readdirSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { fillAndOpen, threadMicros } from "./drain.mjs"

const N = Number(process.env.N ?? 50_000)
const C = Number(process.env.C ?? 100)

/** CPU µs of every thread of this process so far, by thread id. */
const allThreadMicros = () => {
  const out = new Map()
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      out.set(Number(tid), threadMicros(tid))
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

const before = new Set(allThreadMicros().keys())
const { JobQueue } = await import(pathToFileURL(resolve(process.env.ENTRY ?? "dist/esm/src/index.js")).href)
const { queue, drained, cleanup } = await fillAndOpen(JobQueue, N, C)
const start = allThreadMicros()
const t0 = performance.now()
queue.process("noop", async () => undefined)
await drained
const wallUs = (performance.now() - t0) * 1000
const end = allThreadMicros()
await queue.close()
cleanup()

const kind = (tid) => (tid === process.pid ? "main thread" : before.has(tid) ? "Node/V8 helper threads (GC, libuv)" : "log worker threads (SQLite writer, checkpointer)")
const byKind = new Map()
const threads = []
for (const [tid, us] of end) {
  const spent = (us - (start.get(tid) ?? 0)) / N
  if (spent <= 0) continue
  threads.push({ tid, kind: kind(tid), usPerJob: +spent.toFixed(1) })
  byKind.set(kind(tid), (byKind.get(kind(tid)) ?? 0) + spent)
}
const total = [...byKind.values()].reduce((a, b) => a + b, 0)
console.log(
  JSON.stringify({
    jobsPerSec: Math.round(N / (wallUs / 1e6)),
    wallUsPerJob: +(wallUs / N).toFixed(1),
    cpuUsPerJob: +total.toFixed(1),
    byKind: Object.fromEntries([...byKind].map(([k, us]) => [k, +us.toFixed(1)])),
    threads: threads.sort((a, b) => b.usPerJob - a.usPerJob)
  })
)
