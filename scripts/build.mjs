#!/usr/bin/env node
/**
 * `npm run build` (and `prepack`): the JavaScript and declarations the package ships, from a
 * clean dist/ so a source deleted since the last build cannot linger in a tarball.
 *
 *   dist/esm/  ES modules (tsconfig.build.json): the `import` entry and the CLI
 *   dist/cjs/  CommonJS (tsconfig.cjs.json): the `require` entry; Node 20 cannot require()
 *              ES modules, so CommonJS projects need a build of their own. Its package.json
 *              says "type": "commonjs", which is how Node and TypeScript read its .js/.d.ts.
 *
 * Plain tsc, twice: the sources import each other with `.ts` specifiers, which
 * `rewriteRelativeImportExtensions` turns into `.js`; the output mirrors the source tree
 * (src/, machines/, projections/), so source maps and declaration maps point 1:1 at the
 * shipped sources.
 */
import { spawn } from "node:child_process"
import { rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

const compile = (project) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, "-p", join(root, project)], { cwd: root, stdio: "inherit" })
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tsc -p ${project} exited with ${code}`))))
  })

const started = Date.now()
// the dashboard's assets as a module first: the page must not look for files at run time
await new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [join(root, "scripts", "embed-assets.mjs")], { cwd: root, stdio: "inherit" })
  child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`embed-assets exited with ${code}`))))
})
rmSync(join(root, "dist"), { recursive: true, force: true })
try {
  // independent programs: both at once halves the wall time on a machine with two cores
  await Promise.all([compile("tsconfig.build.json"), compile("tsconfig.cjs.json")])
} catch (e) {
  console.error(`build failed: ${e.message}`)
  process.exit(1)
}
writeFileSync(join(root, "dist", "cjs", "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`)
console.error(`built dist/esm and dist/cjs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
