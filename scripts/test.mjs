#!/usr/bin/env node
/**
 * `npm test`: typecheck, build dist/ (the CLI suites run the compiled bin), bring up what the
 * tests need (scripts/with-kafka.mjs), run every suite, tear down. Extra arguments go to
 * vitest (e.g. `npm test -- test/queue`).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"
import { ensureChromium } from "./ensure-chromium.mjs"
import { withKafka } from "./with-kafka.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = (name) => join(root, "node_modules", ".bin", name)

console.log("\n== typecheck (tsc --noEmit)")
const tsc = spawnSync(bin("tsc"), ["--noEmit", "-p", root], { stdio: "inherit" })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

// the dashboard's browser test drives Debian's chromium: installed here when missing (as root)
console.log("\n== browser for the dashboard test")
const browser = ensureChromium()
console.log(browser.path !== undefined ? `chromium: ${browser.path}` : `!!! no browser: ${browser.reason} — the dashboard's browser test will be SKIPPED`)

console.log("\n== build (npm run build)")
const build = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], { stdio: "inherit" })
if (build.status !== 0) process.exit(build.status ?? 1)

// The SASL_SSL broker too, unless the run is filtered to files that cannot include its suite
// (which starts a broker of its own when run without one).
const SECURE_SUITE = "test/kafka-secure.int.test.ts"
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const secure = filters.length === 0 || filters.some((f) => SECURE_SUITE.includes(f.replace(/^\.\//, "")))
const status = await withKafka(
  process.env,
  (env) => {
    console.log("\n== tests (vitest run)")
    return spawnSync(bin("vitest"), ["run", ...process.argv.slice(2)], { stdio: "inherit", env, cwd: root }).status
  },
  { secure }
)
process.exit(status ?? 1)
