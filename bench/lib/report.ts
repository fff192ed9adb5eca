import { HISTORY_PROBES, type HistoryProbe } from "../peers/peer.ts"
import { BASELINE, HISTORY_FLAT, HISTORY_TARGET_SIZE, HISTORY_TARGETS, TARGETS } from "./workloads.ts"
import { type ResultsFile, type Summary, type WorkloadEntry, historyCase, summarise } from "./results.ts"
import { type Panel, fmt, renderSvg } from "./svg.ts"

const num = (v: number | undefined, digits = 3) => (v === undefined || !Number.isFinite(v) ? "–" : fmt(v, digits))
const int = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : Math.round(v).toLocaleString("en-US"))
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toString())

function shortDurability(r: ResultsFile, peer: string): string {
  const d = r.peers[peer]?.info?.durability
  if (!d) return "–"
  return d.split(/[:;]/)[0]!.trim()
}

function peersIn(r: ResultsFile): string[] {
  return Object.keys(r.peers)
}

function ratio(s: Summary | undefined, b: Summary | undefined, value: (s: Summary) => number = (s) => s.median): string {
  if (!s || !b || !s.n || !b.n) return "–"
  const x = value(s) / value(b)
  return Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×` : "–"
}

function target(w: WorkloadEntry, peer: string, s: Summary | undefined, b: Summary | undefined, value: (s: Summary) => number = (s) => s.median): string {
  const t = TARGETS.find((t) => t.workload === w.id && t.peer === peer)
  if (!t) return ""
  if (!s || !s.n) return `${t.text}: not measured`
  const ok = t.check(value(s), b && b.n ? value(b) : undefined)
  return `${t.text}: ${ok === undefined ? "no baseline" : ok ? "✅ met" : "❌ not met"}`
}

function statusText(r: ResultsFile, w: WorkloadEntry, peer: string, s: Summary | undefined): string | undefined {
  const pe = r.peers[peer]
  if (pe?.status !== "ok") return pe?.status === "skipped" ? "skipped" : "unavailable"
  if (!w.reps[peer]) return "n/a"
  if (!s) return "not run"
  if (!s.n) return s.statuses.includes("timeout") ? "timeout" : s.statuses.join(", ")
  return undefined
}

function runsCell(s: Summary | undefined, planned: number | undefined): string {
  if (!s) return "–"
  const bad = s.statuses.filter((x) => x !== "ok")
  return `${s.n}/${planned ?? s.statuses.length}${bad.length ? ` (${bad.join(", ")})` : ""}`
}

function failures(w: WorkloadEntry): string[] {
  const out: string[] = []
  for (const [peer, p] of Object.entries(w.prep)) {
    if (p.status !== "ok") out.push(`- ${peer} preparation: **${p.status}** — ${(p.error ?? "").split("\n")[0]}`)
  }
  for (const run of w.runs) {
    if (run.status !== "ok" && run.status !== "skipped")
      out.push(`- ${run.peer} rep ${run.rep}: **${run.status}** after ${(run.wallMs / 1000).toFixed(0)} s — ${(run.error ?? "").split("\n")[0]} (log: \`${run.logFile}\`)`)
    if (run.cleanupError) out.push(`- ${run.peer} rep ${run.rep}: cleanup failed — ${run.cleanupError.split("\n")[0]}`)
  }
  return out
}

function throughputTable(r: ResultsFile, w: WorkloadEntry): string[] {
  const base = summarise(w, BASELINE)
  const lines = [`| peer | median ${w.unit} | min – max | × BullMQ | target | runs | durability |`, "|---|---:|---:|---:|---|---|---|"]
  for (const peer of peersIn(r)) {
    const s = summarise(w, peer)
    const st = statusText(r, w, peer, s)
    if (st) {
      lines.push(`| ${peer} | ${st} | | | ${target(w, peer, s, base)} | ${runsCell(s, w.reps[peer])} | ${shortDurability(r, peer)} |`)
      continue
    }
    lines.push(
      `| ${peer} | **${int(s!.median)}** | ${int(s!.min)} – ${int(s!.max)} | ${ratio(s, base)} | ${target(w, peer, s, base)} | ${runsCell(s, w.reps[peer])} | ${shortDurability(r, peer)} |`,
    )
  }
  if (w.key.startsWith("drain")) {
    lines.push("", "Untimed load phase for reference (median bulk-add rate while filling the queue, and peak RSS of the drain process):", "")
    lines.push("| peer | bulk add jobs/s | peak RSS MiB |", "|---|---:|---:|")
    for (const peer of peersIn(r)) {
      const s = summarise(w, peer)
      if (s?.n) lines.push(`| ${peer} | ${int(s.extra.addBulkJobsPerSec)} | ${num(s.extra.peakRssMiB)} |`)
    }
  }
  return lines
}

