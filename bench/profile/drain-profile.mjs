#!/usr/bin/env node
/**
 * The drain of drain.mjs under V8's profilers, the drain only (not the adds before it):
 *   HEAP=0 → <OUT>.cpuprofile   (sampling CPU profile of the main thread, 200 µs interval)
 *   HEAP=1 → <OUT>.heapprofile  (sampling allocation profile, collected objects included:
 *                                bytes allocated, not bytes kept)
 * Run once of each, then `node bench/profile/stages.mjs <OUT> <N>`. The CPU profiler itself
 * costs ~40% at this rate: compare stages between builds, not with unprofiled µs/job.
 *
 *   ENTRY=dist/esm/src/index.js N=20000 C=100 OUT=/tmp/drain node bench/profile/drain-profile.mjs
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { fillAndOpen } from "./drain.mjs"

const { JobQueue } = await import(pathToFileURL(resolve(process.env.ENTRY ?? "dist/esm/src/index.js")).href)
const N = Number(process.env.N ?? 20_000)
const C = Number(process.env.C ?? 100)
const OUT = process.env.OUT ?? "/tmp/jobledger-drain"
const HEAP = process.env.HEAP === "1"

const { queue, drained, cleanup } = await fillAndOpen(JobQueue, N, C)
const session = new Session()
session.connect()
if (HEAP) {
  await session.post("HeapProfiler.enable")
  await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
} else {
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: 200 })
  await session.post("Profiler.start")
}
const t0 = performance.now()
queue.process("noop", async () => undefined)
await drained
const seconds = (performance.now() - t0) / 1000
if (HEAP) writeFileSync(`${OUT}.heapprofile`, JSON.stringify((await session.post("HeapProfiler.stopSampling")).profile))
else writeFileSync(`${OUT}.cpuprofile`, JSON.stringify((await session.post("Profiler.stop")).profile))
console.log(JSON.stringify({ jobsPerSec: Math.round(N / seconds), profiled: HEAP ? "heap" : "cpu" }))
await queue.close()
cleanup()
