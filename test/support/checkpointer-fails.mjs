// A checkpointer worker (see src/log/sqlite-checkpointer-worker.ts) that says ready and then
// fails: FAIL=exit ends the thread after ready, FAIL=error answers every `due` with an error.
import { parentPort, workerData } from "node:worker_threads"

parentPort.postMessage({ ready: true })
if (workerData.fail === "exit") setTimeout(() => process.exit(3), 20)
parentPort.on("message", (request) => {
  if (request.op === "due") parentPort.postMessage({ error: { message: "disk I/O error", code: "SQLITE_IOERR" } })
  else parentPort.close()
})
