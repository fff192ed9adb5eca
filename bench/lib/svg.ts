/**
 * Hand-written SVG chart: small multiples, one panel per measured quantity,
 * grouped bars (one bar per peer) with min–max whiskers; a panel switches to
 * a log scale when its values span more than ~30×.
 */

export interface Bar {
  peer: string
  median?: number
  min?: number
  max?: number
  /** shown instead of a bar, e.g. "n/a", "timeout" */
  note?: string
  /** put before the value label, e.g. "≥" for a lower bound */
  prefix?: string
}
export interface Group {
  label: string
  bars: Bar[]
}
export interface Panel {
  title: string
  unit: string
  higherIsBetter: boolean
  groups: Group[]
}

export const PEER_COLORS: Record<string, string> = {
  jobledger: "#2f6fde",
  "jobledger-kafka": "#7b4fd6",
  bullmq: "#d9482b",
  "graphile-worker": "#2a9d5c",
}
const color = (p: string) => PEER_COLORS[p] ?? "#888"

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export function fmt(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return "–"
  const a = Math.abs(v)
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(digits)}M`
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(digits)}k`
  if (a >= 100) return `${Math.round(v)}`
  if (a >= 1) return `${+v.toPrecision(digits)}`
  if (a === 0) return "0"
  return `${+v.toPrecision(2)}`
}

interface Scale {
  log: boolean
  y(v: number): number
  ticks: number[]
}

function niceStep(range: number, count: number): number {
  const raw = range / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const f = raw / mag
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag
}

function makeScale(values: number[], top: number, bottom: number): Scale {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0)
  const hi = pos.length ? Math.max(...pos) : 1
  const lo = pos.length ? Math.min(...pos) : 1
  if (pos.length >= 2 && hi / lo > 30) {
    const lmin = Math.floor(Math.log10(lo))
    const lmax = Math.ceil(Math.log10(hi * 1.15))
    const y = (v: number) => (v <= 0 ? bottom : bottom - ((Math.log10(v) - lmin) / (lmax - lmin)) * (bottom - top))
    const ticks: number[] = []
    for (let e = lmin; e <= lmax; e++) ticks.push(10 ** e)
    return { log: true, y, ticks }
  }
  const step = niceStep(hi * 1.15, 5)
  const max = Math.ceil((hi * 1.15) / step) * step
  const ticks: number[] = []
  for (let t = 0; t <= max + step / 2; t += step) ticks.push(t)
  return { log: false, y: (v: number) => bottom - (Math.max(0, v) / max) * (bottom - top), ticks }
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const out: string[] = []
  const left = x0 + 58
  const right = x0 + w - 12
  const top = y0 + 46
  const bottom = y0 + h - 40
  const values = p.groups.flatMap((g) => g.bars.flatMap((b) => [b.median, b.max].filter((v): v is number => v !== undefined)))
  const sc = makeScale(values, top, bottom)
  out.push(`<rect x="${x0 + 0.5}" y="${y0 + 0.5}" width="${w - 1}" height="${h - 1}" fill="#fff" stroke="#ddd"/>`)
  out.push(`<text x="${x0 + 12}" y="${y0 + 20}" font-size="13" font-weight="600">${esc(p.title)}</text>`)
  out.push(
    `<text x="${x0 + 12}" y="${y0 + 36}" font-size="11" fill="#555">${esc(p.unit)}${sc.log ? ", log scale" : ""} · ${p.higherIsBetter ? "higher is better" : "lower is better"} · bar = median, whisker = min–max</text>`,
  )
  for (const t of sc.ticks) {
    const y = sc.y(t)
    out.push(`<line x1="${left}" x2="${right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eee"/>`)
    out.push(`<text x="${left - 6}" y="${(y + 4).toFixed(1)}" font-size="10" text-anchor="end" fill="#666">${fmt(t)}</text>`)
  }
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#999"/>`)
  const gw = (right - left) / Math.max(1, p.groups.length)
  p.groups.forEach((g, gi) => {
    const gx = left + gi * gw
    const n = g.bars.length
    const bw = Math.min(46, (gw - 16) / Math.max(1, n))
    const start = gx + (gw - bw * n) / 2
    g.bars.forEach((b, bi) => {
      const bx = start + bi * bw
      const cx = bx + bw / 2
      if (b.median === undefined || !Number.isFinite(b.median)) {
        out.push(`<text x="${cx.toFixed(1)}" y="${bottom - 6}" font-size="9" text-anchor="middle" fill="#999">${esc(b.note ?? "n/a")}</text>`)
        return
      }
      const y = sc.y(b.median)
      out.push(
        `<rect x="${(bx + 2).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 4).toFixed(1)}" height="${Math.max(0, bottom - y).toFixed(1)}" fill="${color(b.peer)}"><title>${esc(`${b.peer}: ${fmt(b.median)} ${p.unit} (min ${fmt(b.min)}, max ${fmt(b.max)})`)}</title></rect>`,
      )
      if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
        const y1 = sc.y(b.max)
        const y2 = sc.y(b.min)
        out.push(`<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y1.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#222" stroke-width="1"/>`)
        for (const yy of [y1, y2]) out.push(`<line x1="${(cx - 4).toFixed(1)}" x2="${(cx + 4).toFixed(1)}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#222"/>`)
      }
      const ly = Math.min(y, b.max !== undefined ? sc.y(b.max) : y) - 4
      out.push(`<text x="${cx.toFixed(1)}" y="${Math.max(top - 2, ly).toFixed(1)}" font-size="9.5" text-anchor="middle" fill="#222">${esc(b.prefix ?? "")}${fmt(b.median)}</text>`)
      if (b.note) out.push(`<text x="${cx.toFixed(1)}" y="${bottom - 4}" font-size="8" text-anchor="middle" fill="#fff">${esc(b.note)}</text>`)
    })
    out.push(`<text x="${(gx + gw / 2).toFixed(1)}" y="${bottom + 16}" font-size="11" text-anchor="middle" fill="#333">${esc(g.label)}</text>`)
  })
  return out.join("\n")
}

export function renderSvg(panels: Panel[], peers: string[], subtitle: string): string {
  const cols = panels.length > 1 ? 2 : 1
  const pw = 520
  const ph = 300
  const gap = 14
  const head = 64
  const rows = Math.ceil(panels.length / cols)
  const W = cols * pw + (cols + 1) * gap
  const H = head + rows * (ph + gap) + gap
  const parts: string[] = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
  )
  parts.push(`<rect width="${W}" height="${H}" fill="#f7f7f8"/>`)
  parts.push(`<text x="${gap}" y="26" font-size="17" font-weight="700">jobledger benchmark</text>`)
  parts.push(`<text x="${gap}" y="45" font-size="11" fill="#555">${esc(subtitle)}</text>`)
  let lx = W - gap
  for (const p of [...peers].reverse()) {
    const tw = p.length * 6.4 + 22
    lx -= tw
    parts.push(`<rect x="${lx.toFixed(1)}" y="17" width="12" height="12" fill="${color(p)}"/>`)
    parts.push(`<text x="${(lx + 16).toFixed(1)}" y="27" font-size="11">${esc(p)}</text>`)
  }
  panels.forEach((p, i) => {
    const c = i % cols
    const r = Math.floor(i / cols)
    parts.push(panelSvg(p, gap + c * (pw + gap), head + r * (ph + gap), pw, ph))
  })
  parts.push("</svg>")
  return parts.join("\n") + "\n"
}
