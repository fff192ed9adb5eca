/**
 * jobledger benchmark harness.
 *
 *   tsx bench/run.ts [--quick] [--only <peer,...>] [--workloads 1,2,...]
 *                    [--reps N] [--timeout SEC] [--budget MIN] [--out DIR]
 *   tsx bench/run.ts --report [--out DIR]   re-render RESULTS.md and results.svg from results.json
 *
 * Runs every selected workload for every selected peer, each repetition in a
 * fresh child process (bench/lib/child.ts), and writes RESULTS.md,
 * results.svg and results.json into the output directory (bench/ by default,
 * bench/out-quick/ for --quick). See bench/README.md.
 */
import { fork } from "node:child_process"
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import type { ChildProgress, ChildReply, ChildTask } from "./lib/child.ts"
import { HISTORY_PROBES } from "./peers/peer.ts"
import { machineInfo, versions } from "./lib/machine.ts"
import { renderChart, renderResultsMd } from "./lib/report.ts"
import { type ResultsFile, type RunRecord, type RunStatus, type WorkloadEntry, historyCase } from "./lib/results.ts"
import { PEERS, WORKLOADS, type WorkloadDef } from "./lib/workloads.ts"
import { fmt } from "./lib/svg.ts"

const root = fileURLToPath(new URL("../", import.meta.url))
/** bench/COST.md (the per-stage cost table, measured apart from this harness), if there is one. */
const costTable = (): string | undefined => {
  try {
    return readFileSync(join(root, "bench", "COST.md"), "utf8")
  } catch {
    return undefined
  }
}
/**
 * The child: plain JavaScript when `npm run bench` compiled it (BENCH_CHILD, a bundle beside
 * these sources), so a child's RSS and start-up are what a user's process would show, not
 * tsx's; else the TypeScript source through tsx (`tsx bench/run.ts` by hand).
 */
const childPath = process.env.BENCH_CHILD ?? fileURLToPath(new URL("./lib/child.ts", import.meta.url))
/** `--import tsx` only for a TypeScript child. */
const childRunner = (path: string): Array<string> => (path.endsWith(".ts") ? ["--import", "tsx"] : [])

// ───────────────────────── arguments ─────────────────────────
function parseArgs(argv: string[]) {
  const o = { report: false, quick: false, only: undefined as string[] | undefined, workloads: undefined as number[] | undefined, reps: undefined as number | undefined, timeoutSec: 300, budgetMin: 45, out: undefined as string | undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const val = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === "--quick") o.quick = true
    else if (a === "--report") o.report = true
    else if (a === "--only") o.only = val().split(",").map((s) => s.trim()).filter(Boolean)
    else if (a === "--workloads") o.workloads = val().split(",").map((s) => Number(s.trim()))
    else if (a === "--reps") o.reps = Number(val())
    else if (a === "--timeout") o.timeoutSec = Number(val())
    else if (a === "--budget") o.budgetMin = Number(val())
    else if (a === "--out") o.out = val()
    else if (a === "--help" || a === "-h") {
      console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0])
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  for (const p of o.only ?? []) if (!(PEERS as readonly string[]).includes(p)) throw new Error(`unknown peer ${p}; peers: ${PEERS.join(", ")}`)
  for (const w of o.workloads ?? []) if (!WORKLOADS.some((d) => d.id === w)) throw new Error(`unknown workload ${w}`)
  return o
}

const args = parseArgs(process.argv.slice(2))
const outDir = args.out ?? join(root, args.quick ? "bench/out-quick" : "bench")

if (args.report) {
  const r = JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as ResultsFile
  writeFileSync(join(outDir, "results.svg"), renderChart(r))
  writeFileSync(join(outDir, "RESULTS.md"), renderResultsMd(r, { json: "results.json", svg: "results.svg", costTable: costTable() }))
  console.log(`re-rendered ${join(outDir, "RESULTS.md")} and results.svg from results.json`)
  process.exit(0)
}
const DEFAULT_REPS = args.reps ?? (args.quick ? 1 : 3)
const CHILD_TIMEOUT_MS = args.timeoutSec * 1000
const PREP_TIMEOUT_MS = Math.max(CHILD_TIMEOUT_MS, 20 * 60_000)
const BUDGET_MS = args.budgetMin * 60_000

