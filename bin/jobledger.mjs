#!/usr/bin/env node
// The `jobledger` command. The sources are TypeScript: register tsx's loaders, then run the
// CLI. Paths resolve from this file, so the bin works from any working directory.
import { register as registerCjs } from "tsx/cjs/api"
import { register } from "tsx/esm/api"

register()
// a handlers module in a project without "type": "module" is CommonJS to Node: without
// tsx's require hook, a TypeScript one fails with "Cannot require() ES Module … in a cycle"
registerCjs()
const { runCli } = await import("../src/cli/main.ts")
// not awaited: runCli sets the exit status itself, and reports a run that can never finish
void runCli(process.argv.slice(2))
