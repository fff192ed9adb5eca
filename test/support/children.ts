/**
 * Child processes of the crash suites: a TypeScript script run with tsx, its output lines
 * kept (stdout as is, stderr prefixed), and a hard kill.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../..")

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  /** Complete output lines so far (a line split across chunks is joined first). */
  readonly out: Array<string>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves once the process exited and all of its output was read into `out`. */
  readonly closed: Promise<void>
}

/** Runs `script` (a .ts file) with `args`; JOBLEDGER_LOG is cleared so the args decide the log. */
export const spawnScript = (name: string, script: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Child => {
  const proc = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, JOBLEDGER_LOG: "", ...env }
  })
  const out: Array<string> = []
  const collect = (prefix: string) => {
    let partial = ""
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n")
      partial = lines.pop() ?? ""
      for (const line of lines) if (line.trim().length > 0) out.push(`${prefix}${line}`)
    }
  }
  proc.stdout!.on("data", collect(""))
  proc.stderr!.on("data", collect("stderr: "))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.on("exit", (code, signal) => res({ code, signal }))
  )
  const closed = new Promise<void>((res) => proc.on("close", () => res()))
  return { name, proc, out, exited, closed }
}

export const alive = (child: Child) => child.proc.exitCode === null && child.proc.signalCode === null

export const killHard = async (child: Child) => {
  if (!alive(child)) return
  child.proc.kill("SIGKILL")
  await child.exited
}

/** A process run to its end. */
export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/**
 * Runs `command args…` to its end and collects its output; rejects (after killing it) when
 * it has not exited within `timeoutMs`. `input` is written to its stdin (closed either way).
 */
export const runToEnd = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number; readonly input?: string }
): Promise<Finished> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")} (in ${options.cwd}) did not exit within ${options.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, options.timeoutMs)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin.end(options.input ?? "")
  })