function latencyTable(r: ResultsFile, w: WorkloadEntry): string[] {
  const base = summarise(w, BASELINE)
  const lines = [
    "| peer | p50 ms | p95 ms | p99 ms | p99 min – max | p99 × BullMQ | target | samples | missing | started/s | max sched. lag ms | runs | durability |",
    "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|",
  ]
  for (const peer of peersIn(r)) {
    const s = summarise(w, peer)
    const st = statusText(r, w, peer, s)
    if (st) {
      lines.push(`| ${peer} | ${st} | | | | | ${target(w, peer, s, base)} | | | | | ${runsCell(s, w.reps[peer])} | ${shortDurability(r, peer)} |`)
      continue
    }
    const e = s!.extra
    const ge = e.censored ? "≥ " : ""
    lines.push(
      `| ${peer} | ${ge}${ms(e.p50)} | ${ge}${ms(e.p95)} | **${ge}${ms(s!.median)}** | ${ms(s!.min)} – ${ms(s!.max)} | ${ratio(s, base)} | ${target(w, peer, s, base)} | ${int(e.samples)} | ${int(e.missing)} | ${int(e.startedPerSec)} | ${ms(e.maxSchedulingLagMs)} | ${runsCell(s, w.reps[peer])} | ${shortDurability(r, peer)} |`,
    )
  }
  lines.push("", "p50/p95 are medians over repetitions of each repetition's percentile; p99 likewise (min–max over repetitions). “missing” = jobs offered but not started within 30 s after the last offer; they are counted in the percentiles with their latency so far, so a “≥” marks percentiles that are lower bounds; “started/s” = jobs started per second from the first scheduled send to the last handler start — if it is below the offered rate the peer could not keep up and its latency figures mostly measure the growing backlog. “max sched. lag” = how far the open-loop producer itself fell behind its schedule. Ratios below 1× are better here.")
  return lines
}

function memoryTable(r: ResultsFile, w: WorkloadEntry): string[] {
  const base = summarise(w, BASELINE)
  const lines = [
    "| peer | peak RSS MiB | RSS idle → with jobs MiB | process bytes/job | server bytes/job | process+server bytes/job | × BullMQ (peak RSS) | runs |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
  ]
  const metrics = new Map<string, string>()
  for (const peer of peersIn(r)) {
    const s = summarise(w, peer)
    const st = statusText(r, w, peer, s)
    if (st) {
      lines.push(`| ${peer} | ${st} | | | | | | ${runsCell(s, w.reps[peer])} |`)
      continue
    }
    const e = s!.extra
    const metric = w.runs.find((x) => x.peer === peer && x.measurement)?.measurement?.extra?.serverMetric
    if (typeof metric === "string") metrics.set(peer, metric)
    const log = e.logBytesPerJob !== undefined ? ` (log file ${int(e.logBytesPerJob)})` : ""
    lines.push(
      `| ${peer} | **${num(s!.median)}** | ${num(e.rssBaselineMiB)} → ${num(e.rssWithMiB)} | ${int(e.processBytesPerJob)} | ${e.serverBytesPerJob !== undefined ? int(e.serverBytesPerJob) : "–"}${log} | ${int(e.totalBytesPerJob)} | ${ratio(s, base)} | ${runsCell(s, w.reps[peer])} |`,
    )
  }
  lines.push("", "Server-side figures:")
  for (const [peer, m] of metrics) lines.push(`- ${peer}: ${m}`)
  lines.push(
    "",
    "“process bytes/job” = (RSS after adding N jobs − idle RSS) / N, both after forced GC; it can be ≈0 or negative for engines whose jobs live in a server. Peak RSS includes the garbage of the adding itself, since producer and engine share the process.",
  )
  return lines
}

