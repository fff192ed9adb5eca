/**
 * Another build of jobledger on the SQLite log, beside this checkout's in the same run:
 * JOBLEDGER_BASELINE_ENTRY=<path to its index.js> (e.g. an earlier commit built to plain
 * JavaScript). Answers "is this version faster than that one?" with same-run ratios. The
 * harness skips the peer when the variable is unset.
 */
import { makeJobledgerPeer, sqliteBackend } from "./jobledger.ts"

export default makeJobledgerPeer("jobledger-baseline", sqliteBackend, process.env.JOBLEDGER_BASELINE_ENTRY ?? "")
