/**
 * Helpers of the dashboard suites: a handler served on a free loopback port, the real
 * `jobledger dashboard` in a child process, the page's CSRF token, and a reader of the
 * Prometheus text format.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer, type RequestListener } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { ROOT } from "./children.ts"

export interface Served {
  readonly base: string
  readonly close: () => Promise<void>
}

/** Serves `handler` on 127.0.0.1 at a free port. */
export const serve = async (handler: RequestListener): Promise<Served> => {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

export interface DashboardChild {
  readonly url: string
  readonly proc: ChildProcess
  readonly stderr: () => string
  /** SIGTERM, then the exit status. */
  readonly stop: () => Promise<number | null>
}

/** The environment of a child: no inherited log or auth, so the arguments decide. */
const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.JOBLEDGER_LOG
  delete env.JOBLEDGER_DASHBOARD_AUTH
  return { ...env, ...extra }
}

/** Runs `jobledger dashboard args…` until it is ready (or exits: rejects with its stderr). */
export const startDashboardCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<DashboardChild> =>
  new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(ROOT, "bin", "jobledger.mjs"), "dashboard", ...args], { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)))
    const timer = setTimeout(() => {
      proc.kill("SIGKILL")
      reject(new Error(`jobledger dashboard was not ready within ${timeoutMs} ms: ${stderr}`))
    }, timeoutMs)
    proc.stdout!.resume()
    proc.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString()
      const m = /dashboard ready: (http:\/\/\S+)/.exec(stderr)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ url: m[1]!.replace(/\/$/, ""), proc, stderr: () => stderr, stop: () => (proc.kill("SIGTERM"), exited) })
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(Object.assign(new Error(`jobledger dashboard exited ${code}: ${stderr}`), { code, stderr }))
    })
  })

/** Runs `jobledger dashboard args…` expecting it to exit by itself; its status and stderr. */
export const runDashboardCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> =>
  new Promise((resolve) => {
    const proc = spawn(process.execPath, [join(ROOT, "bin", "jobledger.mjs"), "dashboard", ...args], { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    proc.stdout!.resume()
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000)
    proc.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })

/** The CSRF token of the page at `base` (its `<meta name="jobledger-csrf">`). */
export const csrfOf = async (base: string, headers: Record<string, string> = {}): Promise<string> => {
  const html = await (await fetch(`${base}/`, { headers })).text()
  const token = /<meta name="jobledger-csrf" content="([^"]+)">/.exec(html)?.[1]
  if (token === undefined) throw new Error(`no CSRF token in the page: ${html.slice(0, 200)}`)
  return token
}

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a Prometheus text exposition, and its TYPE lines. */
export const parseMetrics = (text: string): { readonly samples: ReadonlyArray<Sample>; readonly types: ReadonlyMap<string, string> } => {
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) types.set(type[1]!, type[2]!)
    if (line.startsWith("#") || line.trim() === "") continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    samples.push({ name: m[1]!, labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) })
  }
  return { samples, types }
}

/** The value of the one sample of `name` whose labels include `labels` (throws if none or several). */
export const sampleValue = (samples: ReadonlyArray<Sample>, name: string, labels: Readonly<Record<string, string>>): number => {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`)
  return found[0]!.value
}
