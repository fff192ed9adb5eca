/**
 * Loading the handlers module of `jobledger engine`:
 *
 *   export default { [queue]: { [jobName]: async (job, signal) => result } }
 *   export const options = { [queue]: QueueOptions }      // optional
 *
 * A CommonJS module may also set `module.exports = { [queue]: { [jobName]: handler } }`.
 * JavaScript modules load as they are; TypeScript ones through tsx, registered only for them
 * (./typescript.ts), in ESM projects and in CommonJS ones (no "type": "module"), where they
 * are compiled to CommonJS. A module that is missing or has the wrong shape is a usage error
 * (exit 2) naming what to fix; a module that throws while loading, or a TypeScript one
 * without tsx installed, is a failure (exit 1) with its message.
 */
import { existsSync, statSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type { JobHandler, QueueOptions } from "../types.ts"
import { CliFailure, UsageError, messageOf } from "./errors.ts"
import { enableTypeScript, isTypeScript } from "./typescript.ts"

export interface HandlersModule {
  /** Queue name → job name → handler, in the module's order. */
  readonly queues: ReadonlyMap<string, ReadonlyMap<string, JobHandler>>
  /** Queue name → options (absent for queues without options). */
  readonly options: Readonly<Record<string, QueueOptions>>
}

const EXTENSIONS = ["", ".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"]
const SHAPE = "expected `export default { [queue]: { [jobName]: async (job) => result } }`"

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * The module's own exports. ESM syntax compiled to CommonJS (a `.ts` file in a project
 * without "type": "module") arrives as `{ default: module.exports }` with `__esModule` set
 * on it; its `default` and `options` are one level down.
 */
const exportsOf = (namespace: Record<string, unknown>): Record<string, unknown> =>
  isObject(namespace.default) && namespace.default.__esModule === true ? namespace.default : namespace

/** The file `path` names, trying the usual extensions when it has none. */
const locate = (path: string): string => {
  for (const ext of EXTENSIONS) {
    const candidate = resolve(process.cwd(), path + ext)
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  throw new UsageError(`--handlers: no module at '${path}'`)
}

export const loadHandlers = async (path: string): Promise<HandlersModule> => {
  const file = locate(path)
  if (isTypeScript(file)) await enableTypeScript(file, path)
  let mod: Record<string, unknown>
  try {
    mod = exportsOf((await import(pathToFileURL(file).href)) as Record<string, unknown>)
  } catch (e) {
    throw new CliFailure(`--handlers ${path}: the module failed to load: ${messageOf(e)}`)
  }
  const def = mod.default
  if (!isObject(def)) throw new UsageError(`--handlers ${path}: no default export; ${SHAPE}`)
  const queues = new Map<string, Map<string, JobHandler>>()
  for (const [queue, handlers] of Object.entries(def)) {
    if (!isObject(handlers)) throw new UsageError(`--handlers ${path}: default.${queue} must be an object of handlers; ${SHAPE}`)
    const byName = new Map<string, JobHandler>()
    for (const [name, handler] of Object.entries(handlers)) {
      if (typeof handler !== "function") throw new UsageError(`--handlers ${path}: default.${queue}.${name} must be a function (got ${typeof handler})`)
      byName.set(name, handler as JobHandler)
    }
    if (byName.size === 0) throw new UsageError(`--handlers ${path}: queue '${queue}' has no handlers`)
    queues.set(queue, byName)
  }
  if (queues.size === 0) throw new UsageError(`--handlers ${path}: the default export has no queues; ${SHAPE}`)
  const options = mod.options ?? {}
  if (!isObject(options)) throw new UsageError(`--handlers ${path}: 'options' must be an object { [queue]: QueueOptions }`)
  for (const [queue, o] of Object.entries(options)) {
    if (!isObject(o)) throw new UsageError(`--handlers ${path}: options.${queue} must be an object of queue options`)
    if (!queues.has(queue)) throw new UsageError(`--handlers ${path}: options.${queue} names no queue of the default export`)
  }
  return { queues, options: options as Record<string, QueueOptions> }
}
