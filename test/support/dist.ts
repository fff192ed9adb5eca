/**
 * Suites that run the `jobledger` bin run the compiled CLI in dist/ (as users do). `npm test`
 * builds it first; a suite run on its own checks that dist/ is not older than the sources, so
 * it never tests yesterday's build without saying so.
 */
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { ROOT } from "./children.ts"

const SOURCES = ["src", "machines", "projections"]

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []
  )

/** Throws unless dist/ holds a build at least as new as every source file. */
export const assertBuilt = (): void => {
  const entry = join(ROOT, "dist", "esm", "src", "cli", "main.js")
  if (!existsSync(entry)) throw new Error("dist/ is not built: run `npm run build` first (npm test does it)")
  const built = statSync(entry).mtimeMs
  const newer = SOURCES.flatMap((d) => sourceFiles(join(ROOT, d))).filter((f) => statSync(f).mtimeMs > built)
  if (newer.length > 0)
    throw new Error(`dist/ is older than ${newer.length} source file(s), e.g. ${newer[0]}: run \`npm run build\` (npm test does it)`)
}
