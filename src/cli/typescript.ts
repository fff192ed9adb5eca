/**
 * TypeScript handlers modules (`jobledger engine --handlers ./handlers.ts`): the CLI is
 * compiled JavaScript, so Node alone cannot load them; tsx compiles them, loaded here only
 * when such a module is asked for. A `.js`/`.mjs`/`.cjs` module never comes here.
 *
 * tsx is an optional peer dependency, looked up first from the handlers module (the user's
 * project, where `npm install --save-dev tsx` puts it), then from jobledger itself (a hoisted
 * or linked peer). Both its hooks are registered: the ESM one for `import`, and the CommonJS
 * one because in a project without "type": "module" a `.ts` file is CommonJS to Node, and
 * without tsx's require hook it fails with "Cannot require() ES Module … in a cycle".
 *
 * Invariant: the hooks are registered at most once per process.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, extname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { CliFailure, messageOf } from "./errors.ts"

const TYPESCRIPT_EXTENSIONS = new Set([".ts", ".mts", ".cts"])

/** Whether `file` is TypeScript, by its extension. */
export const isTypeScript = (file: string): boolean => TYPESCRIPT_EXTENSIONS.has(extname(file).toLowerCase())

interface TsxApi {
  readonly register: () => unknown
}

type Exports = string | { readonly [condition: string]: Exports | undefined } | undefined

/** The file an `import` of a package's export target `entry` loads (conditions: import, then default). */
const importTarget = (entry: Exports): string | undefined =>
  entry === undefined || typeof entry === "string" ? entry : importTarget(entry.import ?? entry.default)

let registered = false

/** `require` of tsx from the first place that has it, or undefined when none does. */
const tsxRequire = (handlersFile: string): NodeJS.Require | undefined => {
  for (const base of [handlersFile, import.meta.url]) {
    const req = createRequire(base)
    try {
      req.resolve("tsx/esm/api")
      return req
    } catch {
      // not installed where `base` looks: try the next place
    }
  }
  return undefined
}

/**
 * The ESM build of `tsx/esm/api` (its CommonJS build registers a hook path that does not
 * resolve), found through tsx's exports map: `import()` cannot resolve a bare name from
 * another directory than this module's.
 */
const importEsmApi = async (req: NodeJS.Require): Promise<TsxApi> => {
  const manifest = req.resolve("tsx/package.json")
  const { exports } = JSON.parse(readFileSync(manifest, "utf8")) as { exports?: Record<string, Exports> }
  const target = importTarget(exports?.["./esm/api"])
  if (target === undefined) throw new Error(`${manifest} exports no "./esm/api"`)
  return (await import(pathToFileURL(join(dirname(manifest), target)).href)) as TsxApi
}

/**
 * Makes `import(handlersFile)` work for a TypeScript file: registers tsx's hooks, or throws a
 * CliFailure naming the fix when tsx is not installed.
 */
export const enableTypeScript = async (handlersFile: string, given: string): Promise<void> => {
  if (registered) return
  const req = tsxRequire(handlersFile)
  if (req === undefined)
    throw new CliFailure(
      `--handlers ${given} is TypeScript, which jobledger loads with tsx, and tsx is not installed: ` +
        "run `npm install --save-dev tsx` in your project (or compile the module to .js)"
    )
  try {
    ;(await importEsmApi(req)).register()
    ;(req("tsx/cjs/api") as TsxApi).register()
  } catch (e) {
    throw new CliFailure(`--handlers ${given}: tsx is installed but could not be started (jobledger needs tsx ≥ 4.8 on Node ≥ 20.6): ${messageOf(e)}`)
  }
  registered = true
}