// ───────────────────────── workload 7: history ─────────────────────────

const HISTORY_TEXT: Record<HistoryProbe, { what: string; bullmq: string; short: string }> = {
  producer: { what: "Producer: `new JobQueue` → first `add` resolved", bullmq: "`new Queue` → first `add`", short: "first add" },
  reader: { what: "Reader: `new JobQueue` → first `stats()` resolved", bullmq: "`new Queue` → first `getJobCounts()`", short: "first stats" },
  engine: {
    what: "Engine: `new JobQueue` + `process()` → first new job's handler entered (ms after `process()`)",
    bullmq: "`new Worker` → processor entered",
    short: "first job started",
  },
}
type HistoryMetric = "ms" | "rssMiB"

/** ms with a precision that suits the size; thousands separated */
const msText = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "–" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US"))
const sizeText = (n: number) => (n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : n.toLocaleString("en-US"))

function historyPeers(w: WorkloadEntry): string[] {
  return Object.keys(w.reps)
}

function historyValue(s: Summary | undefined, metric: HistoryMetric): number | undefined {
  if (!s?.n) return undefined
  return metric === "ms" ? s.median : s.extra.rssMiB
}

/** why there is no figure for (peer, size, probe), or undefined if there is one */
function historyGap(r: ResultsFile, w: WorkloadEntry, peer: string, size: number, s: Summary | undefined): string | undefined {
  const cap = w.params.historyCaps?.[peer]
  if (cap !== undefined && size > cap) return `not run (cap ${sizeText(cap)})`
  const prep = w.prep[`${peer}@${size}`]
  if (prep && prep.status !== "ok") return `build ${prep.status}`
  return statusText(r, w, peer, s)
}

