import { execFileSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import os from "node:os"
import { join } from "node:path"

export interface MachineInfo {
  cpu: string
  cores: number
  ramGiB: number
  node: string
  os: string
  kernel: string
}

export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? "?"
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (m) cpu = m[1]!.trim()
  } catch {
    /* not linux */
  }
  let osName = `${os.type()} ${os.release()}`
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))
    if (m) osName = m[1]!
  } catch {
    /* keep uname */
  }
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ramGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os: osName,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
  }
}

function sh(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

/** Versions read from node_modules/<pkg>/package.json (and bench/.deps for ioredis) plus server binaries. */
export function versions(root: string): Record<string, string> {
  const out: Record<string, string> = {}
  const reqs = [createRequire(join(root, "package.json")), createRequire(join(root, "bench/.deps/package.json"))]
  for (const pkg of ["bullmq", "ioredis", "graphile-worker", "pg", "kafkajs", "better-sqlite3", "tsx"]) {
    for (const req of reqs) {
      try {
        out[pkg] = (JSON.parse(readFileSync(req.resolve(`${pkg}/package.json`), "utf8")) as { version: string }).version
        break
      } catch {
        /* next */
      }
    }
    out[pkg] ??= "not installed"
  }
  out.jobledger = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version
  const rev = sh("git", ["-C", root, "rev-parse", "--short", "HEAD"])
  const dirty = sh("git", ["-C", root, "status", "--porcelain"])
  out["jobledger git"] = rev ? `${rev}${dirty ? " (+ uncommitted changes)" : ""}` : "no commit yet (working tree)"
  if (!existsSync(join(root, "src/index.ts"))) out["jobledger git"] += "; src/index.ts missing"
  const redis = sh("redis-server", ["--version"])
  if (redis) out["redis-server"] = redis.replace(/^Redis server /, "")
  const pg = sh("psql", [process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test", "-Atc", "select version()"])
  if (pg) out.postgres = pg.split(",")[0]!
  return out
}