/**
 * Fewer repetitions for combinations known to be slow on the 2-core reference
 * machine, so the default run fits in ~40 minutes (stated in RESULTS.md).
 * Ignored when --reps is given.
 */
const REPS_OVERRIDE: Record<string, number> = {}

const session = new Date().toISOString().replace(/[-:]/g, "").replace(/\..+/, "")
const scratch = process.env.BENCH_TMP ?? "/tmp/jobledger-bench"
const logDir = join(scratch, "logs", session)
mkdirSync(logDir, { recursive: true })
mkdirSync(outDir, { recursive: true })

const newRunId = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

// ───────────────────────── child processes ─────────────────────────
let current: ReturnType<typeof fork> | undefined
let interrupted = false
let currentTask: (Omit<ChildTask, "timeoutMs"> & { logFile: string }) | undefined

function runChild(
  task: Omit<ChildTask, "timeoutMs">,
  timeoutMs: number,
  logFile: string,
  execArgv: string[] = [],
): Promise<{ status: RunStatus; reply?: ChildReply; wallMs: number; error?: string }> {
  return new Promise((resolve) => {
    if (interrupted && task.kind !== "cleanup") return resolve({ status: "skipped", wallMs: 0, error: "interrupted" })
    const fd = openSync(logFile, "a")
    const t0 = performance.now()
    const child = fork(childPath, [], {
      cwd: root,
      execArgv: [...childRunner(childPath), "--expose-gc", ...execArgv],
      stdio: ["ignore", fd, fd, "ipc"],
      env: { ...process.env, NODE_OPTIONS: "" },
    })
    current = child
    currentTask = { ...task, logFile }
    let reply: ChildReply | undefined
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.on("message", (m) => {
      if (m && typeof m === "object" && "progress" in m) say(`    ${task.peer}: ${(m as ChildProgress).progress}`)
      else reply = m as ChildReply
    })
    child.on("error", () => undefined)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      closeSync(fd)
      current = undefined
      currentTask = undefined
      const wallMs = performance.now() - t0
      if (timedOut) return resolve({ status: "timeout", wallMs, error: `killed after ${timeoutMs / 1000} s` })
      if (!reply) return resolve({ status: "error", wallMs, error: `child exited (code ${code}, signal ${signal}) without a result; see ${logFile}` })
      // an adapter that gave up at its own deadline (ctx.msLeft) counts as a timeout too
      if (!reply.ok) return resolve({ status: /timed out after/.test(reply.error) ? "timeout" : "error", reply, wallMs, error: reply.error })
      resolve({ status: "ok", reply, wallMs })
    })
    child.send({ ...task, timeoutMs } satisfies ChildTask)
  })
}

async function cleanupAfterFailure(peer: string, runId: string, tmpDir: string, logFile: string) {
  const r = await runChild({ kind: "cleanup", peer, runId, tmpDir, params: {}, quick: args.quick }, 60_000, logFile)
  rmSync(tmpDir, { recursive: true, force: true })
  return r.status === "ok" ? undefined : `cleanup child: ${r.error}`
}

process.on("SIGINT", () => {
  console.error("\ninterrupted: killing the running child, cleaning up after it, writing partial results")
  if (interrupted) process.exit(130)
  interrupted = true
  const t = currentTask
  current?.kill("SIGKILL")
  write(true)
  const done = () => process.exit(130)
  const afterChild = t && t.kind !== "cleanup" ? cleanupAfterFailure(t.peer, t.runId, t.tmpDir, t.logFile) : Promise.resolve(undefined)
  afterChild
    .then(async () => {
      for (const h of [...liveHistories]) await dropHistory(h)
    })
    .then(done, done)
})

// ───────────────────────── results ─────────────────────────
const selectedPeers = (PEERS as readonly string[]).filter((p) => !args.only || args.only.includes(p))
const selectedWorkloads = WORKLOADS.filter((w) => !args.workloads || args.workloads.includes(w.id))

const results: ResultsFile = {
  meta: {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    command: `tsx bench/run.ts${process.argv.length > 2 ? " " + process.argv.slice(2).join(" ") : ""}`,
    quick: args.quick,
    machine: machineInfo(),
    versions: versions(root),
    childTimeoutMs: CHILD_TIMEOUT_MS,
    budgetMin: args.budgetMin,
    loadStart: os.loadavg(),
    notes: [],
  },
  peers: {},
  workloads: [],
}

