#!/usr/bin/env node
/**
 * `npm run bench`: every peer side by side in one run (bench/run.ts), with the local Kafka
 * broker for the jobledger-kafka column brought up and torn down around it
 * (scripts/with-kafka.mjs). Redis and PostgreSQL must already run (see bench/README.md).
 * Extra arguments go to bench/run.ts (e.g. `npm run bench -- --quick`).
 *
 * Children run as plain JavaScript, as users' processes do: jobledger is built (`dist/`) and
 * the harness's child and probe are bundled with esbuild into bench/.build/ (every package
 * left external), so no child pays for tsx's loaders in its start-up or its RSS.
 */
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"
import { withKafka } from "./with-kafka.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = (name) => join(root, "node_modules", ".bin", name)
const step = (what, command, args) => {
  console.log(`\n== ${what}`)
  const { status } = spawnSync(command, args, { stdio: "inherit", cwd: root })
  if (status !== 0) process.exit(status ?? 1)
}

step("build (npm run build)", process.execPath, [join(root, "scripts", "build.mjs")])
const out = join(root, "bench", ".build")
rmSync(out, { recursive: true, force: true }) // chunk names are content hashes: no stale ones left
// code splitting: each peer adapter is a chunk of its own, so a child measuring jobledger
// never loads bullmq, ioredis, graphile-worker or pg (their imports stay in their chunks)
step("bundle the harness's child and probe (esbuild)", bin("esbuild"), [
  join(root, "bench", "lib", "child.ts"),
  join(root, "bench", "lib", "probe-source.ts"),
  "--bundle",
  "--splitting",
  "--platform=node",
  "--format=esm",
  "--packages=external",
  "--out-extension:.js=.mjs",
  "--log-level=warning",
  `--outdir=${out}`
])
const entry = join(root, "dist", "esm", "src", "index.js")
if (!existsSync(entry)) throw new Error(`${entry} is missing after the build`)

const status = await withKafka(process.env, (env) =>
  spawnSync(bin("tsx"), [join(root, "bench", "run.ts"), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: {
      ...env,
      BENCH_CHILD: env.BENCH_CHILD ?? join(out, "child.mjs"),
      BENCH_PROBE: env.BENCH_PROBE ?? join(out, "probe-source.mjs"),
      JOBLEDGER_ENTRY: env.JOBLEDGER_ENTRY ?? entry
    },
    cwd: root
  }).status
)
process.exit(status ?? 1)
