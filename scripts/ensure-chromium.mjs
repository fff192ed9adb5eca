#!/usr/bin/env node
/**
 * The browser the dashboard's browser test drives: Debian's `chromium` at /usr/bin/chromium.
 *
 * `npx playwright install` downloads a browser build of its own, which machines without
 * internet access cannot do; Debian's package comes from the distribution's mirror instead.
 * When the browser is missing and this runs as root with apt-get, it is installed
 * (`apt-get install -y chromium`, after `apt-get update` if the first try fails). Otherwise
 * the caller is told why there is none, and says so loudly.
 *
 * Run directly (`node scripts/ensure-chromium.mjs`) it installs and prints the path.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const CHROMIUM = "/usr/bin/chromium"

const apt = (args) => spawnSync("apt-get", args, { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status === 0

/** `{ path }` when the browser is there (installed now if need be), else `{ reason }`. */
export const ensureChromium = () => {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM }
  if (process.env.JOBLEDGER_NO_BROWSER_INSTALL === "1") return { reason: `${CHROMIUM} is missing and JOBLEDGER_NO_BROWSER_INSTALL=1` }
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return { reason: `${CHROMIUM} is missing and this is not root (install it with: apt-get install -y chromium)` }
  if (spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) return { reason: `${CHROMIUM} is missing and there is no apt-get` }
  console.error(`== ${CHROMIUM} is missing: installing Debian's chromium for the dashboard's browser test (apt-get install -y chromium)`)
  const installed = apt(["install", "-y", "-q", "chromium"]) || (apt(["update", "-q"]) && apt(["install", "-y", "-q", "chromium"]))
  if (installed && existsSync(CHROMIUM)) return { path: CHROMIUM }
  return { reason: `apt-get install -y chromium failed; ${CHROMIUM} is still missing` }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = ensureChromium()
  if (result.path === undefined) {
    console.error(`no browser: ${result.reason}`)
    process.exit(1)
  }
  console.log(result.path)
}