function write(final = false) {
  if (final) {
    results.meta.finished = new Date().toISOString().replace(/\.\d+Z$/, "Z")
    results.meta.loadEnd = os.loadavg()
  }
  const json = join(outDir, "results.json")
  const svg = join(outDir, "results.svg")
  writeFileSync(json, JSON.stringify(results, null, 2) + "\n")
  writeFileSync(svg, renderChart(results))
  writeFileSync(join(outDir, "RESULTS.md"), renderResultsMd(results, { json: "results.json", svg: "results.svg", costTable: costTable() }))
}

const started = performance.now()
const elapsedMin = () => (performance.now() - started) / 60_000
const say = (s: string) => console.log(`[${elapsedMin().toFixed(1).padStart(5)} min] ${s}`)

// ───────────────────────── main ─────────────────────────
async function main() {
  say(`output → ${relative(process.cwd(), outDir) || "."}; child logs → ${logDir}`)

  // 1. peer availability, versions and durability, each from a child
  for (const peer of selectedPeers) {
    if (peer === "jobledger-kafka" && !process.env.KAFKA_BROKERS) {
      results.peers[peer] = { status: "skipped", reason: "KAFKA_BROKERS is not set, so no Kafka broker to run against" }
      results.meta.notes.push("jobledger-kafka column skipped: KAFKA_BROKERS was not set for this run.")
      say(`${peer}: skipped (KAFKA_BROKERS not set)`)
      continue
    }
    if (peer === "jobledger-baseline" && !process.env.JOBLEDGER_BASELINE_ENTRY) {
      results.peers[peer] = { status: "skipped", reason: "JOBLEDGER_BASELINE_ENTRY is not set: no other build of jobledger to compare with" }
      say(`${peer}: skipped (JOBLEDGER_BASELINE_ENTRY not set)`)
      continue
    }
    const runId = newRunId()
    const tmpDir = join(scratch, "runs", runId)
    const logFile = join(logDir, `${peer}-info.log`)
    const r = await runChild({ kind: "info", peer, runId, tmpDir, params: {}, quick: args.quick }, 120_000, logFile)
    rmSync(tmpDir, { recursive: true, force: true })
    if (r.status === "ok" && r.reply?.ok && r.reply.info) {
      results.peers[peer] = { status: "ok", info: r.reply.info }
      say(`${peer}: ${r.reply.info.version} — ${r.reply.info.durability}`)
    } else {
      results.peers[peer] = { status: "unavailable", reason: r.error ?? "unknown" }
      say(`${peer}: UNAVAILABLE — ${(r.error ?? "").split("\n")[0]}`)
      if (r.status !== "ok") await cleanupAfterFailure(peer, runId, tmpDir, logFile)
    }
  }
  write()

  // 2. workloads
  for (const def of selectedWorkloads) await runWorkload(def)
  write(true)
  say(`done → ${join(outDir, "RESULTS.md")}`)
}

