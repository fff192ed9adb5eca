/**
 * Where a worker thread's entry module is, how to start it, and how it sends an error back, for
 * the log's own workers (`sqlite-writer-worker`, `sqlite-scanner-worker`,
 * `sqlite-checkpointer-worker`): next to this module, built (`.js`, ESM or CommonJS) or as a source (`.ts`, in this repository's tests and benchmarks: loaded through
 * tsx's require hook, as Node 20 applies no `--import` loader to a worker).
 */
import { createRequire } from "node:module"
import { dirname, extname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { callerModuleFile } from "../module-file.ts"

/** A worker's entry file, and tsx's require hook when the entry is a source. */
export interface WorkerEntry {
  readonly entry: string
  readonly tsx?: string
}

/** The entry `<name>` next to this module; `undefined` when it cannot be found (the caller works on its own thread then). */
export const workerEntry = (name: string): WorkerEntry | undefined => {
  const file = callerModuleFile() // this module's file: the workers live next to it
  if (file === undefined) return undefined
  const path = file.startsWith("file:") ? fileURLToPath(file) : file
  const extension = extname(path)
  const entry = join(dirname(path), `${name}${extension}`)
  if (extension !== ".ts") return { entry }
  try {
    return { entry, tsx: createRequire(path).resolve("tsx/cjs") }
  } catch {
    return undefined
  }
}

// A source entry (tests, benchmarks under tsx): plain CommonJS eval'd in the worker, loading
// tsx's require hook and then the entry. A built entry is the worker's own file (`.js`: ESM or
// CommonJS by its package.json).
const TSX_BOOTSTRAP = `
const { workerData } = require("node:worker_threads")
require(workerData.tsx)
require(workerData.entry)
`

/**
 * Starts the worker at `where` with `data` (it reads both as `workerData`). None of the
 * process's flags pass: the thread runs only the log's code, and a worker refuses many of
 * them (V8 flags such as --max-old-space-size, --input-type). Throws when it cannot start.
 */
export const startWorker = (where: WorkerEntry, data: object): Worker => {
  const workerData = { ...where, ...data }
  const execArgv: Array<string> = []
  return where.tsx === undefined ? new Worker(where.entry, { workerData, execArgv }) : new Worker(TSX_BOOTSTRAP, { eval: true, workerData, execArgv })
}

/**
 * An error as it crosses back from a worker: its message, and its `code` when it has one, so
 * the caller classifies it as if it had been thrown on its own thread (a full disk stays retryable).
 */
export interface CrossedError {
  readonly code?: string
  readonly message: string
}

export const crossedError = (e: unknown): CrossedError => {
  const code = (e as { code?: unknown } | null)?.code
  return { message: e instanceof Error ? e.message : String(e), ...(typeof code === "string" ? { code } : {}) }
}
