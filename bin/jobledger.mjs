#!/usr/bin/env node
// The `jobledger` command. The sources are TypeScript: register tsx's loader, then run the
// CLI. Paths resolve from this file, so the bin works from any working directory.
import { register } from "tsx/esm/api"

register()
const { runCli } = await import("../src/cli/main.ts")
// not awaited: runCli sets the exit status itself, and reports a run that can never finish
void runCli(process.argv.slice(2))