async function runWorkload(def: WorkloadDef) {
  const params = def.params(args.quick)
  const entry: WorkloadEntry = {
    id: def.id,
    key: def.key,
    title: def.title(params),
    description: def.description,
    unit: def.unit,
    higherIsBetter: def.higherIsBetter,
    params,
    reps: {},
    prep: {},
    runs: [],
  }
  results.workloads.push(entry)
  const peers = selectedPeers.filter((p) => results.peers[p]?.status === "ok" && (!def.only || def.only.includes(p)))
  for (const p of peers) entry.reps[p] = args.reps ?? REPS_OVERRIDE[`${p}:${def.key}`] ?? DEFAULT_REPS
  const reduced = peers.filter((p) => entry.reps[p] !== DEFAULT_REPS)
  if (reduced.length) results.meta.notes.push(`Workload ${def.id}: ${reduced.map((p) => `${p} ran ${entry.reps[p]} repetition(s) instead of ${DEFAULT_REPS}`).join("; ")} to keep the whole run within ~40 minutes.`)
  say(`workload ${def.id} (${def.key}) ${JSON.stringify(params)} — peers: ${peers.join(", ") || "none"}`)

  if (def.method === "history") return runHistory(def, entry, peers)

  // preparation (replay log), untimed
  const ready = new Set(peers)
  if (def.method === "replay") {
    for (const peer of peers) {
      const runId = newRunId()
      const tmpDir = join(scratch, "runs", runId)
      const logFile = join(logDir, `${peer}-${def.key}-prepare.log`)
      say(`  ${peer}: preparing replay log (cached between runs of the same engine sources)…`)
      const r = await runChild({ kind: "prepare", peer, runId, tmpDir, params, quick: args.quick }, PREP_TIMEOUT_MS, logFile)
      entry.prep[peer] = { status: r.status, wallMs: r.wallMs, ...(r.reply?.ok ? { data: r.reply.prep } : {}), ...(r.error ? { error: r.error } : {}) }
      if (r.status !== "ok") {
        ready.delete(peer)
        say(`  ${peer}: preparation ${r.status} — ${(r.error ?? "").split("\n")[0]}`)
        await cleanupAfterFailure(peer, runId, tmpDir, logFile)
      } else {
        rmSync(tmpDir, { recursive: true, force: true }) // the log itself is in the cache
        say(`  ${peer}: replay log ready ${JSON.stringify(r.reply?.ok ? r.reply.prep : {})}`)
      }
      write()
    }
  }

  const maxReps = Math.max(0, ...peers.map((p) => entry.reps[p]!))
  for (let rep = 1; rep <= maxReps; rep++) {
    for (const peer of peers) {
      if (rep > entry.reps[peer]!) continue
      await measure(def, entry, { peer, rep, params, ready: ready.has(peer), label: peer.padEnd(16), logName: `${peer}-${def.key}-r${rep}` })
    }
  }
}

/** One repetition in one fresh child, recorded in `entry.runs` (or skipped, and why). */
async function measure(
  def: WorkloadDef,
  entry: WorkloadEntry,
  o: { peer: string; rep: number; params: WorkloadEntry["params"]; ready: boolean; label: string; logName: string; kase?: string },
): Promise<RunRecord> {
  const { peer, rep } = o
  const runId = newRunId()
  const tmpDir = join(scratch, "runs", runId)
  const logFile = join(logDir, `${o.logName}.log`)
  const rec: RunRecord = { peer, ...(o.kase ? { case: o.kase } : {}), rep, runId, status: "skipped", wallMs: 0, logFile }
  entry.runs.push(rec)
  if (!o.ready) {
    rec.error = "preparation failed"
    return rec
  }
  if (rep > 1 && performance.now() - started > BUDGET_MS) {
    rec.error = `time budget of ${args.budgetMin} min exhausted`
    say(`  ${o.label} rep ${rep}: skipped (budget)`)
    return rec
  }
  const r = await runChild({ kind: "run", peer, method: def.method, runId, tmpDir, params: o.params, quick: args.quick }, def.timeoutMs ?? CHILD_TIMEOUT_MS, logFile)
  rec.status = r.status
  rec.wallMs = r.wallMs
  if (r.reply?.ok) {
    rec.measurement = r.reply.measurement
    rec.childPeakRssMiB = r.reply.childPeakRssMiB
  }
  if (r.error) rec.error = r.error
  if (r.reply?.cleanupError) rec.cleanupError = r.reply.cleanupError
  if (r.status !== "ok") {
    const ce = await cleanupAfterFailure(peer, runId, tmpDir, logFile)
    if (ce) rec.cleanupError = ce
  } else rmSync(tmpDir, { recursive: true, force: true })
  const m = rec.measurement
  const rss = typeof m?.extra?.rssMiB === "number" ? `, RSS ${fmt(m.extra.rssMiB, 3)} MiB` : ""
  say(
    `  ${o.label} rep ${rep}/${entry.reps[peer]}: ${
      rec.status === "ok" && m ? `${fmt(m.value, 4)} ${m.unit}${rss}` : `${rec.status.toUpperCase()} — ${(rec.error ?? "").split("\n")[0]}`
    } (${(rec.wallMs / 1000).toFixed(1)} s wall)`,
  )
  write()
  return rec
}

/**
 * Histories the run built outside the cache (BullMQ keys, Kafka topics): removed by a cleanup
 * child with the building child's runId once their size is measured, or on SIGINT.
 */