function historyTable(r: ResultsFile, w: WorkloadEntry, probe: HistoryProbe, metric: HistoryMetric): string[] {
  const peers = historyPeers(w)
  const sizes = w.params.sizes ?? []
  const unit = metric === "ms" ? "ms" : "MiB RSS"
  const L = [`| completed jobs in the log | ${peers.map((p) => `${p} ${unit}`).join(" | ")} |`, `|---:|${peers.map(() => "---:").join("|")}|`]
  for (const size of sizes) {
    const cells = peers.map((p) => {
      const s = summarise(w, p, historyCase(probe, size))
      const gap = historyGap(r, w, p, size, s)
      if (gap) return gap
      if (metric === "rssMiB") return `**${num(s!.extra.rssMiB)}** (floor ${num(s!.extra.rssBeforeMiB)}, peak ${num(s!.extra.peakRssMiB)})`
      return `**${msText(s!.median)}**${s!.n > 1 ? ` (${msText(s!.min)} – ${msText(s!.max)})` : ""}${s!.n < (w.reps[p] ?? 0) ? ` [${s!.n}/${w.reps[p]} runs]` : ""}`
    })
    L.push(`| ${size.toLocaleString("en-US")} | ${cells.join(" | ")} |`)
  }
  if (sizes.length >= 2) {
    const lo = sizes[0]!
    const hi = sizes[sizes.length - 1]!
    const cells = peers.map((p) => {
      const a = historyValue(summarise(w, p, historyCase(probe, lo)), metric)
      const b = historyValue(summarise(w, p, historyCase(probe, hi)), metric)
      if (a === undefined || b === undefined) return "–"
      const x = b / a
      const flat = HISTORY_FLAT.peers.includes(p) ? (x <= HISTORY_FLAT.ratio ? ` ✅ ≤ ${HISTORY_FLAT.ratio}×` : ` ❌ > ${HISTORY_FLAT.ratio}×`) : ""
      return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×${flat}`
    })
    L.push(`| ${sizeText(hi)} ÷ ${sizeText(lo)} | ${cells.join(" | ")} |`)
  }
  const targets = peers.map((p) => historyTargetCell(w, p, probe, metric))
  if (targets.some((t) => t)) L.push(`| target at ${sizeText(HISTORY_TARGET_SIZE)} | ${targets.join(" | ")} |`)
  return L
}

function historyTargetCell(w: WorkloadEntry, peer: string, probe: HistoryProbe, metric: HistoryMetric): string {
  const t = HISTORY_TARGETS.find((t) => t.peer === peer && t.probe === probe && t.metric === metric)
  if (!t) return ""
  const at = HISTORY_TARGET_SIZE
  const v = historyValue(summarise(w, peer, historyCase(probe, at)), metric)
  const show = (x: number) => (metric === "ms" ? `${msText(x)} ms` : `${num(x)} MiB`)
  if (v !== undefined) return `${t.text}: ${v <= t.max ? "✅ met" : `❌ missed (${show(v)})`}`
  // not measured at the target's size: say so, and how the largest measured size compares
  const measured = (w.params.sizes ?? []).filter((n) => historyValue(summarise(w, peer, historyCase(probe, n)), metric) !== undefined)
  const largest = measured[measured.length - 1]
  if (largest === undefined) return `${t.text}: not measured`
  const lv = historyValue(summarise(w, peer, historyCase(probe, largest)), metric)!
  return `${t.text}: not measured at ${sizeText(at)}; at ${sizeText(largest)} ${lv <= t.max ? "within" : "already above"} it (${show(lv)})`
}

function drainBeside(r: ResultsFile): string[] {
  const drains = r.workloads.filter((w) => w.key.startsWith("drain"))
  if (!drains.length)
    return [
      "Drain throughput was not measured in this run. Issue 12 also asks that draining stays as fast as before: run `--workloads 1,2,7` so that workloads 1–2 appear here, beside these figures, from the same run.",
    ]
  const peers = peersIn(r).filter((p) => drains.some((w) => w.reps[p]))
  const L = [
    "Drain throughput in the same run (workloads 1–2, median jobs/s; issue 12 asks that it does not drop below the engine's before the change — compare with a run of the older engine on the same machine, see bench/README.md):",
    "",
    `| workload | ${peers.join(" | ")} |`,
    `|---|${peers.map(() => "---:").join("|")}|`,
  ]
  for (const w of drains) {
    const base = summarise(w, BASELINE)
    const cells = peers.map((p) => {
      const s = summarise(w, p)
      const st = statusText(r, w, p, s)
      if (st) return st
      const x = p !== BASELINE ? ratio(s, base) : ""
      return `${int(s!.median)}${x && x !== "–" ? ` (${x})` : ""}`
    })
    L.push(`| ${w.id}. ${w.title} | ${cells.join(" | ")} |`)
  }
  return L
}

function historySection(r: ResultsFile, w: WorkloadEntry): string[] {
  const L: string[] = []
  const builds = Object.entries(w.prep)
  if (builds.length) {
    L.push("Histories (built untimed, before the measurements of their size):", "", "| peer @ size | status | cached | build s | drain jobs/s while building | child wall s |", "|---|---|---|---:|---:|---:|")
    for (const [k, p] of builds) {
      const d = p.data ?? {}
      const [peer, size] = k.split("@")
      L.push(`| ${peer} @ ${int(Number(size))} | ${p.status} | ${d.cached ?? "–"} | ${typeof d.buildSeconds === "number" ? d.buildSeconds.toFixed(1) : "–"} | ${int(d.drainJobsPerSec as number | undefined)} | ${(p.wallMs / 1000).toFixed(0)} |`)
    }
    L.push("", "A cached build reports the build time of the run that built it.", "")
  }
  for (const probe of HISTORY_PROBES) {
    L.push(`#### ${HISTORY_TEXT[probe].what}`, "", `BullMQ: ${HISTORY_TEXT[probe].bullmq}. Median (min – max) over repetitions, each a fresh process.`, "")
    L.push(...historyTable(r, w, probe, "ms"), "")
    if (probe === "engine") {
      const line = historyPeers(w)
        .filter((p) => p !== BASELINE)
        .map((p) => {
          const xs = (w.params.sizes ?? []).map((n) => {
            const s = summarise(w, p, historyCase(probe, n))
            return s?.n ? `${msText(s.extra.msFromConstructor)} ms at ${sizeText(n)}` : undefined
          })
          return xs.some(Boolean) ? `${p} ${xs.filter(Boolean).join(", ")}` : undefined
        })
        .filter(Boolean)
      if (line.length) L.push(`The same, timed from the constructor (comparable with BullMQ's, whose clock starts at \`new Worker\`): ${line.join("; ")}.`, "")
    }
    L.push(`RSS right after that ${HISTORY_TEXT[probe].short} (median; floor = RSS of the same process before the constructor, engine imported, after GC; peak = getrusage max RSS so far):`, "")
    L.push(...historyTable(r, w, probe, "rssMiB"), "")
  }
  L.push(...drainBeside(r), "")
  L.push(
    "Notes: every clock starts at the constructor (`new JobQueue` / `new Queue` / `new Worker`), after the engine's modules were imported; the engine's figure runs from `process()`, called right after the constructor. " +
      "The engine probe's job is added beforehand by a separate short-lived producer process (untimed), so the measured process adds nothing itself. " +
      "jobledger SQLite measures a private, fsync'ed copy of the cached file (so it is in the page cache: a warm start); BullMQ and jobledger Kafka share one history per size, and BullMQ's probe jobs are removed again after each measurement (Kafka's cannot be: each Kafka measurement leaves up to one job more in the history).",
  )
  return L
}

function historySummaryCell(w: WorkloadEntry, peer: string): string {
  const sizes = (w.params.sizes ?? []).filter((n) => HISTORY_PROBES.some((p) => summarise(w, peer, historyCase(p, n))?.n))
  const at = sizes[sizes.length - 1]
  if (at === undefined) return "not measured"
  const part = (p: HistoryProbe) => `${HISTORY_TEXT[p].short} ${msText(summarise(w, peer, historyCase(p, at))?.median)}`
  return `at ${sizeText(at)}: ${HISTORY_PROBES.map(part).join(" · ")} ms`
}

function historyPanels(r: ResultsFile, w: WorkloadEntry): Panel[] {
  const peers = peersIn(r)
  return HISTORY_PROBES.map((probe) => ({
    title: `Workload 7 · history: ${HISTORY_TEXT[probe].short} in a fresh process`,
    unit: "ms",
    higherIsBetter: false,
    groups: (w.params.sizes ?? []).map((size) => ({
      label: `${size.toLocaleString("en-US")} completed`,
      bars: peers.map((peer) => {
        const s = summarise(w, peer, historyCase(probe, size))
        const gap = w.reps[peer] ? historyGap(r, w, peer, size, s) : "n/a"
        return gap || !s ? { peer, note: gap ?? "n/a" } : { peer, median: s.median, min: s.min, max: s.max }
      }),
    })),
  }))
}

export function buildPanels(r: ResultsFile): Panel[] {
  const peers = peersIn(r)
  const panels: Panel[] = []
  const bar = (w: WorkloadEntry, peer: string, pick?: (s: Summary) => { median?: number; min?: number; max?: number }) => {
    const s = summarise(w, peer)
    const st = statusText(r, w, peer, s)
    if (st || !s) return { peer, note: st ?? "n/a" }
    return pick ? { peer, ...pick(s) } : { peer, median: s.median, min: s.min, max: s.max }
  }
  const byKey = (k: string) => r.workloads.find((w) => w.key === k)
  const d1 = byKey("drain-c100")
  const d2 = byKey("drain-c1")
  if (d1 || d2) {
    panels.push({
      title: "Workloads 1–2 · drain no-op jobs",
      unit: "jobs/s",
      higherIsBetter: true,
      groups: [d1, d2].filter((w): w is WorkloadEntry => !!w).map((w) => ({ label: `concurrency ${w.params.concurrency} (${int(w.params.n)} jobs)`, bars: peers.map((p) => bar(w, p)) })),
    })
  }
  const a = byKey("add-serial")
  if (a) panels.push({ title: "Workload 3 · serial awaited add", unit: "adds/s", higherIsBetter: true, groups: [{ label: `${int(a.params.n)} adds`, bars: peers.map((p) => bar(a, p)) }] })
  const l = byKey("latency")
  if (l)
    panels.push({
      title: `Workload 4 · add → handler start at ${int(l.params.rate)} jobs/s`,
      unit: "ms",
      higherIsBetter: false,
      groups: (["p50", "p95", "p99"] as const).map((q) => ({
        label: q,
        bars: peers.map((p) =>
          bar(l, p, (s) => ({
            ...(q === "p99" ? { median: s.median, min: s.min, max: s.max } : { median: s.extra[q] }),
            ...(s.extra.censored ? { prefix: "≥" } : {}),
          })),
        ),
      })),
    })
  const rp = byKey("replay")
  if (rp) panels.push({ title: "Workload 5 · replay projections", unit: "events/s", higherIsBetter: true, groups: [{ label: `${int(rp.params.events)} events`, bars: peers.map((p) => bar(rp, p)) }] })
  const m = byKey("memory")
  if (m)
    panels.push({
      title: `Workload 6 · memory with ${int(m.params.n)} waiting jobs`,
      unit: "bytes per waiting job",
      higherIsBetter: false,
      groups: [
        { label: "engine/worker process (RSS Δ)", bars: peers.map((p) => bar(m, p, (s) => ({ median: s.extra.processBytesPerJob }))) },
        { label: "server (Redis / Postgres Δ)", bars: peers.map((p) => bar(m, p, (s) => ({ median: s.extra.serverBytesPerJob }))) },
      ],
    })
  const h = byKey("history")
  if (h) panels.push(...historyPanels(r, h))
  return panels.filter((p) => p.groups.some((g) => g.bars.some((b) => "median" in b && b.median !== undefined && Number.isFinite(b.median))))
}

/**
 * `costTable`: the per-job cost by stage (bench/COST.md, measured with the profiling scripts it
 * names, not by this harness), placed after the summary so the ratios and their causes read together.
 */
export function renderResultsMd(r: ResultsFile, files: { svg: string; json: string; costTable?: string }): string {
  const peers = peersIn(r)
  const L: string[] = []
  L.push("# jobledger benchmark results", "")
  L.push(`Produced by \`${r.meta.command}\` on ${r.meta.date}${r.meta.finished ? ` (finished ${r.meta.finished})` : ""}.`)
  L.push(`Raw numbers: [\`${files.json}\`](${files.json}). Chart: [\`${files.svg}\`](${files.svg}).`, "")
  if (r.meta.quick) L.push("> **Quick smoke run** (`--quick`): sizes are shrunk and there is one repetition, so these figures are not comparable to a full run.", "")
  const busy = Math.max(r.meta.loadStart[0] ?? 0, r.meta.loadEnd?.[0] ?? 0)
  if (busy > r.meta.machine.cores * 0.5)
    L.push(
      `> ⚠ **The machine was busy during this run** (1-minute load average up to ${busy.toFixed(1)} on ${r.meta.machine.cores} cores, from processes outside the benchmark): all figures are depressed and noisy, and ratios between peers are less reliable than on an idle machine.`,
      "",
    )
  L.push(`![benchmark chart](${files.svg})`, "")

  L.push("## Summary (medians)", "")
  L.push(`| workload | ${peers.join(" | ")} |`, `|---|${peers.map(() => "---:").join("|")}|`)
  for (const w of r.workloads) {
    const base = summarise(w, BASELINE)
    const cells = peers.map((p) => {
      if (w.key === "history") return w.reps[p] ? historySummaryCell(w, p) : statusText(r, w, p, undefined) ?? "n/a"
      const s = summarise(w, p)
      const st = statusText(r, w, p, s)
      if (st) return st
      const v = w.key === "latency" ? `${s!.extra.censored ? "≥ " : ""}${ms(s!.median)} ms p99` : w.key === "memory" ? `${num(s!.median)} MiB peak` : `${int(s!.median)} ${w.unit}`
      const x = p !== BASELINE ? ratio(s, base) : ""
      const t = target(w, p, s, base)
      return `${v}${x && x !== "–" ? ` (${x})` : ""}${t ? `<br>${t}` : ""}`
    })
    L.push(`| ${w.id}. ${w.title} | ${cells.join(" | ")} |`)
  }
  L.push("", "Ratios are peer ÷ BullMQ on the headline figure; for latency and memory lower is better. Targets are goals shown for orientation, not assertions.", "")

  if (files.costTable !== undefined) L.push(files.costTable.trim(), "")
  L.push("## Machine", "")
  const m = r.meta.machine
  L.push(`- CPU: ${m.cpu}, ${m.cores} cores`, `- RAM: ${m.ramGiB} GiB`, `- OS: ${m.os} (${m.kernel})`, `- Node.js: ${m.node}`)
  L.push(`- Load average (1/5/15 min) at start: ${r.meta.loadStart.map((x) => x.toFixed(2)).join(" / ")}${r.meta.loadEnd ? `; at end: ${r.meta.loadEnd.map((x) => x.toFixed(2)).join(" / ")}` : ""} — anything well above 0 means other processes shared the ${m.cores} cores during the run`)
  L.push(`- Versions: ${Object.entries(r.meta.versions).map(([k, v]) => `${k} ${v}`).join("; ")}`, "")

  L.push("## Peers, durability and configuration", "")
  L.push("| peer | version | backend | durability |", "|---|---|---|---|")
  for (const p of peers) {
    const e = r.peers[p]!
    if (e.status !== "ok") L.push(`| ${p} | ${e.status}: ${(e.reason ?? "").split("\n")[0]} | | |`)
    else L.push(`| ${p} | ${e.info!.version} | ${e.info!.backend} | ${e.info!.durability} |`)
  }
  L.push("")
  for (const p of peers) {
    const notes = r.peers[p]?.info?.notes
    if (notes?.length) {
      L.push(`**${p}**`, "")
      for (const n of notes) L.push(`- ${n}`)
      L.push("")
    }
  }

  L.push("## Workloads", "")
  for (const w of r.workloads) {
    L.push(`### ${w.id}. ${w.title}`, "")
    L.push(w.description, "")
    L.push(
      `Parameters: \`${JSON.stringify(w.params)}\`; repetitions per peer: ${Object.entries(w.reps)
        .map(([p, n]) => `${p} ${n}`)
        .join(", ")}. Each repetition runs in a fresh child process with its own queue/schema/log, removed afterwards.`,
      "",
    )
    const prep = Object.entries(w.prep).filter(([, p]) => p.status === "ok" && w.key !== "history")
    for (const [peer, p] of prep) L.push(`Preparation (${peer}, untimed): \`${JSON.stringify(p.data)}\``, "")
    if (w.key === "latency") L.push(...latencyTable(r, w))
    else if (w.key === "memory") L.push(...memoryTable(r, w))
    else if (w.key === "history") L.push(...historySection(r, w))
    else L.push(...throughputTable(r, w))
    const f = failures(w)
    if (f.length) L.push("", "Failures:", "", ...f)
    L.push("")
  }

  L.push("## Method notes", "")
  L.push(`- Every repetition is a fresh \`node --expose-gc\` process running the harness's child compiled to JavaScript (\`bench/.build/child.mjs\`, jobledger from its compiled \`dist/\`), as a user's process would; a child that runs longer than ${Math.round(r.meta.childTimeoutMs / 1000)} s is killed (SIGKILL) and recorded as \`timeout\`, then a separate cleanup child removes what it left behind.`)
  L.push("- Repetitions are interleaved across peers (rep 1 of every peer, then rep 2, …) so slow drift of the machine affects all peers alike.")
  L.push("- Timers use `performance.now()`; latency timestamps use `performance.timeOrigin + performance.now()`.")
  for (const n of r.meta.notes) L.push(`- ${n}`)
  L.push("")
  return L.join("\n")
}

export function renderChart(r: ResultsFile): string {
  const sub = `${r.meta.machine.cpu} · ${r.meta.machine.cores} cores · Node ${r.meta.machine.node} · ${r.meta.date}${r.meta.quick ? " · QUICK SMOKE RUN" : ""}`
  return renderSvg(buildPanels(r), peersIn(r), sub)
}
