#!/usr/bin/env node
/**
 * `npm run bench`: every peer side by side in one run (bench/run.ts), with the local Kafka
 * broker for the jobledger-kafka column brought up and torn down around it
 * (scripts/with-kafka.mjs). Redis and PostgreSQL must already run (see bench/README.md).
 * Extra arguments go to bench/run.ts (e.g. `npm run bench -- --quick`).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { dirname, join } from "node:path"
import { withKafka } from "./with-kafka.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const status = await withKafka(process.env, (env) =>
  spawnSync(join(root, "node_modules", ".bin", "tsx"), [join(root, "bench", "run.ts"), ...process.argv.slice(2)], {
    stdio: "inherit",
    env,
    cwd: root
  }).status
)
process.exit(status ?? 1)