const liveHistories: Array<{ peer: string; runId: string; tmpDir: string; logFile: string }> = []

async function dropHistory(h: (typeof liveHistories)[number]): Promise<void> {
  const i = liveHistories.indexOf(h)
  if (i >= 0) liveHistories.splice(i, 1)
  const t0 = performance.now()
  const r = await runChild({ kind: "cleanup", peer: h.peer, runId: h.runId, tmpDir: h.tmpDir, params: {}, quick: args.quick }, 10 * 60_000, h.logFile)
  rmSync(h.tmpDir, { recursive: true, force: true })
  say(`  ${h.peer}: history removed (${r.status}, ${((performance.now() - t0) / 1000).toFixed(1)} s)${r.error ? ` — ${r.error.split("\n")[0]}` : ""}`)
}

/**
 * Workload 7: for each size (ascending), build each peer's history once (untimed), then take
 * the producer/reader/engine measurements, each in a fresh child, interleaved across probes
 * and peers per repetition; then remove the run-scoped histories of that size.
 */
async function runHistory(def: WorkloadDef, entry: WorkloadEntry, peers: string[]) {
  const params = entry.params
  const caps = params.historyCaps ?? {}
  for (const [p, cap] of Object.entries(caps))
    if (peers.includes(p) && (params.sizes ?? []).some((n) => n > cap))
      results.meta.notes.push(`Workload ${def.id}: ${p} histories capped at ${cap.toLocaleString("en-US")} jobs (BENCH_HISTORY_KAFKA_MAX), larger sizes not built.`)
  for (const size of params.sizes ?? []) {
    const here = peers.filter((p) => size <= (caps[p] ?? Infinity))
    for (const p of peers.filter((p) => !here.includes(p))) say(`  ${p}: not built at ${size.toLocaleString("en-US")} (cap ${caps[p]!.toLocaleString("en-US")})`)
    const refs = new Map<string, string>()
    const built: typeof liveHistories = []
    for (const peer of here) {
      const runId = newRunId()
      const tmpDir = join(scratch, "runs", runId)
      const logFile = join(logDir, `${peer}-${def.key}-${size}-prepare.log`)
      say(`  ${peer}: history of ${size.toLocaleString("en-US")} completed jobs (untimed; reused if cached)…`)
      const r = await runChild({ kind: "prepare", peer, method: "history", runId, tmpDir, params: { ...params, history: size }, quick: args.quick }, def.prepTimeoutMs ?? PREP_TIMEOUT_MS, logFile, def.prepExecArgv)
      const data = r.reply?.ok ? r.reply.prep : undefined
      entry.prep[`${peer}@${size}`] = { status: r.status, wallMs: r.wallMs, ...(data ? { data } : {}), ...(r.error ? { error: r.error } : {}) }
      if (r.status === "ok" && data) {
        refs.set(peer, String(data.ref))
        if (data.scope === "run") {
          const h = { peer, runId, tmpDir, logFile }
          liveHistories.push(h)
          built.push(h)
        } else rmSync(tmpDir, { recursive: true, force: true })
        say(`  ${peer}: history ready in ${(r.wallMs / 1000).toFixed(0)} s ${JSON.stringify({ ...data, ref: undefined })}`)
      } else {
        say(`  ${peer}: history build ${r.status} — ${(r.error ?? "").split("\n")[0]}`)
        await cleanupAfterFailure(peer, runId, tmpDir, logFile)
      }
      write()
    }
    const maxReps = Math.max(0, ...here.map((p) => entry.reps[p]!))
    for (let rep = 1; rep <= maxReps; rep++)
      for (const probe of HISTORY_PROBES)
        for (const peer of here) {
          if (rep > entry.reps[peer]!) continue
          const kase = historyCase(probe, size)
          const ref = refs.get(peer)
          await measure(def, entry, {
            peer,
            rep,
            kase,
            params: { ...params, history: size, probe, ...(ref === undefined ? {} : { historyRef: ref }) },
            ready: ref !== undefined,
            label: `${peer} ${kase}`.padEnd(34),
            logName: `${peer}-${def.key}-${probe}-${size}-r${rep}`,
          })
        }
    for (const h of built) await dropHistory(h)
  }
}

main().catch((e) => {
  console.error(e)
  write(true)
  process.exit(1)
})
