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
