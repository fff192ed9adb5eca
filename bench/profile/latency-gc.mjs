#!/usr/bin/env node
/**
 * add→start latency at a steady rate in one process (as workload 4 of bench/run.ts, on a
 * SQLite log), with what the main thread's minor GCs cost: how many, their mean pause, and
 * what survived and was promoted by each (V8's --trace-gc-nvp). What survives a scavenge is
 * what makes it slow, and a scavenge is what the slowest 1% of jobs mostly wait behind.
 *
 *   ENTRY=dist/esm/src/index.js RATE=1000 DUR=10 C=100 node bench/profile/latency-gc.mjs
 *
 * ENTRY may be another build, to compare two engines in the same minutes (alternate them).
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const RATE = Number(process.env.RATE ?? 1000)
const DUR = Number(process.env.DUR ?? 10)
const C = Number(process.env.C ?? 100)

if (process.argv[2] !== "--child") {
  // the measurement runs in a child under --trace-gc-nvp; this parent reads its GC lines
  const child = spawnSync(process.execPath, ["--trace-gc-nvp", fileURLToPath(import.meta.url), "--child"], { encoding: "utf8", env: process.env, maxBuffer: 1 << 28 })
  if (child.status !== 0) {
    process.stderr.write(child.stderr)
    process.exit(child.status ?? 1)
  }
  const lines = child.stdout.split("\n")
  const result = JSON.parse(lines.find((l) => l.startsWith("{")))
  // the main isolate is the one whose heap is largest (the log's worker threads have their own)
  const scavenges = new Map()
  for (const line of lines) {
    if (!line.includes(" gc=s ")) continue
    const isolate = line.slice(0, line.indexOf("]"))
    const field = (name) => Number(new RegExp(` ${name}=([0-9.]+)`).exec(line)?.[1] ?? NaN)
    const list = scavenges.get(isolate) ?? scavenges.set(isolate, []).get(isolate)
    list.push({ pause: field("pause"), promoted: field("promoted"), survived: field("new_space_survived"), size: field("total_size_before") })
  }
  const main = [...scavenges.values()].sort((a, b) => Math.max(...b.map((s) => s.size)) - Math.max(...a.map((s) => s.size)))[0] ?? []
  const steady = main.slice(Math.floor(main.length / 4)) // past start-up (module loading survives too)
  const mean = (f) => steady.reduce((sum, s) => sum + f(s), 0) / steady.length
  console.log(
    JSON.stringify({
      ...result,
      scavenges: main.length,
      meanScavengeMs: +mean((s) => s.pause).toFixed(2),
      promotedKBPerScavenge: Math.round(mean((s) => s.promoted) / 1000),
      survivedKBPerScavenge: Math.round(mean((s) => s.survived) / 1000)
    })
  )
  process.exit(0)
}

const { JobQueue } = await import(pathToFileURL(resolve(process.env.ENTRY ?? "dist/esm/src/index.js")).href)
const dir = `/tmp/jobledger-latency-gc-${process.pid}`
rmSync(dir, { recursive: true, force: true })
mkdirSync(dir)
const queue = new JobQueue("latency", { concurrency: C, log: `sqlite:${dir}/jobs.db` })
const total = RATE * DUR
const warmup = RATE // the first second is not counted
const latency = new Float64Array(total).fill(NaN)
let started = 0
queue.process("noop", async (job) => {
  if (job.data.i < 0) return
  latency[job.data.i] = performance.now() - job.data.t
  started++
})
await queue.add("noop", { i: -1, t: 0 })
await new Promise((r) => setTimeout(r, 300))
// open loop: each job is due at its own time, whether or not the previous ones were added
const t0 = performance.now() + 5
let sent = 0
await new Promise((done) => {
  const tick = () => {
    const due = Math.min(total, Math.floor((performance.now() - t0) / (1000 / RATE)) + 1)
    for (; sent < due; sent++) queue.add("noop", { i: sent, t: t0 + sent * (1000 / RATE) })
    if (sent >= total) done()
    else setTimeout(tick, Math.max(0, Math.min(1, t0 + sent * (1000 / RATE) - performance.now())))
  }
  setTimeout(tick, 5)
})
while (started < total) await new Promise((r) => setTimeout(r, 5))
const sorted = Array.from(latency.subarray(warmup)).sort((a, b) => a - b)
const at = (q) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2)
console.log(JSON.stringify({ rate: RATE, seconds: DUR, concurrency: C, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: +sorted.at(-1).toFixed(1) }))
await queue.close()
rmSync(dir, { recursive: true, force: true })
