#!/usr/bin/env node
/**
 * The per-job cost by stage, from drain-profile.mjs's two profiles:
 *   node bench/profile/stages.mjs <OUT> <N>
 * prints main-thread µs per job (idle excluded) and bytes allocated per job, per stage. A
 * stage is a set of modules (see `stageOf`); a sample counts where its function is defined
 * (self time), so a native builtin counts for the stage of its JavaScript caller only when
 * V8 inlines it.
 */
import { readFileSync } from "node:fs"
const [prefix, nArg] = process.argv.slice(2); const N = Number(nArg)
const stageOf = (url, fn) => {
  if (fn === "(garbage collector)") return "GC"
  if (fn === "(idle)") return "idle"
  if (fn === "(program)") return "V8/Node runtime (program)"
  if (/projections\/|machines\/job-|machines\/schema/.test(url)) return "partition state, job views, machine step"
  if (/src\/codec|envelope-fast/.test(url) || /^(stringify|parse)$/.test(fn)) return "encode/decode (JSON, fast path)"
  if (/src\/read\//.test(url)) return "read model (events to views, announcements)"
  if (/handler-run|handler-guard|worker-pool|tracing|progress/.test(url)) return "handler run (promise, guard, span)"
  if (/src\/engine\//.test(url)) return "engine actor (commands, ready queue, appender)"
  if (/sqlite-writer|node:internal\/worker/.test(url) || fn === "postMessage") return "hand-off to the SQLite writer thread"
  if (/src\/log\//.test(url)) return "local log (poll, follow)"
  if (/src\/queue|src\/job/.test(url)) return "JobQueue events (completed listeners)"
  if (/node_modules\/effect/.test(url)) return "Effect runtime"
  if (/node_modules\/better-sqlite3/.test(url)) return "SQLite (main thread)"
  if (/^node:/.test(url) || url === "") return "Node internals (events, timers, promises)"
  return "other"
}
const cpu = JSON.parse(readFileSync(`${prefix}.cpuprofile`, "utf8"))
const dt = new Map(); for (let i = 0; i < cpu.samples.length; i++) dt.set(cpu.samples[i], (dt.get(cpu.samples[i]) ?? 0) + (cpu.timeDeltas[i] ?? 0))
const us = new Map(); let total = 0
for (const n of cpu.nodes) { const t = dt.get(n.id) ?? 0; const st = stageOf(n.callFrame.url, n.callFrame.functionName); if (st === "idle") continue; total += t; us.set(st, (us.get(st) ?? 0) + t) }
const heap = JSON.parse(readFileSync(`${prefix}.heapprofile`, "utf8"))
const bytes = new Map(); let totalBytes = 0
const walk = (node) => { const b = node.selfSize; if (b) { const st = stageOf(node.callFrame.url, node.callFrame.functionName); bytes.set(st, (bytes.get(st) ?? 0) + b); totalBytes += b } for (const c of node.children) walk(c) }
walk(heap.head)
const rows = [...new Set([...us.keys(), ...bytes.keys()])].sort((a, b) => (us.get(b) ?? 0) - (us.get(a) ?? 0))
console.log(JSON.stringify({ usPerJob: +(total / N).toFixed(1), bytesPerJob: Math.round(totalBytes / N), stages: rows.map((r) => [r, +((us.get(r) ?? 0) / N).toFixed(1), Math.round((bytes.get(r) ?? 0) / N)]) }))
