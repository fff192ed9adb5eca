#!/usr/bin/env node
// The `jobledger` command: the compiled CLI in dist/ (built by `npm run build`, shipped in the
// package). Nothing is registered here: a TypeScript --handlers module brings tsx in itself
// (src/cli/typescript.ts). Paths resolve from this file, so the bin works from any directory.
const entry = new URL("../dist/esm/src/cli/main.js", import.meta.url)
// the stack traces JOBLEDGER_DEBUG=1 prints name src/*.ts lines (the package ships the
// sources its maps point at); off otherwise, since reading every map slows the start
if (process.env.JOBLEDGER_DEBUG) process.setSourceMapsEnabled(true)

import(entry.href).then(
  // not awaited: runCli sets the exit status itself, and reports a run that can never finish
  ({ runCli }) => void runCli(process.argv.slice(2)),
  (e) => {
    // only a checkout of the repository has no dist/: a package always ships it
    if (e?.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes(entry.pathname))
      console.error("jobledger: dist/ is not built: run `npm run build` first (in a clone of the repository)")
    else console.error(e)
    process.exit(1)
  }
)
