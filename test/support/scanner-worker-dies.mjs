// A scanner worker (see src/log/sqlite-scanner-worker.ts) that sends the first batch of its
// range, as the real one would, and then dies: the scan must read the rest on its own thread.
import Database from "better-sqlite3"
import { parentPort, workerData } from "node:worker_threads"

const { path, topic, partition, from, end, batch } = workerData
const db = new Database(path, { readonly: true, fileMustExist: true })
const rows = db
  .prepare("SELECT offset, value FROM records WHERE topic = ? AND partition = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?")
  .raw()
  .all(topic, partition, from, end, batch)
db.close()
parentPort.postMessage({ offsets: Float64Array.from(rows.map((r) => r[0])), values: rows.map((r) => r[1]) })
setTimeout(() => process.exit(3), 20)
